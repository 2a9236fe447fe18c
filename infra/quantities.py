"""Kubernetes resource quantities as numbers (cores or bytes), by the official client's parser
(`kubernetes.utils.quantity.parse_quantity`).

Importing `kubernetes.utils` runs the client package's `__init__`, which loads the whole API
client (about 0.3 s) that no stack's program needs; so the parser's own module, which needs
only `decimal`, is loaded by itself from the installed package. tests/test_quantities.py fails
loudly if the package moves it or it parses differently.
"""
from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path
from types import ModuleType

PARSER_MODULE = Path("utils") / "quantity.py"  # inside the `kubernetes` package


def _parser_module() -> ModuleType:
    package = importlib.util.find_spec("kubernetes")  # finds it without running its __init__
    if package is None or not package.submodule_search_locations:
        raise ImportError("the kubernetes package (requirements.txt) is not installed")
    path = Path(package.submodule_search_locations[0]) / PARSER_MODULE
    spec = importlib.util.spec_from_file_location("kubernetes_quantity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


parse_quantity = _parser_module().parse_quantity


def quantity_value(quantity: str) -> Decimal:
    """The number a quantity stands for; a ValueError for anything else, and for what the
    parser takes but no resource amount can be (a sign, NaN, infinity, spaces)."""
    try:
        value = parse_quantity(quantity) if quantity == str(quantity).strip() else None
    except ValueError:
        value = None
    if value is None or not value.is_finite() or value < 0 or str(quantity)[:1] in "+-":
        raise ValueError(f"'{quantity}' is not a Kubernetes quantity (e.g. 250m, 1, 128Mi, 1Gi)")
    return value
