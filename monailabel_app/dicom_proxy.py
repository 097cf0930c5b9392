"""The ``/proxy/dicom`` routes (OHIF loads images and stores SEGs through them), without blocking or hanging.

MONAI Label's own proxy calls the archive with blocking ``requests`` inside its ``async`` endpoint and with
no deadline. :func:`forward` keeps MONAI Label's URL mapping and authentication but reads the request
body on the server's event loop, calls the archive asynchronously and bounds the whole exchange by
``MONAI_LABEL_DICOMWEB_PROXY_TIMEOUT`` seconds: a hung archive gives HTTP 504, an unreachable one 503,
and a client that goes away cancels the call to the archive at once.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import HTTPException, Request
from fastapi.responses import Response
from monailabel.config import settings
from starlette.requests import ClientDisconnect

from monailabel_app.dicomweb import CONNECT_TIMEOUT_S

logger = logging.getLogger(__name__)

# per-connection headers (RFC 9110 7.6.1) and those the HTTP client computes itself
_NOT_FORWARDED = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
    "content-encoding",
}
CLIENT_CLOSED = 499  # nginx's "client closed request": nobody reads this answer


def upstream_path(op: str, path: str) -> str:
    """The archive path of ``/proxy/dicom/<op>/<path>``, mapped as MONAI Label maps it."""
    prefixes = {
        "wado": settings.MONAI_LABEL_WADO_PREFIX,
        "qido": settings.MONAI_LABEL_QIDO_PREFIX,
        "stow": settings.MONAI_LABEL_STOW_PREFIX,
    }
    prefix = prefixes.get(op)
    if path.endswith("metadata") and op == "qido":  # some OHIF versions ask QIDO for metadata
        prefix = settings.MONAI_LABEL_WADO_PREFIX
    return f"{prefix}/{path}" if prefix else path


def _google_token() -> str:
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(google.auth.transport.requests.Request())
    return credentials.token


async def _client_gone(request: Request) -> None:
    """Returns when the client closes the connection (its body has been read already)."""
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a broken connection is a gone client too
        return


async def forward(request: Request, op: str, path: str) -> Response:
    """Answer ``request`` (GET or POST) with the archive's answer to the same request."""
    server = settings.MONAI_LABEL_STUDIES.rstrip("/")
    deadline = float(settings.MONAI_LABEL_DICOMWEB_PROXY_TIMEOUT)
    url = f"{server}/{upstream_path(op, path)}"
    try:
        body = await request.body() if request.method == "POST" else b""
    except ClientDisconnect:
        return Response(status_code=CLIENT_CLOSED)
    headers = {"accept-encoding": "identity"}  # the answer is passed on as it comes
    if request.method == "POST":  # MONAI Label forwards the client's headers on POST only
        headers.update({k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED})
    auth = None
    if "googleapis.com" in server:
        headers["authorization"] = f"Bearer {await asyncio.to_thread(_google_token)}"
    elif settings.MONAI_LABEL_DICOMWEB_USERNAME and settings.MONAI_LABEL_DICOMWEB_PASSWORD:
        auth = (settings.MONAI_LABEL_DICOMWEB_USERNAME, settings.MONAI_LABEL_DICOMWEB_PASSWORD)
        headers.pop("authorization", None)

    async def call() -> httpx.Response:
        timeout = httpx.Timeout(deadline, connect=min(CONNECT_TIMEOUT_S, deadline))
        async with httpx.AsyncClient(timeout=timeout, auth=auth) as client:
            return await client.request(
                request.method, url, params=request.query_params, content=body, headers=headers
            )

    upstream = asyncio.ensure_future(call())
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        done, _ = await asyncio.wait({upstream, gone}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (upstream, gone):
            task.cancel()
    late = HTTPException(504, f"DICOMweb server {server} did not answer within {deadline:g} s (proxy {op})")
    if upstream not in done:
        if gone in done:
            logger.info("proxy %s %s: client closed the connection; archive request cancelled", op, path)
            return Response(status_code=CLIENT_CLOSED)
        raise late
    try:
        answer = upstream.result()
    except httpx.TimeoutException:
        raise late from None
    except httpx.TransportError as e:
        raise HTTPException(503, f"DICOMweb server {server} is unreachable (proxy {op}: {e})") from None
    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _NOT_FORWARDED}
    return Response(content=answer.content, status_code=answer.status_code, headers=kept)
