"""The SDK internals the config loader needs, and the only module that touches them.

No public API does what the loader must: Pulumi's `pulumi.Config` reads one key at a time and
cannot list the keys a stack sets (so a typo could not be reported), and pydantic has no public
way to run a model's validators one by one (needed to report every problem at once). So this
module reads `pulumi.runtime.config` (documented "Please use pulumi.Config instead") and
pydantic's `__pydantic_decorators__`, checks the shape it relies on every time, and raises
SdkChanged naming what moved rather than misreading config. tests/test_config_sdk.py pins
the behaviour against the installed SDKs; tests/test_deploy_path.py fails on any other module
on the deploy path that uses an internal name.
"""
from __future__ import annotations

from typing import Any, Callable

from pulumi.runtime import config as runtime_config
from pydantic import BaseModel


class SdkChanged(RuntimeError):
    """An SDK no longer has what this module reads: adapt this module to the new version."""

    def __init__(self, what: str):
        super().__init__(f"{what}: the installed SDK changed what infra/config/sdk.py reads "
                         "(requirements.txt pins the versions it was written for)")


def _needed(owner: Any, name: str, where: str) -> Any:
    if not hasattr(owner, name):
        raise SdkChanged(f"{where} has no {name}")
    return getattr(owner, name)


def engine_config() -> tuple[dict[str, Any], set[str]]:
    """Every config key the engine passed to the program (`namespace:key` -> raw value), and
    which of them are secret. The engine passes them in the environment (PULUMI_CONFIG and
    PULUMI_CONFIG_SECRET_KEYS); the mocks set them in the SDK's own config map."""
    where = "pulumi.runtime.config"
    from_environment = _needed(runtime_config, "get_config_env", where)()
    set_in_process = _needed(runtime_config, "CONFIG", where).get()
    secret_in_environment = _needed(runtime_config, "get_config_secret_keys_env", where)()
    is_secret = _needed(runtime_config, "is_config_secret", where)
    values = {**from_environment, **set_in_process}
    if not isinstance(values, dict):
        raise SdkChanged(f"{where} holds its config in a {type(values).__name__}, not a dict")
    secret = {key for key in values if key in secret_in_environment or is_secret(key)}
    return values, secret


def _decorators(model: type[BaseModel], kind: str) -> list[Any]:
    try:
        infos = model.__pydantic_decorators__
    except AttributeError:
        raise SdkChanged(f"pydantic model {model.__name__} has no __pydantic_decorators__") from None
    found = list(_needed(infos, kind, "pydantic's __pydantic_decorators__").values())
    for decorator in found:
        for name in ("func", "info"):
            _needed(decorator, name, f"pydantic's {kind} entry")
        _needed(decorator.info, "mode", f"pydantic's {kind} info")
    return found


def after_model_validators(model: type[BaseModel]) -> list[Callable[[BaseModel], Any]]:
    """The model's cross-field checks (`model_validator(mode="after")`), in declaration order."""
    return [d.func for d in _decorators(model, "model_validators") if d.info.mode == "after"]


def after_field_validators(model: type[BaseModel], field: str) -> list[Callable[[Any], Any]]:
    """The model's `field_validator(field)` checks that run on the validated value."""
    checks = []
    for decorator in _decorators(model, "field_validators"):
        fields = _needed(decorator.info, "fields", "pydantic's field_validators info")
        if field in fields and decorator.info.mode == "after":
            checks.append(decorator.func)
    return checks
