"""A Keycloak-compatible identity realm on 127.0.0.1 for the auth tests.

Keycloak itself cannot be installed here (no downloads beyond package registries), so the tests
serve the three realm endpoints MONAI Label's auth code talks to, with the same documents Keycloak
returns: ``GET /realms/<realm>`` (``public_key``: base64 DER of the realm's RSA key),
``GET /realms/<realm>/.well-known/openid-configuration`` (``token_endpoint``) and the OpenID
password grant ``POST .../protocol/openid-connect/token``, which signs RS256 access tokens carrying
``preferred_username``, ``email``, ``name`` and ``realm_access.roles`` (401 ``invalid_grant`` on a
wrong password). Everything downstream (token checks, role checks) is MONAI Label's real code.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign(key: rsa.RSAPrivateKey, username: str, roles: list[str], lifetime: float = 300.0) -> str:
    """An RS256 access token shaped like Keycloak's (roles under ``realm_access.roles``)."""
    now = int(time.time())
    claims = {
        "exp": now + int(lifetime),
        "iat": now,
        "preferred_username": username,
        "email": f"{username}@example.org",
        "name": username.title(),
        "realm_access": {"roles": roles},
    }
    return jwt.encode(claims, key, algorithm="RS256")


class Realm:
    """Serves one realm with ``users`` = {name: (password, roles)}; use as a context manager."""

    def __init__(self, users: dict[str, tuple[str, list[str]]], name: str = "monailabel") -> None:
        self.key = new_key()
        self.users = users
        self.name = name
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}/realms/{name}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Realm:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def token(self, username: str, lifetime: float = 300.0) -> str:
        return sign(self.key, username, self.users[username][1], lifetime)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        realm = self
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        path = f"/realms/{self.name}"

        class Handler(BaseHTTPRequestHandler):
            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == path:
                    self._send(200, {"realm": realm.name, "public_key": base64.b64encode(der).decode()})
                elif self.path == f"{path}/.well-known/openid-configuration":
                    token = f"{realm.uri}/protocol/openid-connect/token"
                    self._send(200, {"issuer": realm.uri, "token_endpoint": token})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                if self.path != f"{path}/protocol/openid-connect/token":
                    return self._send(404, {"error": "not found"})
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                user, password = form.get("username", [""])[0], form.get("password", [""])[0]
                known = user in realm.users and realm.users[user][0] == password
                if form.get("grant_type") != ["password"] or not known:
                    return self._send(401, {"error": "invalid_grant"})
                access = realm.token(user)
                self._send(200, {"access_token": access, "token_type": "Bearer", "expires_in": 300})

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        return Handler
