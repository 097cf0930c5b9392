"""POST /auth/token: the identity provider's answer as a clear HTTP status, not a 500.

MONAI Label forwards the login to the realm's OpenID token endpoint (Keycloak password grant) and
raises on any non-2xx answer, so a wrong password surfaced as HTTP 500. Here a refused login is a
401 with a one-line reason, and an unreachable or failing identity provider a 502/504.
"""

from __future__ import annotations

from typing import Any

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
