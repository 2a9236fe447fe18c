"""Stack names: `<env>` is an environment stack, `<component>.<env>` a component stack.

The rules a name must follow, the stack files in the project root (`Pulumi.<stack>.yaml`)
that make it a valid stack, and the environments those files declare: an environment is its
stack file (`Pulumi.qa.yaml` makes `qa` one), and the promotion order between them is data in
those files (`platform:promotion.after`), declared once and read only here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from infra.errors import StackFileError, UnknownStackError
from infra.project import CONFIG_NAMESPACE, PROJECT_ROOT
from infra.stack_files import declares_config, discover_stacks, load_stack_file, stack_file

_LABEL = r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?"
_STACK_RE = re.compile(rf"^(?:(?P<component>{_LABEL})\.)?(?P<env>{_LABEL})$")


@dataclass(frozen=True)
class StackName:
    """A parsed stack name."""

    env: str
    component: str | None = None

    @property
    def is_environment(self) -> bool:
        return self.component is None

    def __str__(self) -> str:
        return self.env if self.component is None else f"{self.component}.{self.env}"


def valid_stacks(root: Path = PROJECT_ROOT) -> list[str]:
    """The stacks to offer an operator: files that set `platform:` keys, and broken ones (their
    own error says what to mend)."""
    def valid(stack: str) -> bool:
        try:
            return declares_config(stack, root)
        except StackFileError:
            return True
    return [s for s in discover_stacks(root) if valid(s)]


def parse_stack_name(stack: str, root: Path = PROJECT_ROOT) -> StackName:
    """Parse and check a stack name against the environments and the stack files present."""
    match = _STACK_RE.match(stack)
    if not match:
        raise UnknownStackError(stack, "malformed stack name (expected '<env>' or "
                                       "'<component>.<env>', lower-case)", valid_stacks(root))
    name = StackName(env=match["env"], component=match["component"])
    if not stack_file(name.env, root).exists():
        raise UnknownStackError(stack, f"unknown environment '{name.env}': no stack file "
                                       f"{stack_file(name.env, root).name} (environments: "
                                       f"{', '.join(environments(root)) or '(none)'})", valid_stacks(root))
    path = stack_file(stack, root)
    if not path.exists():
        raise UnknownStackError(stack, f"no stack config file {path.name}", valid_stacks(root))
    if not declares_config(stack, root):  # a broken file raises StackFileError here
        raise UnknownStackError(
            stack, f"{path.name} sets no {CONFIG_NAMESPACE}: keys (`pulumi stack init` creates it "
                   f"so; start from the stack file of a component of the same kind)", valid_stacks(root))
    return name


# -- environments, declared by their stack files -------------------------------------------------

PROMOTION_KEY = f"{CONFIG_NAMESPACE}:promotion"  # {after: <env>}: promoted once <env> succeeded
LIFETIME_KEY = f"{CONFIG_NAMESPACE}:lifetime"  # set on an ephemeral environment (`platform env`)


def _environment_config(env: str, root: Path) -> dict:
    return load_stack_file(env, root).get("config") or {}


def is_ephemeral(env: str, root: Path = PROJECT_ROOT) -> bool:
    """Whether `env` is an environment made for a while (a pull request's): it records its
    lifetime, and it is in no promotion order."""
    return LIFETIME_KEY in _environment_config(env, root)


def environments(root: Path = PROJECT_ROOT) -> tuple[str, ...]:
    """Every environment of the project: the promotion order, then the ephemeral ones by name."""
    order = promotion_order(root)
    return order + tuple(sorted(e for e in _environment_files(root) if e not in order))


def _environment_files(root: Path) -> list[str]:
    return [s for s in discover_stacks(root) if "." not in s and _declares(s, root)]


def _declares(stack: str, root: Path) -> bool:
    try:
        return declares_config(stack, root)
    except StackFileError:
        return False  # a broken file is reported by its own stack, not by every listing


def promotion_order(root: Path = PROJECT_ROOT) -> tuple[str, ...]:
    """The long-lived environments in the order a change is promoted through them: each after
    the one its stack file names in `platform:promotion.after` (an environment naming none
    comes first; environments no order relates are taken by name).

    Raises StackFileError naming the stack and the key when the order cannot be followed: an
    unknown or ephemeral environment named, a value of the wrong shape, or a cycle.
    """
    names = _environment_files(root)
    lasting = [e for e in names if not is_ephemeral(e, root)]
    after: dict[str, str | None] = {}
    for env in lasting:
        value = _environment_config(env, root).get(PROMOTION_KEY)
        if value is None:
            after[env] = None
            continue
        earlier = value.get("after") if isinstance(value, dict) else None
        if not isinstance(value, dict) or set(value) - {"after"} or not isinstance(earlier, (str, type(None))):
            raise StackFileError(env, f"{PROMOTION_KEY} must be a mapping with one key, `after: "
                                      "<environment>` (the environment promoted before this one)")
        if earlier is not None and earlier not in lasting:
            known = ", ".join(e for e in lasting if e != env) or "(none)"
            reason = ("is ephemeral: it is in no promotion order" if earlier in names else
                      "has no stack file")
            raise StackFileError(env, f"{PROMOTION_KEY}.after: environment '{earlier}' {reason} "
                                      f"(long-lived environments: {known})")
        after[env] = earlier
    order: list[str] = []
    while len(order) < len(after):
        ready = sorted(e for e, before in after.items()
                       if e not in order and (before is None or before in order))
        if not ready:
            cycle = sorted(e for e in after if e not in order)
            raise StackFileError(cycle[0], f"{PROMOTION_KEY}.after: the environments "
                                           f"{', '.join(cycle)} name each other in a cycle")
        order.append(ready[0])
    return tuple(order)
