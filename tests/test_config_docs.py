"""The config reference is generated from the models and must be committed up to date."""
from __future__ import annotations

from pydantic import BaseModel

from infra.config.common import model_in
from infra.project import PROJECT_ROOT
from offline import config_reference as docs


def test_docs_config_md_is_generated_from_the_models():
    committed = (PROJECT_ROOT / "docs" / "config.md").read_text()
    assert committed == docs.generate() + "\n", \
        "run: .venv/bin/python -m offline.config_reference > docs/config.md"


def test_every_config_key_is_described():
    def walk(model: type[BaseModel]):
        for name, field in model.model_fields.items():
            nested = model_in(field.annotation)
            assert field.description or (nested and nested.__doc__), \
                f"{model.__name__}.{name} has no description"
            if nested:
                walk(nested)

    for _, model, _ in docs.SECTIONS:
        walk(model)
