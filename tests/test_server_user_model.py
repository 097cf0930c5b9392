"""A model the user declares (--conf models NAME --conf labels ...) through the real server and the
3D Slicer plugin's client: listed untrained, 409 before training, planned at the first training, then
a label added on restart is trained with the published weights partially loaded."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests

from lib.training.recipe import FROM_SCRATCH
from tests.server import Server, slicer_client_module, wait_for_task

pytestmark = pytest.mark.server

TRAIN = {"max_epochs": "2", "early_stop_patience": "5", "val_split": "0.25"}


def phantom(seed: int, kidney: bool) -> tuple[np.ndarray, np.ndarray]:
    """A small CT-like volume (HU: air, body, two organs and a 'kidney') and its label map."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(40)] * 2, np.arange(24), indexing="ij"), -1).astype(float)
    shift = rng.uniform(-2, 2, 3)
    image = np.full((40, 40, 24), -1000.0)
    label = np.zeros((40, 40, 24), np.uint8)
    body = np.linalg.norm((grid - [20, 20, 12] - shift) / [17, 15, 30], axis=-1) < 1
    image[body] = 20
    organs = ((1, [14, 20, 12], 6, 90), (2, [27, 17, 12], 4, 140), (3, [22, 28, 12], 3, 200))
    for value, centre, radius, hu in organs:
        organ = np.linalg.norm(grid - np.add(centre, shift), axis=-1) < radius
        image[organ] = hu
        if value < 3 or kidney:
            label[organ] = value
    return image + rng.normal(0, 10, image.shape), label


def write_studies(root: Path, kidney: bool) -> Path:
    (root / "labels" / "final").mkdir(parents=True, exist_ok=True)
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    for i in range(4):
        image, label = phantom(i, kidney)
        nib.save(nib.Nifti1Image(image.astype(np.int16), affine), root / f"case_{i}.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), root / "labels" / "final" / f"case_{i}.nii.gz")
    return root


def test_declared_model_cold_start_plan_train_and_label_added(tmp_path):
    studies = write_studies(tmp_path / "studies", kidney=False)
    model_dir = tmp_path / "model"
    conf = {"models": "my_organs", "labels": "organ_a,organ_b", "interactive": "true"}
    server = Server(studies, model_dir, tmp_path / "server1.log", conf=conf)
    try:
        client = slicer_client_module().MONAILabelClient(server.url, tmpdir=str(tmp_path))
        info = client.info()["models"]["my_organs"]
        assert info["labels"] == {"organ_a": 1, "organ_b": 2}
        assert info["trained"] is False and info["plan"].startswith("planned from the labelled images")
        r = requests.post(f"{server.url}/infer/my_organs?image=case_0", timeout=60)
        assert r.status_code == 409 and "no trained version yet" in r.json()["detail"]

        client.train_start("my_organs", TRAIN)
        assert wait_for_task(server.url)["status"] == "DONE", server.tail()
        stats = client.info()["train_stats"]["my_organs"]
        assert stats["status"] == "finished" and stats["published_version"] == 1, stats
        info = client.info()["models"]["my_organs"]
        plan = json.loads((model_dir / "my_organs" / "plan.json").read_text())
        assert info["trained"] is True and info["model_version"] == 1
        assert info["spacing"] == plan["spacing"] == [1.5, 1.5, 3.0]  # the median spacing of the data
        assert info["patch_size"] == plan["patch_size"]
        assert info["plan"]["modality"] == "CT" and info["plan"]["intensity"]["scheme"] == "ct_dataset"
        # the planned network (with its full-resolution stage) differs from every shipped one: it
        # starts from scratch and says so
        assert stats["pretrained"] == {"checkpoint": None, "report": FROM_SCRATCH}

        path, params = client.infer("my_organs", "case_1", {})
        out = nib.load(path)
        ref = nib.load(studies / "case_1.nii.gz")
        assert out.shape == ref.shape and np.allclose(out.affine, ref.affine)
        assert params["model_version"] == 1 and params["label_names"] == {"organ_a": 1, "organ_b": 2}

        # the interactive twin: listed as deepedit and untrained, trained from the Train button starting
        # from the published segmentation model (its guidance inputs at zero), then it takes clicks
        twin = client.info()["models"]["my_organs_deepedit"]
        assert twin["type"] == "deepedit" and twin["trained"] is False
        assert twin["labels"] == {"background": 0, "organ_a": 1, "organ_b": 2}
        assert twin["plan"]["spacing"] == plan["spacing"] and "click-guidance" in twin["plan"]["inputs"]
        r = requests.post(f"{server.url}/infer/my_organs_deepedit?image=case_0", timeout=60)
        assert r.status_code == 409
        client.train_start("my_organs_deepedit", TRAIN)
        assert wait_for_task(server.url)["status"] == "DONE", server.tail()
        stats = client.info()["train_stats"]["my_organs_deepedit"]
        assert stats["published_version"] == 1 and stats["pretrained"]["checkpoint"] == "v0001.pt", stats
        assert "added input channels start at zero" in stats["pretrained"]["report"]
        auto_file, _ = client.infer("my_organs_deepedit", "case_1", {})
        clicks = {"organ_a": [[14, 20, 12]], "organ_b": [], "label": "organ_a"}
        clicked_file, params = client.infer("my_organs_deepedit", "case_1", clicks)
        auto, clicked = (np.asarray(nib.load(f).dataobj) for f in (auto_file, clicked_file))
        assert clicked.shape == ref.shape and params["model_version"] == 1
        assert params["latencies"]["cached_image"] == 1.0  # the image was preprocessed once
        rest = clicked != 1  # organ_b and the background stay as the last answer had them
        assert np.array_equal(clicked[rest], np.where(auto == 1, 0, auto)[rest])
    finally:
        server.stop()

    # restart with one more label (the annotations now carry it): v1 still serves, the next training
    # keeps the shared output channels and starts the new one fresh
    write_studies(studies, kidney=True)
    conf["labels"] = "organ_a,organ_b,kidney"
    server = Server(studies, model_dir, tmp_path / "server2.log", conf=conf)
    try:
        client = slicer_client_module().MONAILabelClient(server.url, tmpdir=str(tmp_path))
        info = client.info()["models"]["my_organs"]
        assert info["labels"] == {"organ_a": 1, "organ_b": 2, "kidney": 3} and info["model_version"] == 1
        _, params = client.infer("my_organs", "case_2", {})
        assert params["model_version"] == 1 and params["label_names"] == {"organ_a": 1, "organ_b": 2}

        client.train_start("my_organs", TRAIN)
        assert wait_for_task(server.url)["status"] == "DONE", server.tail()
        stats = client.info()["train_stats"]["my_organs"]
        assert stats["published_version"] == 2 and stats["pretrained"]["checkpoint"] == "v0001.pt"
        assert "output channels of new labels start fresh: kidney" in stats["pretrained"]["report"]
        _, params = client.infer("my_organs", "case_2", {})
        assert params["model_version"] == 2 and params["label_names"]["kidney"] == 3
    finally:
        server.stop()


def test_bad_declarations_stop_the_start_with_the_reason(tmp_path):
    studies = write_studies(tmp_path / "studies", kidney=False)
    for conf, message in (
        ({"models": "mine", "labels": "a,a"}, "unique names"),
        ({"models": "ct_organs", "labels": "a,b"}, "name exactly one model of your own"),
        ({"models": "mine"}, "unknown model(s) ['mine']"),
        ({"models": "mine", "labels": "a,b", "modality": "PET"}, "modality 'PET'"),
    ):
        with pytest.raises(RuntimeError, match="exited") as e:
            Server(studies, tmp_path / "model", tmp_path / "bad.log", conf=conf, timeout=120)
        assert message in str(e.value) or message in (tmp_path / "bad.log").read_text()
