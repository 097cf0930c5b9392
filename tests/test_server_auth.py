"""MONAI Label's authentication with the app: roles decide who reads, who saves labels, who replaces
models. A Keycloak-compatible realm (tests/realm.py) issues the tokens; the 3D Slicer plugin's own
client logs in through the server's /auth/token and sends them."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.realm import Realm, new_key, sign
from tests.server import SAMPLE_CT, Server, copy_datastore, slicer_client_module, snapshot

pytestmark = pytest.mark.server

ROLES = {
    "viewer": ["monailabel-user"],
    "anna": ["monailabel-user", "monailabel-annotator"],
    "root": ["monailabel-user", "monailabel-annotator", "monailabel-reviewer", "monailabel-admin"],
}
CASES = ["case_011.nii.gz", "case_005.nii.gz"]
CHECKPOINT = Path(__file__).resolve().parents[1] / "monailabel_app" / "pretrained" / "ct_organs.pt"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    studies = copy_datastore(SAMPLE_CT, root / "studies", CASES)
    with Realm({name: (f"{name}-pw", roles) for name, roles in ROLES.items()}) as realm:
        env = {"MONAI_LABEL_AUTH_ENABLE": "true", "MONAI_LABEL_AUTH_REALM_URI": realm.uri}
        headers = {"Authorization": f"Bearer {realm.token('root')}"}
        server = Server(studies, root / "model", root / "server.log", env=env, headers=headers)
        try:
            yield server, realm, studies, root
        finally:
            server.stop()


def login(url: str, tmp: Path, user: str):
    """The Slicer client, logged in as ``user`` through the server's /auth/token."""
    client = slicer_client_module().MONAILabelClient(url, str(tmp))
    client.update_auth(client.auth_token(user, f"{user}-pw"))
    return client


def status_of(call) -> int:
    """HTTP status a Slicer client call failed with (its exceptions carry it in the message)."""
    with pytest.raises(Exception) as err:
        call()
    return int(str(getattr(err.value, "msg", err.value)).split("Status: ")[1].split(";")[0])


def test_roles_decide_who_reads_labels_and_models(setup, tmp_path):
    server, realm, studies, root = setup
    client = slicer_client_module().MONAILabelClient(server.url, str(tmp_path))
    assert client.auth_enabled()
    assert status_of(client.info) == 401  # no token
    label = studies / "labels" / "final" / CASES[0]
    before = snapshot(studies, root / "model")

    viewer = login(server.url, tmp_path, "viewer")
    assert "ct_organs" in viewer.info()["models"]
    assert status_of(lambda: viewer.save_label(CASES[0].removesuffix(".nii.gz"), str(label), "final")) == 403

    anna = login(server.url, tmp_path, "anna")
    with open(CHECKPOINT, "rb") as fh:
        r = requests.put(
            f"{server.url}/model/ct_organs", files={"file": ("m.pt", fh)}, headers=anna._headers, timeout=60
        )
    assert r.status_code == 403, r.text
    assert snapshot(studies, root / "model") == before  # refused requests changed nothing

    saved = anna.save_label(CASES[1].removesuffix(".nii.gz"), str(label.with_name(CASES[1])), "final")
    assert saved["image"] == CASES[1].removesuffix(".nii.gz")

    admin = login(server.url, tmp_path, "root")
    with open(CHECKPOINT, "rb") as fh:
        r = requests.put(
            f"{server.url}/model/ct_organs", files={"file": ("m.pt", fh)}, headers=admin._headers, timeout=60
        )
    assert r.status_code == 200, r.text
    assert r.json()["version"] >= 1


def test_bad_logins_and_tokens_get_401(setup, tmp_path):
    server, realm, _, _ = setup
    client = slicer_client_module().MONAILabelClient(server.url, str(tmp_path))
    assert status_of(lambda: client.auth_token("anna", "wrong")) == 401
    assert status_of(lambda: client.auth_token("nobody", "x")) == 401
    assert status_of(lambda: client.auth_token("anna", "")) == 422  # form validation: password required
    for token in (
        sign(new_key(), "root", ROLES["root"]),  # signed by another key
        realm.token("root", lifetime=-60),  # expired
        "not-a-jwt",
    ):
        r = requests.get(f"{server.url}/info/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 401, (token, r.status_code, r.text)
    assert server.alive()
