"""Write label maps in the client's format (NIfTI or NRRD) with the input's geometry, atomically."""

from __future__ import annotations

import gzip

import nibabel as nib
import nrrd
import numpy as np
from PIL import Image

from lib.io.atomic import atomic_path

WRITABLE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".png")
LABEL_DTYPES = ("uint8", "uint16", "int16", "int32", "float32")
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def write_label(
    label: np.ndarray, affine: np.ndarray, path: str, dtype: str = "uint8", compresslevel: int = 1
) -> str:
    """Write ``label`` (X, Y[, Z]) with voxel->RAS ``affine`` to ``path`` (.nii.gz, .nii, .nrrd, or .png).

    PNG is for 2-D maps only and stores rows = Y, columns = X (the layout MONAI reads PNGs into).
    The file is written beside its destination and renamed into place, so readers never see a partial
    file. Fast gzip level 1 by default (label maps compress well at any level).
    """
    ext = next((e for e in WRITABLE_EXTENSIONS if path.endswith(e)), None)
    if ext is None:
        raise ValueError(f"unsupported label extension for {path!r}; use one of {WRITABLE_EXTENSIONS}")
    if dtype not in LABEL_DTYPES:
        raise ValueError(f"unsupported label dtype {dtype!r}; use one of {LABEL_DTYPES}")
    data = np.ascontiguousarray(label.astype(dtype, copy=False))
    with atomic_path(path, suffix=ext) as tmp:
        if ext == ".png":
            if data.ndim != 2 or data.dtype not in (np.uint8, np.uint16):
                raise ValueError("PNG labels must be 2-D uint8/uint16")
            Image.fromarray(data.T).save(tmp, format="PNG")
        elif ext == ".nrrd":
            direction = _RAS_TO_LPS @ np.asarray(affine, np.float64)[:3, :3]
            header = {
                "space": "left-posterior-superior",
                "space directions": direction.T[: data.ndim],
                "space origin": _RAS_TO_LPS @ np.asarray(affine, np.float64)[:3, 3],
                "kinds": ["domain"] * data.ndim,
                "encoding": "gzip",
            }
            nrrd.write(tmp, data, header, compression_level=compresslevel)
        else:
            img = nib.Nifti1Image(data, np.asarray(affine, np.float64))
            img.header.set_data_dtype(data.dtype)
            payload = img.to_bytes()
            with open(tmp, "wb") as fh:
                fh.write(gzip.compress(payload, compresslevel, mtime=0) if ext == ".nii.gz" else payload)
    return path
