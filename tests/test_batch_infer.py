"""Batch inference through the real server on a CPU: every unlabelled image gets an ``original``
label from the served model, progress is reported, a corrupt image is reported and skipped, a rerun
changes nothing, explicit id lists work and bad selections get a 4xx before anything runs."""

from __future__ import annotations

import json
import shutil
import time

import nibabel as nib
import numpy as np
import pytest
import requests

from lib.metrics.dice import dice
from tests.server import SAMPLE_CT, Server, annotator_datastore, snapshot

pytestmark = pytest.mark.server

LABELLED = ["case_000.nii.gz", "case_004.nii.gz"]
UNLABELLED = ["case_011.nii.gz"]  # its label is moved aside: the truth to score the batch result on
SHIPPED_UNLABELLED = "new_000.nii.gz"
CORRUPT = "scan_corrupt.nii.gz"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    studies, truth = annotator_datastore(SAMPLE_CT, root, LABELLED, UNLABELLED)
    shutil.copy(SAMPLE_CT / SHIPPED_UNLABELLED, studies)
    (studies / CORRUPT).write_bytes(b"\x1f\x8b\x08 this is not a NIfTI file")
    server = Server(studies, root / "model", root / "server.log")
    yield server, studies, truth
    server.stop()


def _wait_for_batch(url: str, timeout: float = 600.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        task = requests.get(f"{url}/batch/infer", timeout=30).json()
        if task.get("status") not in ("SUBMITTED", "RUNNING"):
            return task
        time.sleep(2)
    raise TimeoutError("batch inference did not finish")


def _original(url: str) -> dict[str, dict]:
    objects = requests.get(f"{url}/datastore/", params={"output": "all"}, timeout=30).json()["objects"]
    return {k: v["labels"]["original"]["info"] for k, v in objects.items() if "original" in v["labels"]}


def test_background_batch_labels_every_unlabelled_image_and_reports_the_corrupt_one(env):
    server, studies, truth = env
    r = requests.post(f"{server.url}/batch/infer/ct_organs", params={"images": "unlabeled"}, timeout=30)
    assert r.status_code == 200, r.text
    task = _wait_for_batch(server.url)
    assert task["status"] == "DONE", task
    details = "\n".join(task["details"])
    assert "batch infer ct_organs: 3/3" in details  # one progress line per image
    result = json.loads(next(line for line in task["details"] if "Result: " in line).split("Result: ", 1)[1])
    assert result["labelled"] == ["case_011", "new_000"] and result["skipped"] == []
    assert (
        list(result["failed"]) == ["scan_corrupt"] and "cannot read image" in result["failed"]["scan_corrupt"]
    )

    deadline = time.time() + 30  # the server's datastore picks up the batch process's index
    while set(_original(server.url)) != {"case_011", "new_000"} and time.time() < deadline:
        time.sleep(1)
    original = _original(server.url)
    assert set(original) == {"case_011", "new_000"}
    assert all(
        i["model"] == "ct_organs" and i["params"]["model_version"] == "default" for i in original.values()
    )
    labels = studies / "labels" / "original"
    assert sorted(p.name for p in labels.iterdir()) == ["case_011.nii.gz", "new_000.nii.gz"]  # no temp files
    for name in ("case_011.nii.gz", SHIPPED_UNLABELLED):
        image, label = nib.load(studies / name), nib.load(labels / name)
        assert label.shape == image.shape
        np.testing.assert_allclose(label.affine, image.affine, atol=1e-5)
    pred = np.asarray(nib.load(labels / "case_011.nii.gz").dataobj)
    ref = np.asarray(nib.load(truth / "case_011.nii.gz").dataobj)
    assert np.mean([dice(pred == v, ref == v) for v in (1, 2, 3, 4)]) >= 0.85
    # still unlabelled: an original label is a proposal, not a final one
    stats = requests.get(f"{server.url}/datastore/", params={"output": "stats"}, timeout=30).json()
    assert stats["completed"] == len(LABELLED)


def test_a_rerun_skips_what_is_done_and_changes_nothing(env):
    server, studies, _ = env
    before = snapshot(studies / "labels")
    r = requests.post(
        f"{server.url}/batch/infer/ct_organs", params={"images": "unlabeled", "run_sync": "true"}, timeout=300
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["labelled"] == [] and result["skipped"] == ["case_011", "new_000"]
    assert list(result["failed"]) == ["scan_corrupt"]
    assert snapshot(studies / "labels") == before


def test_a_list_of_ids_and_refusals_before_anything_runs(env):
    server, studies, _ = env
    url = f"{server.url}/batch/infer/ct_organs"
    r = requests.post(url, params={"run_sync": "true"}, json={"images": ["case_000"]}, timeout=300)
    assert r.status_code == 200, r.text
    assert r.json()["labelled"] == ["case_000"] and r.json()["total"] == 1
    assert (studies / "labels" / "original" / "case_000.nii.gz").exists()
    before = snapshot(studies / "labels")
    refusals = {
        404: [
            (f"{server.url}/batch/infer/nope", {}, None, "unknown model"),
            (url, {}, {"images": ["case_000", "ghost"]}, "unknown image id(s) ['ghost']"),
        ],
        400: [
            (url, {}, {"images": 5}, "a non-empty list of image ids"),
            (url, {}, {"images": []}, "non-empty"),
        ],
        422: [(url, {"images": "some"}, None, "")],  # not one of all / labeled / unlabeled
    }
    for status, cases in refusals.items():
        for target, params, body, detail in cases:
            r = requests.post(target, params={**params, "run_sync": "true"}, json=body, timeout=60)
            assert r.status_code == status, (target, params, body, r.text)
            assert detail in json.dumps(r.json()["detail"]), r.text
    assert snapshot(studies / "labels") == before
