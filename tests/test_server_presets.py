"""MRI brain and X-ray lung presets through the real server: infer on the input's grid, train, publish."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from lib.metrics import dice
from tests.server import REPO_ROOT, copy_datastore, wait_for_task

pytestmark = pytest.mark.server

PRESETS = {
    "mri_brain": (
        REPO_ROOT / "sample-data" / "mri",
        ["head_000.nii.gz", "head_005.nii.gz", "head_009.nii.gz"],
    ),
    "xray_lungs": (
        REPO_ROOT / "sample-data" / "xray",
        ["cxr_000.png", "cxr_003.png", "cxr_007.png", "cxr_012.png"],
    ),
}


@pytest.fixture(scope="module", params=list(PRESETS))
def preset_server(request, tmp_path_factory, start_server, slicer_client):
    name = request.param
    src, cases = PRESETS[name]
    root = tmp_path_factory.mktemp(name)
    studies = copy_datastore(src, root / "studies", cases)
    server = start_server(studies, root / "model", root / "server.log", conf={"models": name})
    yield name, server, slicer_client(server.url), studies, cases
    server.stop()  # before the next preset's server starts


def test_infer_on_input_grid_and_short_training_publishes(preset_server):
    name, server, client, studies, cases = preset_server
    info = client.info()
    assert list(info["models"]) == [name]
    assert info["models"][name]["dimension"] == (2 if name == "xray_lungs" else 3)
    image = cases[0]
    image_id = image.split(".")[0]
    path, params = client.infer(name, image_id, {})
    truth_path = studies / "labels" / "final" / image
    if name == "xray_lungs":
        out = np.array(Image.open(path))
        truth = np.array(Image.open(truth_path))
        assert (
            Path(path).suffix == ".png"
            and out.shape == truth.shape == np.array(Image.open(studies / image)).shape
        )
        assert min(dice(out == v, truth == v) for v in (1, 2)) >= 0.9
    else:
        out_img, src = nib.load(path), nib.load(studies / image)
        assert out_img.shape == src.shape
        np.testing.assert_allclose(out_img.affine, src.affine, atol=1e-4)
        assert dice(np.asarray(out_img.dataobj) == 1, np.asarray(nib.load(truth_path).dataobj) == 1) >= 0.9
    assert params["model_version"] == "default"

    client.train_start(name, {"max_epochs": 1, "num_samples": 1, "val_split": 0.34})
    assert wait_for_task(server.url, "train", 600)["status"] == "DONE"
    assert client.info()["models"][name]["model_version"] == 1
    _, params = client.infer(name, image_id, {})
    assert params["model_version"] == 1
