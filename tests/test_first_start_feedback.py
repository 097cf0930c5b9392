"""What a new user sees on a datastore without labels, through the real server and the 3D Slicer
client: a training that cannot run says why in ``train_stats`` and the log; Next Sample offers the
unlabelled images and, once every image is labelled, answers 404 with a reason a viewer shows."""

from __future__ import annotations

import pytest
import requests

from tests.server import SAMPLE_CT, Server, annotator_datastore, slicer_client_module, wait_for_task

pytestmark = pytest.mark.server

IMAGES = ["case_004.nii.gz", "case_011.nii.gz"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("first_start")
    studies, truth = annotator_datastore(SAMPLE_CT, root, [], IMAGES)  # no final labels at all
    server = Server(studies, root / "model", root / "server.log")
    module = slicer_client_module()
    client = module.MONAILabelClient(server.url, tmpdir=str(root))
    yield server, client, truth, module
    server.stop()


def test_a_training_without_labels_is_refused_before_it_starts(env):
    server, client, _, module = env
    with pytest.raises(module.MONAILabelClientException) as raised:
        client.train_start("ct_organs", {"max_epochs": 1})  # what OHIF's Update Model sends
    assert "Status: 409" in raised.value.msg  # the client's train_start gives no status_code
    assert "no image has a final label yet; submit labels first" in raised.value.msg
    assert client.info()["train_stats"].get("ct_organs", {}).get("status") is None


def test_a_training_that_fails_says_why(tmp_path):
    studies, _ = annotator_datastore(SAMPLE_CT, tmp_path, IMAGES, [])
    (studies / "labels" / "final" / IMAGES[0]).write_bytes(b"not a label")  # broken on disk after upload
    server = Server(studies, tmp_path / "model", tmp_path / "server.log")
    try:
        client = slicer_client_module().MONAILabelClient(server.url, tmpdir=str(tmp_path))
        client.train_start("ct_organs", {"max_epochs": 1})
        assert wait_for_task(server.url, "train", 300)["status"] == "ERROR"
        stats = client.info()["train_stats"]["ct_organs"]
        assert stats["status"] == "failed" and stats["model"] == "ct_organs"
        assert stats["error"] and stats.get("epochs", []) == [] and "published_version" not in stats
        assert f"ct_organs: training failed: {stats['error'].splitlines()[0]}" in server.tail(400)
    finally:
        server.stop()


def test_next_sample_offers_unlabelled_images_then_says_every_image_is_labelled(env):
    server, client, truth, module = env
    seen = set()
    for _ in IMAGES:
        sample = client.next_sample("first", {})
        assert sample["id"] in {n.removesuffix(".nii.gz") for n in IMAGES} - seen
        seen.add(sample["id"])
        client.save_label(sample["id"], str(truth / f"{sample['id']}.nii.gz"), tag="final")
    r = requests.post(f"{server.url}/activelearning/random", timeout=30)
    assert r.status_code == 404
    assert r.json()["detail"] == (
        "next sample: every image is labelled (2 of 2 have a final label); "
        "add new images to the studies folder or DICOM archive to label more"
    )
    # the Slicer plugin shows the client's message: status and the detail
    with pytest.raises(module.MONAILabelClientException) as raised:
        client.next_sample("epistemic", {})
    assert raised.value.status_code == 404 and "every image is labelled (2 of 2" in raised.value.msg
