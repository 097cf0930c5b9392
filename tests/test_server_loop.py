"""The active-learning loop through the real server with the 3D Slicer client: sample, infer, submit,
train, publish a new version, infer with it; stop keeps the served model; retrains never leak val/test."""

from __future__ import annotations

import json
import time

import pytest
import requests
import torch

from tests.server import SAMPLE_CT, Server, annotator_datastore, slicer_client_module, wait_for_task

pytestmark = pytest.mark.server

LABELLED = ["case_000.nii.gz", "case_004.nii.gz", "case_008.nii.gz", "case_011.nii.gz"]
UNLABELLED = ["case_003.nii.gz", "case_005.nii.gz"]


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    studies, _ = annotator_datastore(SAMPLE_CT, root, LABELLED, UNLABELLED)
    server = Server(studies, root / "model", root / "server.log")
    client = slicer_client_module().MONAILabelClient(server.url, tmpdir=str(root))
    yield server, client, root
    server.stop()


def wait_for_training(client, timeout=600):
    return wait_for_task(client.get_server_url(), "train", timeout)


def split(root):
    return json.loads((root / "model" / "ct_organs" / "split.json").read_text())["patients"]


FAST = {"max_epochs": 2, "num_samples": 1, "train_batch_size": 2}


def test_full_loop_publishes_and_serves_a_new_version(loop):
    server, client, root = loop
    info = client.info()
    assert set(info["strategies"]) >= {"random", "first", "epistemic"}
    assert info["models"]["ct_organs"]["model_version"] == "default"
    for strategy in ("random", "epistemic"):
        sample = client.next_sample(strategy, {})
        assert sample["id"] in {n.replace(".nii.gz", "") for n in UNLABELLED}
        assert sample["name"].endswith(".nii.gz") and sample["path"].endswith(sample["name"])
    image_id = sample["id"]
    _, params = client.infer("ct_organs", image_id, {})
    assert params["model_version"] == "default"
    client.save_label(image_id, str(root / "truth" / f"{image_id}.nii.gz"), tag="final")

    client.train_start("ct_organs", FAST)
    status = wait_for_training(client)
    assert status["status"] == "DONE", status
    stats = client.info()["train_stats"]["ct_organs"]
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

    assert client.info()["models"]["ct_organs"]["model_version"] == 1
    _, params = client.infer("ct_organs", image_id, {})
    assert params["model_version"] == 1

    # scoring: per-image metrics of the served model, stored in the datastore
    r = requests.post(f"{server.url}/scoring/metrics")
    assert r.status_code == 200
    assert wait_for_task(server.url, "scoring", 300)["status"] == "DONE"
    objects = client.datastore()["objects"]
    table = objects["case_000"]["image"]["info"]["metrics_ct_organs"]
    assert table["model_version"] == 1 and set(table["metrics"]["liver"]) >= {"dice", "iou", "hd95", "assd"}


def test_retrain_never_moves_val_or_test_into_training(loop):
    server, client, root = loop
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
    assert stats["published_version"] == 2


def test_two_process_cpu_ddp_training_publishes(loop):
    server, client, root = loop
    served = client.info()["models"]["ct_organs"]["model_version"]
    client.train_start("ct_organs", {**FAST, "max_epochs": 1, "multi_gpu": True, "num_processes": 2})
    status = wait_for_training(client)
    assert status["status"] == "DONE", status
    stats = client.info()["train_stats"]["ct_organs"]
    assert stats["status"] == "finished" and stats["published_version"] == served + 1
    assert client.info()["models"]["ct_organs"]["model_version"] == served + 1


def test_stopping_a_training_keeps_the_served_version(loop):
    server, client, root = loop
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
