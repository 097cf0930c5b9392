"""Check /infer request arguments as clients send them (train options: ``lib.training.config``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException


def check_infer_request(
    image: str = "",
    session_id: str = "",
    params: str | None = None,
    file: Any = None,
    sessions: Callable[[], Any] | None = None,
    **_: Any,
) -> None:
    """/infer arguments, checked before MONAI Label's endpoint (which answers 500 or runs on a path).

    The image comes from an uploaded ``file``, a live ``session_id`` (of ``sessions()``, MONAI Label's
    session store: the 3D Slicer plugin's ``PUT /session/`` for a volume of its own; ``image`` is then
    just the volume's name), or else ``image``, a plain datastore id (never a server path).
    ``params`` must be a JSON object that does not name the image. HTTP 400 for a malformed request,
    404 for an unknown or expired session, 406 when the server runs without sessions.
    """
    if file is None and not session_id and not image:
        raise HTTPException(
            400, "image: required (a datastore image id, an uploaded file or a session_id of PUT /session/)"
        )
    if session_id:
        store = sessions() if sessions is not None else None
        if store is None:
            raise HTTPException(406, "session_id: this server runs without sessions (MONAI_LABEL_SESSIONS)")
        info = store.get_session(session_id, update_ts=False)
        if info is None or 0 < info.expiry < time.time() - info.last_access_ts:  # clean-up runs every 5 min
            raise HTTPException(
                404, f"session_id: unknown or expired session {session_id!r}; upload the image again"
            )
    elif file is None and any(part in image for part in ("/", "\\", "..")):
        raise HTTPException(400, f"image: {image!r} must be a datastore image id, not a path")
    try:
        value = json.loads(params) if params else {}
    except (TypeError, ValueError) as e:
        raise HTTPException(400, f"params: malformed JSON ({e})") from None
    if not isinstance(value, dict):
        raise HTTPException(400, "params: must be a JSON object")
    if "image" in value or "session" in value:
        raise HTTPException(400, "params: may not name the image ('image', 'session'); use ?image=")
