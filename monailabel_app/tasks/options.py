"""Parse request options as clients send them (3D Slicer sends numbers and booleans as strings)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException


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


def check_infer_request(image: str = "", params: str | None = None, file: Any = None, **_: Any) -> None:
    """/infer arguments: ``params`` must be a JSON object; without an uploaded file, ``image`` must be a
    plain datastore id (never a server path). HTTP 400 otherwise."""
    if file is None and any(part in image for part in ("/", "\\", "..")):
        raise HTTPException(400, f"image: {image!r} must be a datastore image id, not a path")
    try:
        value = json.loads(params) if params else {}
    except (TypeError, ValueError) as e:
        raise HTTPException(400, f"params: malformed JSON ({e})") from None
    if not isinstance(value, dict):
        raise HTTPException(400, "params: must be a JSON object")
