"""Kubernetes resource quantities as numbers (cores or bytes), to compare requests with quotas.

The official client's parser (`kubernetes.utils.parse_quantity`) reads them; the pack calls it
itself because it judges any stack and imports nothing from the program."""
from __future__ import annotations

from decimal import Decimal

from kubernetes.utils import parse_quantity


def quantity(value: object) -> Decimal | None:
    """The number a quantity stands for, or None if it is not one."""
    try:
        number = parse_quantity(str(value).strip())
    except ValueError:
        return None
    return number if number.is_finite() else None
