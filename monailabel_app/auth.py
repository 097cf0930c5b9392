"""MONAI Label authentication fixes: tokens that verify, and logins that fail with a clear status.

MONAI Label 0.8.5 checks bearer tokens with ``jwt.decode(token, key, options=...)``, which PyJWT 2
refuses without ``algorithms``, so with auth enabled every token was rejected (HTTP 401 for every
user). :func:`install_auth_fix` gives that call the realm's signing algorithms (RS256, Keycloak's
default; ``MONAI_LABEL_AUTH_ALGORITHMS`` for others). ``POST /auth/token`` forwards the login to the
realm's OpenID token endpoint (password grant) and raised on any non-2xx answer, so a wrong password
surfaced as HTTP 500; :func:`access_token` answers 401 with a one-line reason, and 502/504 when the
identity provider is unreachable or failing. The token check's first fetch of the realm's public key
gets the same 502/504 instead of a 500 when the realm is down.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import jwt
import requests
from fastapi import Depends, HTTPException
from fastapi.security import OAuth2PasswordRequestForm
from monailabel.config import settings
from monailabel.endpoints.user.auth import token_uri


@contextmanager
def identity_provider_errors() -> Iterator[None]:
    """Turn a failed call to the identity provider into HTTP 504 (timeout) or 502 (anything else)."""
    try:
        yield
    except requests.Timeout:
        raise HTTPException(504, "identity provider did not answer in time") from None
    except (requests.RequestException, ValueError, KeyError) as e:
        raise HTTPException(502, f"identity provider unreachable or failing: {type(e).__name__}") from None


def access_token(form_data: OAuth2PasswordRequestForm = Depends()) -> dict[str, Any]:
    """Exchange a username and password for the realm's access token (same response as MONAI Label)."""
    if not settings.MONAI_LABEL_AUTH_ENABLE:
        return {"access_token": None, "token_type": None}
    data = {
        "client_id": settings.MONAI_LABEL_AUTH_CLIENT_ID,
        "username": form_data.username,
        "password": form_data.password,
        "grant_type": "password",
    }
    with identity_provider_errors():
        r = requests.post(token_uri(), data=data, timeout=settings.MONAI_LABEL_AUTH_TIMEOUT)
    if r.status_code in (400, 401, 403):
        refused = "login refused: invalid username or password"
        raise HTTPException(401, refused, {"WWW-Authenticate": "Bearer"})
    if not r.ok:
        raise HTTPException(502, f"identity provider answered HTTP {r.status_code}")
    return r.json()


def install_auth_fix() -> None:
    """In the running server only: token checks pass the allowed signing algorithms to PyJWT, and a
    realm that cannot give its public key is a 502/504."""
    auth = sys.modules.get("monailabel.endpoints.user.auth")
    if auth is None:
        return
    algorithms = os.environ.get("MONAI_LABEL_AUTH_ALGORITHMS", "RS256").split(",")

    def decode(token: str, key: str, **kwargs: Any) -> dict[str, Any]:
        return jwt.decode(token, key, algorithms=algorithms, **kwargs)

    auth.jwt = SimpleNamespace(decode=decode)
    fetch_key = getattr(auth.get_public_key, "__wrapped_fetch__", auth.get_public_key)

    def get_public_key(realm_uri: str) -> str:
        with identity_provider_errors():
            return fetch_key(realm_uri)

    get_public_key.__wrapped_fetch__ = fetch_key
    auth.get_public_key = get_public_key
