"""Entry point the engine runs (`python -m pulumi.policy ENGINE policy/` runs this file): serve
the pack. Constructing a PolicyPack starts its server and blocks, so the rules live in modules of
their own and only this file builds it."""
import sys
from pathlib import Path

# Run as a script from its folder, the pack imports its modules as the package `policy`, the way
# the tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.pack import NAME, POLICIES  # noqa: E402

PolicyPack(name=NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
