"""Quantities are read by the Kubernetes client's own parser, in the program and in the pack alike."""
from __future__ import annotations

import sys
from decimal import Decimal

import pytest
from kubernetes.utils import parse_quantity as library_parse_quantity

from infra.quantities import parse_quantity, quantity_value
from policy.quantities import parse_quantity as pack_parse_quantity
from policy.quantities import quantity

QUANTITIES = ["250m", "1", "0.5", "128Mi", "1Gi", "2Pi", "1Ei", "3P", "1E", "100k", "1e3", "5n"]


@pytest.mark.parametrize("parser", [parse_quantity, pack_parse_quantity], ids=["program", "pack"])
def test_the_installed_clients_parser_is_used_without_loading_the_client(parser):
    assert parser.__code__.co_code == library_parse_quantity.__code__.co_code
    assert parser.__doc__ == library_parse_quantity.__doc__


# The pack as the engine starts it: its rules' modules (policy.pack) without the server.
@pytest.mark.parametrize("module", ["infra.quantities", "policy.pack"])
def test_loading_the_parser_does_not_import_the_api_client(module):
    import subprocess
    child = subprocess.run([sys.executable, "-c", f"import sys, {module}; "
                            "print(sorted(m for m in sys.modules if m.startswith('kubernetes')))"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "[]"


@pytest.mark.parametrize("text", QUANTITIES)
def test_program_and_pack_read_a_quantity_alike(text):
    assert quantity_value(text) == quantity(text) == library_parse_quantity(text)


def test_binary_and_decimal_suffixes_up_to_exa():
    assert quantity_value("1Ei") == Decimal(2) ** 60
    assert quantity_value("1E") == Decimal(10) ** 18
    assert quantity_value("2Pi") == 2 * Decimal(2) ** 50


@pytest.mark.parametrize("text", ["", "abc", "1ki", "-1", "+1", "NaN", "Infinity", " 1", "1Xi"])
def test_what_is_no_resource_amount_is_refused(text):
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        quantity_value(text)
