"""Kubernetes resource quantities as numbers (cores or bytes), to compare requests with quotas.

The official client's parser (`kubernetes.utils.quantity.parse_quantity`) reads them; the pack
calls it itself because it judges any stack and imports nothing from the program. Importing
`kubernetes.utils` would run the client package's `__init__`, which loads the whole API client:
3 to 5 s of CPU in a pack that the engine starts for every preview and update. So the parser's
own module, which needs only `decimal`, is loaded by itself from the installed package, as the
program loads it (infra/quantities.py); tests/test_quantities.py holds both to the library's.
"""
from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path
from types import ModuleType


def _parser_module() -> ModuleType:
    package = importlib.util.find_spec("kubernetes")  # finds it without running its __init__
    if package is None or not package.submodule_search_locations:
        raise ImportError("the kubernetes package (requirements.txt) is not installed")
    path = Path(package.submodule_search_locations[0]) / "utils" / "quantity.py"
    spec = importlib.util.spec_from_file_location("kubernetes_quantity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


parse_quantity = _parser_module().parse_quantity


def quantity(value: object) -> Decimal | None:
    """The number a quantity stands for, or None if it is not one."""
    try:
        number = parse_quantity(str(value).strip())
    except ValueError:
        return None
    return number if number.is_finite() else None
