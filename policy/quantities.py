"""Kubernetes resource quantities as numbers (cores or bytes), to compare requests with quotas.

The program validates its own quantities in infra/config; the pack keeps its own small parser
because it judges any stack and imports nothing from the program."""
from __future__ import annotations

import re
from decimal import Decimal

_QUANTITY = re.compile(r"^(?P<num>[0-9]+(\.[0-9]+)?)(?P<suffix>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {None: Decimal(1), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6,
           "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15,
           "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20,
           "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50,
           "Ei": Decimal(2) ** 60}


def quantity(value: object) -> Decimal | None:
    """The number a quantity stands for, or None if it is not one."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    return Decimal(match["num"]) * _SUFFIX[match["suffix"]]
