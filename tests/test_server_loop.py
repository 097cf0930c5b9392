"""The active-learning loop through the real server with the 3D Slicer client: sample, infer, submit,
train, publish a new version, infer with it; stop keeps the served model; retrains never leak val/test."""

from __future__ import annotations

import json
import time

import pytest
import requests
import torch

from tests.server import SAMPLE_CT, annotator_datastore, wait_for_task

pytestmark = pytest.mark.server

LABELLED = ["case_000.nii.gz", "case_004.nii.gz", "case_008.nii.gz", "case_011.nii.gz"]
UNLABELLED = ["case_003.nii.gz", "case_005.nii.gz"]


FAST = {"max_epochs": 2, "num_samples": 1, "train_batch_size": 2}


def wait_for_training(client, timeout=600):
    return wait_for_task(client.get_server_url(), "train", timeout)


def split(root):
    return json.loads((root / "model" / "ct_organs" / "split.json").read_text())["patients"]


@pytest.fixture(scope="module")
def loop(tmp_path_factory, start_server, slicer_client):
    """A server that has been once through the loop before any test runs: next sample (random,
    epistemic), infer with the shipped model, submit the label, train, infer with the new version.
    What each step answered is kept in ``first``, so every test below runs alone or in any order."""
    root = tmp_path_factory.mktemp("loop")
    studies, _ = annotator_datastore(SAMPLE_CT, root, LABELLED, UNLABELLED)
    server = start_server(studies, root / "model", root / "server.log")
    client = slicer_client(server.url)
    first = {"info": client.info()}
    first["samples"] = [client.next_sample(strategy, {}) for strategy in ("random", "epistemic")]
    image_id = first["samples"][-1]["id"]
    first["infer_before"] = client.infer("ct_organs", image_id, {})[1]
    client.save_label(image_id, str(root / "truth" / f"{image_id}.nii.gz"), tag="final")
    client.train_start("ct_organs", FAST)
    first["train_status"] = wait_for_training(client)
    info = client.info()
    first["train_stats"] = info["train_stats"]["ct_organs"]
    first["version_after"] = info["models"]["ct_organs"]["model_version"]
    first["infer_after"] = client.infer("ct_organs", image_id, {})[1]
    return server, client, root, first


def test_full_loop_publishes_and_serves_a_new_version(loop):
    server, client, root, first = loop
    assert set(first["info"]["strategies"]) >= {"random", "first", "epistemic"}
    assert first["info"]["models"]["ct_organs"]["model_version"] == "default"
    for sample in first["samples"]:
        assert sample["id"] in {n.replace(".nii.gz", "") for n in UNLABELLED}
        assert sample["name"].endswith(".nii.gz") and sample["path"].endswith(sample["name"])
    assert first["infer_before"]["model_version"] == "default"

    assert first["train_status"]["status"] == "DONE", first["train_status"]
    stats = first["train_stats"]
    assert stats["status"] == "finished" and stats["published_version"] == 1
    # -1: no trained epoch beat the starting (shipped) weights on validation, which are kept
    assert len(stats["epochs"]) == 2 and stats["best_epoch"] in (-1, 0, 1) and stats["notes"]
    last = stats["epochs"][-1]
    for key in ("train_loss", "val_loss", "lr", "val_mean_dice"):
        assert isinstance(last[key], float)
    assert set(last["val_dice"]) == set(last["val_iou"]) == {"liver", "spleen", "kidney_left", "kidney_right"}
    assert isinstance(stats["diagnostics"], list) and "stopped_early" in stats
    assert list((root / "model" / "ct_organs" / "train" / "tensorboard").glob("events.out.tfevents.*"))
    assert list((root / "model" / "ct_organs" / "train" / "tensorboard").glob("val_epoch*.png"))

    assert first["version_after"] == 1
    assert first["infer_after"]["model_version"] == 1


def test_scoring_stores_the_served_models_metrics(loop):
    server, client, root, _ = loop
    served = client.info()["models"]["ct_organs"]["model_version"]
    r = requests.post(f"{server.url}/scoring/metrics")
    assert r.status_code == 200
    assert wait_for_task(server.url, "scoring", 300)["status"] == "DONE"
    objects = client.datastore()["objects"]
    table = objects["case_000"]["image"]["info"]["metrics_ct_organs"]
    assert table["model_version"] == served
    assert set(table["metrics"]["liver"]) >= {"dice", "iou", "hd95", "assd"}


def test_retrain_never_moves_val_or_test_into_training(loop):
    server, client, root, _ = loop
    served = client.info()["models"]["ct_organs"]["model_version"]
    before = split(root)
    held_out = {p for p, s in before.items() if s in ("val", "test")}
    assert held_out
    remaining = [n for n in UNLABELLED if n.replace(".nii.gz", "") not in before]
    client.save_label(remaining[0].replace(".nii.gz", ""), str(root / "truth" / remaining[0]), tag="final")
    client.train_start("ct_organs", FAST)
    assert wait_for_training(client)["status"] == "DONE"
    after = split(root)
    assert {p: s for p, s in after.items() if p in before} == before
    stats = client.info()["train_stats"]["ct_organs"]
    assert not held_out & {n.replace(".nii.gz", "") for n in stats["split"]["train"]}
    assert stats["published_version"] == served + 1


def test_two_process_cpu_ddp_training_publishes(loop):
    server, client, root, _ = loop
    served = client.info()["models"]["ct_organs"]["model_version"]
    client.train_start("ct_organs", {**FAST, "max_epochs": 1, "multi_gpu": True, "num_processes": 2})
    status = wait_for_training(client)
    assert status["status"] == "DONE", status
    stats = client.info()["train_stats"]["ct_organs"]
    assert stats["status"] == "finished" and stats["published_version"] == served + 1
    assert client.info()["models"]["ct_organs"]["model_version"] == served + 1


def test_stopping_a_training_keeps_the_served_version(loop):
    server, client, root, _ = loop
    served = client.info()["models"]["ct_organs"]["model_version"]
    client.train_start("ct_organs", {"max_epochs": 200, "num_samples": 1})
    stats_file = root / "model" / "ct_organs" / "train_stats.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        stats = json.loads(stats_file.read_text())
        if stats["status"] == "running" and stats.get("epochs"):
            break
        time.sleep(1)
    client.train_stop()
    assert not client.train_status(check_if_running=True)
    assert client.info()["models"]["ct_organs"]["model_version"] == served
    path = root / "model" / "ct_organs" / f"v{served:04d}.pt"
    torch.load(path, weights_only=True)
    _, params = client.infer("ct_organs", "case_000", {})
    assert params["model_version"] == served
