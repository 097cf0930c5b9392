"""End to end: 3D Slicer's session path (a volume of the user's own, not in the datastore) and the /infer
requests that name no usable image, against the real server with the shipped CT model."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests
from monailabel.utils.sessions import Sessions

from lib.inference.writer import write_label
from lib.io.validate import read_volume
from tests.server import SAMPLE_CT, Server, copy_datastore, mean_dice, slicer_client_module

pytestmark = pytest.mark.server

ORGANS = {"liver": 1, "spleen": 2, "kidney_left": 3, "kidney_right": 4}
IN_STORE = "case_001.nii.gz"
OUTSIDE = "case_006.nii.gz"  # copied out of the datastore copy: the user's own volume


def planted_expired_session(store: Path, image: Path) -> str:
    """A session as MONAI Label's session store writes it, last used two hours ago (expiry one hour)."""
    sessions = Sessions(str(store), expiry=3600)
    copy = store.parent / "planted.nii.gz"
    shutil.copy(image, copy)
    session_id, info = sessions.add_session(str(copy))
    info.last_access_ts = int(time.time()) - 7200
    (store / session_id / "meta.info").write_text(info.to_str())
    return session_id


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("session")
    studies = copy_datastore(SAMPLE_CT, root / "studies", [IN_STORE, OUTSIDE])
    outside = root / "outside"
    (outside / "labels").mkdir(parents=True)
    (studies / OUTSIDE).rename(outside / OUTSIDE)
    (studies / "labels" / "final" / OUTSIDE).rename(outside / "labels" / OUTSIDE)
    store = root / "sessions"
    expired = planted_expired_session(store, outside / OUTSIDE)
    srv = Server(studies, root / "model", root / "server.log", env={"MONAI_LABEL_SESSION_PATH": str(store)})
    srv.outside, srv.store, srv.expired, srv.studies = outside, store, expired, studies
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return slicer_client_module().MONAILabelClient(server.url, tmpdir=str(tmp_path_factory.mktemp("client")))


def infer(url: str, query: dict, params: dict | None = None, **kw) -> requests.Response:
    return requests.post(
        f"{url}/infer/ct_organs", params=query, data={"params": json.dumps(params or {})}, timeout=300, **kw
    )


def test_slicer_session_segments_a_volume_that_is_not_in_the_datastore(server, client, tmp_path):
    src = nib.load(server.outside / OUTSIDE)
    volume = tmp_path / "slicer_volume.nrrd"  # Slicer saves the scene's volume as NRRD (LPS)
    write_label(np.asarray(src.dataobj), src.affine, str(volume), "int16")
    truth = np.asarray(nib.load(server.outside / "labels" / OUTSIDE).dataobj)
    before = client.datastore()

    session_id = client.create_session(str(volume))["session_id"]
    assert client.get_session(session_id)["image"].startswith(str(server.store))
    result, params = client.infer(
        "ct_organs", "slicer_volume", {"result_extension": ".nrrd"}, session_id=session_id
    )
    label, affine = read_volume(result)
    image, image_affine = read_volume(str(volume))
    assert label.shape == image.shape == src.shape
    np.testing.assert_allclose(affine, image_affine, atol=1e-4)
    np.testing.assert_allclose(affine, src.affine, atol=1e-4)
    assert mean_dice(np.rint(label).astype(np.uint8), truth, list(ORGANS.values())) >= 0.85
    assert params["label_names"] == ORGANS and "note" not in params
    after = client.datastore()  # nothing was added or labelled in the datastore
    assert set(after["objects"]) == set(before["objects"])
    assert after["objects"][IN_STORE[:-7]]["labels"] == before["objects"][IN_STORE[:-7]]["labels"]

    client.remove_session(session_id)
    r = infer(server.url, {"image": "slicer_volume", "session_id": session_id})
    assert r.status_code == 404 and "unknown or expired session" in r.json()["detail"]


def test_expired_sessions_are_cleaned_up_and_refused(server):
    assert not (server.store / server.expired).exists()  # MONAI Label's clean-up at start-up
    r = infer(server.url, {"image": "whatever", "session_id": server.expired})
    assert r.status_code == 404 and "unknown or expired session" in r.json()["detail"]
    r = infer(server.url, {"image": "whatever", "session_id": "no-such-session"})
    assert r.status_code == 404
    with open(server.outside / OUTSIDE, "rb") as fh:  # a session that expires after one second
        r = requests.put(
            f"{server.url}/session/", params={"expiry": 1}, files={"files": (OUTSIDE, fh)}, timeout=60
        )
    session_id = r.json()["session_id"]
    time.sleep(2.5)
    assert (server.store / session_id).exists()  # the periodic clean-up has not come by yet
    r = infer(server.url, {"image": "whatever", "session_id": session_id})
    assert r.status_code == 404 and "unknown or expired session" in r.json()["detail"]


def test_no_other_server_path_is_accepted(server, client, tmp_path):
    session_id = client.create_session(str(server.outside / OUTSIDE))["session_id"]
    session_image = client.get_session(session_id)["image"]
    for query, params in (
        ({"image": session_image}, {}),  # the session's own file, named as a path
        ({"image": IN_STORE[:-7]}, {"image": session_image}),  # a path smuggled in through params
        ({"image": IN_STORE[:-7]}, {"image": "/etc/passwd"}),
        ({"image": "../studies/" + IN_STORE[:-7]}, {}),
    ):
        r = infer(server.url, query, params)
        assert r.status_code == 400, (query, params, r.text)
    r = infer(server.url, {"image": IN_STORE[:-7]}, {"session": {"image": "/etc/passwd"}})
    assert r.status_code == 400 and "params" in r.json()["detail"]


def test_infer_without_an_image_is_400_with_the_reason(server):
    for query in ({}, {"image": ""}, {"image": "", "session_id": ""}):
        r = infer(server.url, query)
        assert r.status_code == 400, r.text
        assert r.json()["detail"].startswith("image: required"), r.text


def test_constant_image_gives_an_empty_label_and_a_note(server, tmp_path):
    affine = nib.load(server.studies / IN_STORE).affine
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.full((120, 100, 12), 40, np.int16), affine), flat)
    with open(flat, "rb") as fh:
        r = infer(server.url, {"output": "json"}, files={"file": ("flat.nii.gz", fh)})
    assert r.status_code == 200, r.text
    assert "nothing to segment" in r.json()["note"]
    with open(flat, "rb") as fh:
        r = infer(
            server.url,
            {"output": "image"},
            {"result_extension": ".nrrd"},
            files={"file": ("flat.nii.gz", fh)},
        )
    assert r.status_code == 200, r.text
    out = tmp_path / "out.nrrd"
    out.write_bytes(r.content)
    label, label_affine = read_volume(str(out))
    assert label.shape == (120, 100, 12) and not label.any()
    np.testing.assert_allclose(label_affine, affine, atol=1e-4)


def test_largest_component_is_read_per_request(server):
    image = IN_STORE[:-7]
    for sent, used in (("false", False), (True, True), (["true", "false"], True)):
        r = infer(server.url, {"image": image, "output": "json"}, {"largest_component": sent})
        assert r.status_code == 200 and r.json()["largest_component"] is used, (sent, r.text)
    r = infer(server.url, {"image": image, "output": "json"}, {"largest_component": "maybe"})
    detail = r.json()["detail"]
    assert r.status_code == 400 and detail.startswith("invalid infer option largest_component"), r.text
