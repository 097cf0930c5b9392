"""Fixtures shared by the test modules: the 3D Slicer plugin's own client and real servers that are
stopped when their module ends (helpers to import live in ``tests/server.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import Server, slicer_client_module


@pytest.fixture(scope="session")
def slicer_client(tmp_path_factory) -> Callable[[str], Any]:
    """``slicer_client(url)``: a ``MONAILabelClient`` of the 3D Slicer plugin (its own file from the
    monailabel wheel) talking to ``url``, with a fresh download folder."""
    module = slicer_client_module()

    def make(url: str) -> Any:
        return module.MONAILabelClient(url, tmpdir=str(tmp_path_factory.mktemp("client")))

    return make


@pytest.fixture(scope="module")
def start_server() -> Iterator[Callable[..., Server]]:
    """``start_server(studies, model_dir, log, **kw)``: a running :class:`tests.server.Server`; every
    server started through it is stopped when the module ends (``stop()`` earlier is fine)."""
    servers: list[Server] = []

    def start(studies: Path | str, model_dir: Path, log: Path, **kw: Any) -> Server:
        servers.append(Server(studies, model_dir, log, **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
