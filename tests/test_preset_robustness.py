"""The shipped MRI and X-ray models are stable under the intensity changes real scans bring."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from lib.inference.predictor import Predictor
from lib.metrics import dice
from lib.planning.presets import build_network, get_preset
from tests.server import REPO_ROOT

PRETRAINED = REPO_ROOT / "monailabel_app" / "pretrained"


def predictor(name: str) -> Predictor:
    preset = get_preset(name)
    network = build_network(preset)
    network.load_state_dict(torch.load(PRETRAINED / f"{name}.pt", weights_only=True)["state_dict"])
    return Predictor(preset, network, backend="fp32")


@pytest.fixture(scope="module")
def mri():
    return predictor("mri_brain")


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(data, affine), path)
    return str(path)


def test_mri_output_is_stable_under_bias_field_and_intensity_scaling(mri, tmp_path):
    src = nib.load(REPO_ROOT / "sample-data" / "mri" / "head_010.nii.gz")
    data = np.asarray(src.dataobj).astype(np.float32)
    base = mri(_save(tmp_path / "base.nii.gz", data, src.affine)).label
    assert base.sum() > 0
    # strong smooth multiplicative field: x0.5 .. x1.5 along a diagonal, plus a quadratic bump
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in data.shape], indexing="ij")
    field = 1.0 + 0.5 * (grid[0] + grid[1]) / 2 + 0.2 * (grid[2] ** 2 - 0.3)
    variants = {
        "bias": data * field.astype(np.float32),
        "x0.01": data * 0.01,
        "x100": data * 100.0,
        "uint8": np.round(255 * data / data.max()).astype(np.uint8),
        "int16": data.astype(np.int16),
    }
    for name, array in variants.items():
        out = mri(_save(tmp_path / f"{name}.nii.gz", array, src.affine)).label
        assert dice(out == 1, base == 1) >= 0.95, name


def test_xray_output_is_stable_under_gamma_and_exposure(tmp_path):
    xray = predictor("xray_lungs")
    raw = np.array(Image.open(REPO_ROOT / "sample-data" / "xray" / "cxr_015.png")).astype(np.float64)
    top = 255.0 if raw.max() <= 255 else 65535.0
    norm = raw / top
    base = xray(str(REPO_ROOT / "sample-data" / "xray" / "cxr_015.png")).label
    variants = {
        "gamma0.6": norm**0.6,
        "gamma1.6": norm**1.6,
        "underexposed": 0.15 + 0.55 * norm,
        "overexposed": np.clip(1.3 * norm - 0.05, 0, 1),
    }
    for name, image in variants.items():
        path = tmp_path / f"{name}.png"
        Image.fromarray(np.round(255 * image).astype(np.uint8)).save(path)
        out = xray(str(path)).label
        for value in (1, 2):
            assert dice(out == value, base == value) >= 0.95, (name, value)
