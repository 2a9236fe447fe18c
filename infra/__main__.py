"""The program, run as the module `infra`: the project root's `__main__.py` (what the Pulumi
CLI runs), the offline render and the tests all start here."""
from infra.program import main

main()
