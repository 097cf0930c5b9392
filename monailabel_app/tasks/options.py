"""Parse request options as clients send them (3D Slicer sends numbers and booleans as strings)."""

from __future__ import annotations

from typing import Any


def as_bool(value: Any) -> bool:
    """``True``/``"true"``/``"1"``/``"yes"`` -> True; ``False``/``"false"``/``"0"``/``"no"`` -> False."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "none", ""):
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def first_if_list(value: Any) -> Any:
    """A list option's first entry (what a client sends when it did not choose), else the value."""
    return value[0] if isinstance(value, list) and value else value
