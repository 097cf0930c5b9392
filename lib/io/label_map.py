"""Reading integer label maps (NIfTI or NRRD) with their voxel spacing, for scoring against predictions."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


class LabelMapError(ValueError):
    """A file that is not a readable 2-D or 3-D integer label map; the message says why."""


def _read_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """NRRD data and voxel spacing (norms of "space directions", else "spacings", else 1.0)."""
    try:
        import nrrd
    except ImportError as e:
        raise LabelMapError(f"cannot read {path}: NRRD support needs pynrrd") from e
    data, header = nrrd.read(str(path))
    if "space directions" in header:
        spacing = np.linalg.norm(np.asarray(header["space directions"], dtype=float), axis=1)
    else:
        spacing = np.asarray(header.get("spacings", np.ones(data.ndim)), dtype=float)
    return data, spacing


def read_label_map(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Integer label map (2-D or 3-D) and its voxel spacing in mm (from the NIfTI affine / NRRD header)."""
    try:
        if path.name.endswith(".nrrd"):
            data, spacing = _read_nrrd(path)
        else:
            image = nib.load(path)
            data, spacing = np.asanyarray(image.dataobj), nib.affines.voxel_sizes(image.affine)
    except LabelMapError:
        raise
    except Exception as e:  # any reader failure (corrupt, truncated, wrong format) is a user-facing error
        raise LabelMapError(f"cannot read {path}: {e}") from e
    if data.ndim not in (2, 3):
        raise LabelMapError(f"{path} has shape {data.shape}; expected a 2-D or 3-D label map")
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.rint(data)):
            raise LabelMapError(f"{path} is not an integer label map (dtype {data.dtype})")
        data = data.astype(np.int64)
    return data, tuple(float(s) for s in spacing[: data.ndim])
