"""MONAI Label authentication fixes: tokens that verify, and logins that fail with a clear status.

MONAI Label 0.8.5 checks bearer tokens with ``jwt.decode(token, key, options=...)``, which PyJWT 2
refuses without ``algorithms``, so with auth enabled every token was rejected (HTTP 401 for every
user). :func:`install_auth_fix` gives that call the realm's signing algorithms (RS256, Keycloak's
default; ``MONAI_LABEL_AUTH_ALGORITHMS`` for others). ``POST /auth/token`` forwards the login to the
realm's OpenID token endpoint (password grant) and raised on any non-2xx answer, so a wrong password
surfaced as HTTP 500; :func:`access_token` answers 401 with a one-line reason, and 502/504 when the
identity provider is unreachable or failing.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

import jwt
import requests
from fastapi import Depends, HTTPException
from fastapi.security import OAuth2PasswordRequestForm
from monailabel.config import settings
from monailabel.endpoints.user.auth import token_uri


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
    try:
        url = token_uri()
        r = requests.post(url, data=data, timeout=settings.MONAI_LABEL_AUTH_TIMEOUT)
    except requests.Timeout:
        raise HTTPException(504, "identity provider did not answer in time") from None
    except (requests.RequestException, ValueError) as e:
        raise HTTPException(502, f"identity provider unreachable: {type(e).__name__}") from None
    if r.status_code in (400, 401, 403):
        refused = "login refused: invalid username or password"
        raise HTTPException(401, refused, {"WWW-Authenticate": "Bearer"})
    if not r.ok:
        raise HTTPException(502, f"identity provider answered HTTP {r.status_code}")
    return r.json()


def install_auth_fix() -> None:
    """In the running server only: token checks pass the allowed signing algorithms to PyJWT."""
    auth = sys.modules.get("monailabel.endpoints.user.auth")
    if auth is None:
        return
    algorithms = os.environ.get("MONAI_LABEL_AUTH_ALGORITHMS", "RS256").split(",")

    def decode(token: str, key: str, **kwargs: Any) -> dict[str, Any]:
        return jwt.decode(token, key, algorithms=algorithms, **kwargs)

    auth.jwt = SimpleNamespace(decode=decode)
