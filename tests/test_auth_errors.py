"""The identity-provider failures the auth fix maps to 502/504 instead of MONAI Label's 500 (the
token check's first fetch of the realm's public key, in-process against real sockets)."""

from __future__ import annotations

import importlib
import socket

import pytest
from fastapi import HTTPException
from monailabel.config import settings

from lib.training.distributed import free_port
from monailabel_app.auth import install_auth_fix


@pytest.fixture
def auth(monkeypatch):
    """MONAI Label's auth module with the fix installed (restored afterwards), auth enabled."""
    module = importlib.import_module("monailabel.endpoints.user.auth")
    monkeypatch.setattr(module, "jwt", module.jwt)
    monkeypatch.setattr(module, "get_public_key", module.get_public_key)
    monkeypatch.setattr(settings, "MONAI_LABEL_AUTH_ENABLE", True)
    monkeypatch.setattr(settings, "MONAI_LABEL_AUTH_TIMEOUT", 1)
    original = module.get_public_key
    install_auth_fix()
    install_auth_fix()  # a second app load must not wrap the wrapper
    assert module.get_public_key.__wrapped_fetch__ is original
    return module


def test_realm_refusing_connections_is_502(auth, monkeypatch):
    monkeypatch.setattr(settings, "MONAI_LABEL_AUTH_REALM_URI", f"http://127.0.0.1:{free_port()}/realms/x")
    with pytest.raises(HTTPException) as err:
        auth.from_token("any-token")
    assert err.value.status_code == 502
    assert "identity provider" in err.value.detail


def test_realm_not_answering_is_504(auth, monkeypatch):
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}/realms/x"
        monkeypatch.setattr(settings, "MONAI_LABEL_AUTH_REALM_URI", uri)
        with pytest.raises(HTTPException) as err:
            auth.from_token("any-token")
    assert err.value.status_code == 504
