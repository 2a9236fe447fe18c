"""The platform's CrossGuard policy pack: rules every stack is held to, judged on the resources
as the engine sees them. It imports nothing from `infra/` or `components/`, so it holds a stack
written by hand tomorrow to the same rules as the ones in this repository."""
