"""Check /infer request arguments as clients send them (train options: ``lib.training.config``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException


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
