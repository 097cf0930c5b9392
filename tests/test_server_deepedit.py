"""End to end: the shipped interactive twin ``ct_organs_deepedit`` through the real server and the 3D
Slicer plugin's client, sending clicks as Slicer's SmartEdit panel does (every label's landmarks, the
``background`` segment's as background clicks, ``label`` the segment being edited)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import requests
from scipy import ndimage

from lib.interactive.simulation import deepest_voxel, make_faint
from lib.metrics import dice
from tests.server import SAMPLE_CT, copy_datastore

pytestmark = pytest.mark.server

ORGANS = {"liver": 1, "spleen": 2, "kidney_left": 3, "kidney_right": 4}
TWIN = "ct_organs_deepedit"
CASE = "case_006"  # held out from the shipped models


def no_clicks() -> dict:
    return {name: [] for name in [*ORGANS, "background"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory, start_server):
    root = tmp_path_factory.mktemp("deepedit")
    studies = copy_datastore(SAMPLE_CT, root / "studies", [f"{CASE}.nii.gz"])
    truth = np.asarray(nib.load(studies / "labels" / "final" / f"{CASE}.nii.gz").dataobj)
    ref = nib.load(studies / f"{CASE}.nii.gz")
    image = np.asarray(ref.dataobj).astype(np.float32)[None]
    # a missed organ: the left kidney given exactly the intensity around it (contrast factor 0)
    kidney = truth == ORGANS["kidney_left"]
    faint = make_faint(image, kidney, 0.0, truth == 0)[0]
    nib.save(nib.Nifti1Image(np.round(faint).astype(np.int16), ref.affine), studies / "faint.nii.gz")
    server = start_server(studies, root / "model", root / "server.log", conf={"interactive": "true"})
    server.studies, server.truth, server.ref = studies, truth, ref
    return server


def test_twins_are_opt_in(tmp_path, start_server, slicer_client):
    studies = copy_datastore(SAMPLE_CT, tmp_path / "studies", [f"{CASE}.nii.gz"])
    plain = start_server(studies, tmp_path / "model", tmp_path / "server.log")
    try:
        info = slicer_client(plain.url).info()
        assert TWIN not in info["models"] and "background" not in info["labels"]
    finally:
        plain.stop()


def test_info_lists_the_twin_as_deepedit(server, slicer_client):
    info = slicer_client(server.url).info()
    twin = info["models"][TWIN]
    assert twin["type"] == "deepedit" and twin["trained"] is True and twin["model_version"] == "default"
    assert twin["labels"] == {"background": 0, **ORGANS}
    assert "background" in info["labels"]  # Slicer's SmartEdit sends the landmarks of these segments
    assert (
        twin["spacing"] == info["models"]["ct_organs"]["spacing"]
        and "click-guidance" in twin["plan"]["inputs"]
    )
    assert info["models"]["ct_organs"]["type"] == "segmentation" and TWIN in info["trainers"]


@pytest.mark.parametrize(
    "params, status, message",
    [
        ({"liver": [[10, 10]]}, 400, "every click needs 3 voxel indices"),
        ({"liver": [[10, 10, 999]]}, 400, "outside the image"),
        ({"pancreas": [[1, 2, 3]]}, 400, "clicks for unknown label 'pancreas'"),
        ({"label": "pancreas"}, 400, "unknown label 'pancreas'"),
        ({"liver": [[1.5, 2, 3]]}, 400, "a point is 2 or 3 voxel indices"),
        ({"liver": [[1, 2, 3]], "spleen": [[1, 2, 3]]}, 400, "clicked both as 'liver' and as 'spleen'"),
        ({"liver": [[1, 2, 3]], "reset_state": "maybe"}, 400, "reset_state"),
    ],
)
def test_malformed_clicks_are_refused(server, params, status, message):
    r = requests.post(
        f"{server.url}/infer/{TWIN}?image={CASE}", data={"params": json.dumps(params)}, timeout=120
    )
    assert r.status_code == status and message in r.json()["detail"], r.text


def _label(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def test_a_click_adds_a_missed_organ_and_leaves_the_others(server, slicer_client):
    client = slicer_client(server.url)
    truth, kidney = server.truth, ORGANS["kidney_left"]
    auto = _label(client.infer(TWIN, "faint", {"reset_state": True})[0])
    before = dice(auto == kidney, truth == kidney)
    assert before < 0.5  # the invisible kidney is (mostly) missed
    clicks = {**no_clicks(), "kidney_left": [deepest_voxel(truth == kidney)], "label": "kidney_left"}
    path, params = client.infer(TWIN, "faint", clicks)
    edited = _label(path)
    assert dice(edited == kidney, truth == kidney) > before + 0.05, params
    for name in ("liver", "spleen", "kidney_right"):  # untouched outside the clicked kidney region
        outside = edited != kidney
        assert np.array_equal((edited == ORGANS[name])[outside], (auto == ORGANS[name])[outside]), name
    assert params["latencies"]["cached_image"] == 1.0 and params["latencies"]["total"] < 5


def test_a_background_click_removes_a_false_positive(server, slicer_client):
    """A background click (Slicer's ``background`` segment) at the deepest voxel of the auto answer's
    largest false positive shrinks it and edits only the label it was clicked on."""
    client = slicer_client(server.url)
    truth = server.truth
    auto = _label(client.infer(TWIN, "faint", {"reset_state": True})[0])
    wrong = (auto > 0) & (auto != truth) & (truth == 0)
    components, _ = ndimage.label(wrong)
    region = components == 1 + int(np.bincount(components.ravel())[1:].argmax())
    value = int(np.bincount(auto[region]).argmax())
    assert region.sum() > 50, "no false positive to remove"
    clicks = {**no_clicks(), "background": [deepest_voxel(region)], "label": "background"}
    edited = _label(client.infer(TWIN, "faint", clicks)[0])
    # one click removes a good part of it (the largest false positive here is a shell along an
    # organ's surface, so one blob cannot take all of it)
    assert ((edited == value) & region).sum() < 0.85 * ((auto == value) & region).sum()
    for other in set(ORGANS.values()) - {value}:
        assert np.array_equal(edited == other, auto == other), other
