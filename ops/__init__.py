"""`platform`: the operators' and CI's command, one stack at a time, over Pulumi's Automation API.

It stands outside the program: it uses the program's stack parser and config models, and
nothing in `infra/` or `components/` imports it.
"""
