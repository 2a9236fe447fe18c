"""How a secret looks wherever the platform meets one, and what stands in for it.

Three wire formats carry secrets: a stack file holds each as `{secure: <ciphertext>}`; the
engine (its events, state and mocks) wraps each in an object signed with its secret signature;
and whatever the platform shows of one (a render, a comment, a history, a preview) shows
`[secret]`. This module is the one place that knows them.
"""
from __future__ import annotations

from typing import Any

SECRET_PLACEHOLDER = "[secret]"  # nosec B105 -- what stands in for a secret, not one
# The key and value that mark a secret the engine wraps (`{"4dabf...": "1b47...", "value": ...}`);
# its events show the ciphertext as "[secret]".
SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"  # nosec B105 -- a marker, not a secret
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"  # nosec B105 -- a marker, not a secret


def is_secret_wrapper(value: Any) -> bool:
    """Whether `value` is a secret as the engine wraps it."""
    return isinstance(value, dict) and value.get(SIGNATURE_KEY) == SECRET_SIGNATURE


def hide_secrets(value: Any) -> Any:
    """`value` with every engine-wrapped secret inside it replaced by the placeholder."""
    if is_secret_wrapper(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: hide_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [hide_secrets(v) for v in value]
    return value


def is_secure_value(value: Any) -> bool:
    """Whether a stack file value is an encrypted `{secure: ...}` value."""
    return isinstance(value, dict) and set(value) == {"secure"}


def holds_secure_value(value: Any) -> bool:
    """Whether a stack file value is, or holds, an encrypted `{secure: ...}` value."""
    return strip_secure_values(value)[1]


def strip_secure_values(value: Any) -> tuple[Any, bool]:
    """`value` with every `{secure: ...}` replaced by the placeholder (an empty ciphertext, a
    secret never set, by empty text, as an empty decrypted value would read), and whether
    there was any."""
    if is_secure_value(value):
        return (SECRET_PLACEHOLDER if value["secure"] else ""), True
    if isinstance(value, dict):
        pairs = {k: strip_secure_values(v) for k, v in value.items()}
        return {k: p[0] for k, p in pairs.items()}, any(p[1] for p in pairs.values())
    if isinstance(value, list):
        pairs = [strip_secure_values(v) for v in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    return value, False
