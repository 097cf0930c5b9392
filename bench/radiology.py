"""The MONAI Label radiology sample app (shipped in the monailabel wheel) as a benchmark reference.

Both benchmarks compare against its ``segmentation_spleen`` model started from scratch (no
pretrained weights, no SAM2); its datastores get spleen-only labels because that model knows
one label.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.server import Server  # noqa: E402

RADIOLOGY_APP = Path(sys.prefix) / "monailabel" / "sample-apps" / "radiology"
SPLEEN = 2  # value of the spleen in our CT labels
MODEL = "segmentation_spleen"


def write_spleen_label(source: Path, target: Path, pad_z: int = 0) -> None:
    """Write ``source``'s spleen as the binary label the radiology model trains on; ``pad_z`` slices
    of background are added on each side (see :func:`write_padded_image`)."""
    lab = nib.load(source)
    spleen = (np.asarray(lab.dataobj) == SPLEEN).astype(np.uint8)
    _save_padded(spleen, lab.affine, target, pad_z, 0)


def write_padded_image(source: Path, target: Path, min_extent_mm: float, fill: float = -1000.0) -> int:
    """Copy a CT image with slices of air added on each side of the slab until it spans at least
    ``min_extent_mm`` along its third axis (the radiology trainer takes fixed 96 mm random crops and
    crashes on thinner volumes); returns the slices added per side."""
    img = nib.load(source)
    thickness = float(img.header.get_zooms()[2])
    pad_z = math.ceil(max(0.0, min_extent_mm - img.shape[2] * thickness) / (2 * thickness))
    _save_padded(np.asarray(img.dataobj), img.affine, target, pad_z, fill)
    return pad_z


def _save_padded(array: np.ndarray, affine: np.ndarray, target: Path, pad_z: int, fill: float) -> None:
    if pad_z:
        array = np.pad(array, ((0, 0), (0, 0), (pad_z, pad_z)), constant_values=fill)
        affine = affine.copy()
        affine[:3, 3] -= affine[:3, 2] * pad_z  # the first original slice keeps its position
    target.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), target)


def start_server(studies: Path, tmp: Path) -> Server:
    """Start a copy of the radiology app (``segmentation_spleen`` only) on ``studies``."""
    app = shutil.copytree(RADIOLOGY_APP, tmp / "radiology-app", ignore=shutil.ignore_patterns("model"))
    conf = {"models": MODEL, "use_pretrained_model": "false", "sam2": "false"}
    env = {"MLFLOW_ALLOW_FILE_STORE": "true"}  # its trainer logs to an mlflow file store
    return Server(studies, tmp / "radiology-model", tmp / "radiology.log", conf=conf, app=str(app), env=env)
