"""The SDK internals the config loader reads (infra/config/sdk.py), pinned against the
installed SDKs: an upgrade that moves them fails here, by name, before any stack misreads
its config."""
from __future__ import annotations

import json

import pytest
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, field_validator, model_validator

from infra.config.sdk import (
    SdkChanged,
    after_field_validators,
    after_model_validators,
    engine_config,
)


@pytest.fixture
def clean_config(monkeypatch):
    """No config in the process or the environment; what was there is put back after."""
    saved = runtime_config.CONFIG.get(), runtime_config._SECRET_KEYS.get()
    runtime_config.set_all_config({}, [])
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    yield
    runtime_config.CONFIG.set(saved[0])
    runtime_config._SECRET_KEYS.set(saved[1])


def test_config_the_engine_passes_in_the_environment_is_read_with_its_secret_keys(clean_config, monkeypatch):
    # What the Python language host sets for the program (pulumi up, pulumi preview).
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"platform:port": "8080", "platform:token": "s3cret"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["platform:token"]))
    assert engine_config() == ({"platform:port": "8080", "platform:token": "s3cret"}, {"platform:token"})


def test_config_set_in_the_process_is_read_with_its_secret_keys(clean_config):
    # What the mocks do (pulumi.runtime.set_all_config), and what wins over the environment.
    runtime_config.set_all_config({"platform:kind": "go-service", "platform:key": "v"}, ["platform:key"])
    assert engine_config() == ({"platform:kind": "go-service", "platform:key": "v"}, {"platform:key"})


def test_config_set_in_the_process_wins_over_the_environment(clean_config, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"platform:port": "1", "platform:only_env": "e"}))
    runtime_config.set_all_config({"platform:port": "2"}, [])
    assert engine_config()[0] == {"platform:port": "2", "platform:only_env": "e"}


class Sample(BaseModel):
    low: int = 0
    high: int = 0

    @field_validator("low", mode="before")
    @classmethod
    def _coerce(cls, value):
        return value

    @field_validator("low")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("negative")
        return value + 1000

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, data):
        return data

    @model_validator(mode="after")
    def _ordered(self) -> "Sample":
        if self.low > self.high:
            raise ValueError("low above high")
        return self

    @model_validator(mode="after")
    def _second(self) -> "Sample":
        return self


def test_a_models_after_checks_are_found_in_order_and_run_on_a_partial_model():
    checks = after_model_validators(Sample)
    assert [check.__name__ for check in checks] == ["_ordered", "_second"]
    with pytest.raises(ValueError, match="low above high"):
        checks[0](Sample.model_construct(low=2, high=1))


def test_a_fields_after_validators_are_found_and_run_on_the_value():
    (check,) = after_field_validators(Sample, "low")
    assert check(1) == 1001
    with pytest.raises(ValueError, match="negative"):
        check(-1)
    assert after_field_validators(Sample, "high") == []


def test_a_pulumi_sdk_without_its_config_reader_fails_loudly(clean_config, monkeypatch):
    monkeypatch.delattr(runtime_config, "get_config_env")
    with pytest.raises(SdkChanged, match="pulumi.runtime.config has no get_config_env: the "
                                         "installed SDK changed what infra/config/sdk.py reads"):
        engine_config()


def test_a_pydantic_without_its_decorator_metadata_fails_loudly():
    class Moved:  # a model class as a pydantic that keeps its metadata elsewhere would leave it
        pass

    with pytest.raises(SdkChanged, match="pydantic model Moved has no __pydantic_decorators__"):
        after_model_validators(Moved)
