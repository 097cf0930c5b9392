"""Fixes to MONAI Label 0.8.5's server wiring that the app can make from the inside.

MONAI Label declares its endpoints ``async def`` but runs inference, datastore I/O and active learning
synchronously inside them, so one inference blocks the event loop and every other client waits
(``/info`` included). Re-registering those endpoints as plain functions makes FastAPI run them in its
worker threadpool, so the event loop keeps answering while an inference runs.

Routes that read the raw request (a ``Request`` parameter: the DICOMweb proxy) stay coroutines on the
server's loop: awaiting the body from a worker thread's own loop would wait forever for a large body.
Such routes must not block (the app's proxy, ``monailabel_app.dicom_proxy``, does not).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Callable, Mapping

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute

logger = logging.getLogger(__name__)


def _threaded(endpoint, guard: Callable[..., None] | None = None):
    """A sync twin of an ``async def`` endpoint that never awaits (runs on its own loop in a worker).

    ``guard`` is called first with the endpoint's keyword arguments and raises HTTPException to refuse.
    """

    def run(*args, **kwargs):
        if guard is not None:
            guard(**kwargs)
        return asyncio.run(endpoint(*args, **kwargs))

    # no functools.wraps: FastAPI would follow __wrapped__ and treat the twin as a coroutine again
    run.__name__, run.__doc__ = endpoint.__name__, endpoint.__doc__
    run.__signature__ = inspect.signature(endpoint)
    return run


def reads_raw_request(endpoint: Callable) -> bool:
    """True when ``endpoint`` takes the starlette ``Request`` itself (and may await its body)."""
    return any(p.annotation in (Request, "Request") for p in inspect.signature(endpoint).parameters.values())


def unblock_endpoints(
    router: APIRouter,
    max_body_size: int | None = None,
    replacements: Mapping[tuple[str, str], Callable] = {},
    guards: Mapping[tuple[str, str], Callable[..., None]] = {},
) -> int:
    """Replace ``router``'s coroutine endpoints, in place, by threaded twins; returns how many.

    Endpoints that read the raw request are re-registered as they are (for the body bound only).
    ``max_body_size`` (bytes) bounds every request body; larger uploads get HTTP 413. ``replacements``
    maps (method, path) to the app's own sync endpoint for that route (same parameters); ``guards``
    maps (method, path) to a check run on the request's arguments before MONAI Label's endpoint.
    """
    replaced = 0
    for i, route in enumerate(router.routes):
        if not (isinstance(route, APIRoute) and inspect.iscoroutinefunction(route.endpoint)):
            continue
        own = _lookup(replacements, route)
        if own is None:
            raw = reads_raw_request(route.endpoint)
            own = route.endpoint if raw else _threaded(route.endpoint, _lookup(guards, route))
        twin = APIRouter(prefix=router.prefix)
        twin.add_api_route(
            route.path[len(router.prefix) :],
            own,
            methods=list(route.methods),
            dependencies=route.dependencies,
            name=route.name,
            summary=route.summary,
            description=route.description,
            response_class=route.response_class,
            include_in_schema=route.include_in_schema,
            max_body_size=max_body_size,
        )
        router.routes[i] = twin.routes[-1]
        replaced += 1
    if replaced and hasattr(router, "_mark_routes_changed"):  # FastAPI >= 0.16x caches included routes
        router._mark_routes_changed()
    return replaced


def _lookup(table: Mapping[tuple[str, str], Callable], route: APIRoute) -> Callable | None:
    return next(
        (fn for (method, path), fn in table.items() if path == route.path and method in route.methods), None
    )


def wire_running_server(
    max_body_size: int | None = None,
    replacements: Mapping[tuple[str, str], Callable] = {},
    guards: Mapping[tuple[str, str], Callable[..., None]] = {},
) -> None:
    """Apply the fixes when this process is the MONAI Label server (not a train/scoring subprocess)."""
    if "monailabel.app" not in sys.modules:
        return
    routers = [
        m.router
        for name, m in list(sys.modules.items())
        if name.startswith("monailabel.endpoints.") and isinstance(getattr(m, "router", None), APIRouter)
    ]
    logger.info(
        "re-registered %d MONAI Label endpoints (threaded, or on the loop if they read the raw request)",
        sum(unblock_endpoints(r, max_body_size, replacements, guards) for r in routers),
    )
