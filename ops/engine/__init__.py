"""Driving the Pulumi engine for one stack: the Automation API, the checks every command runs
first (session), the state a self-managed backend keeps, updates as an operator reads them, and
what an operation did or would do (report, progress)."""
