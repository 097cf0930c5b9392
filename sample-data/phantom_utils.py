"""Helpers shared by the deterministic synthetic sample-data generators (``generate_*.py``).

Import with ``sample-data`` on ``sys.path`` (it is when a generator runs as a script). Everything
here is deterministic: outputs depend only on the inputs (and the seeded generator passed in).
"""

from __future__ import annotations

import io
import struct
import zlib

import nibabel as nib
import numpy as np
from PIL import Image
from scipy import ndimage

_AXES = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


def gzip_bytes(data: bytes) -> bytes:
    """Gzip with a fixed header (mtime 0, OS unknown) so the output depends only on ``data`` (and zlib)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    body = comp.compress(data) + comp.flush()
    crc = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + crc


def nifti_gz_bytes(array: np.ndarray, affine: np.ndarray) -> bytes:
    """Reproducible ``.nii.gz`` bytes (scanner-anatomical qform/sform, mm units)."""
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return gzip_bytes(img.to_bytes())


def png_bytes(array: np.ndarray) -> bytes:
    """Grayscale PNG bytes of a 2-D uint8 or uint16 array (rows top to bottom, no metadata chunks)."""
    if array.ndim != 2 or array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected a 2-D uint8/uint16 array, got {array.dtype} {array.shape}")
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float | np.ndarray) -> np.ndarray:
    """Unit-variance Gaussian random field (float32): white noise low-passed by a ``sigma``-voxel Gaussian."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    f /= f.std(dtype=np.float64)
    return f


def axis_aligned_grid(
    lo: np.ndarray, hi: np.ndarray, spacing: np.ndarray | tuple[float, ...], orientation: str
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Affine (world RAS, mm) and shape of the smallest grid covering the world box ``[lo, hi]``.

    ``orientation`` is the nibabel axis code (any permutation, e.g. ``RAS``, ``LPS``, ``PIR``, ``LIP``):
    voxel axis ``k`` runs towards ``orientation[k]`` with step ``spacing[k]`` mm. The grid is centred
    on the box and the origin rounded to micrometres.
    """
    axes = [_AXES[c] for c in orientation.upper()]
    if len(axes) != 3 or sorted(a for a, _ in axes) != [0, 1, 2]:
        raise ValueError(f"orientation must name each of R/L, A/P, S/I once, got {orientation!r}")
    spacing = np.asarray(spacing, dtype=np.float64)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    affine = np.diag([0.0, 0.0, 0.0, 1.0])
    shape = []
    centre = (lo + hi) / 2
    for k, (world, sign) in enumerate(axes):
        n = int(np.ceil((hi[world] - lo[world]) / spacing[k])) + 1
        affine[world, k] = sign * spacing[k]
        affine[world, 3] = centre[world] - sign * spacing[k] * (n - 1) / 2
        shape.append(n)
    affine[:3, 3] = np.round(affine[:3, 3], 3)
    return affine, tuple(shape)


def voxel_centres(
    affine: np.ndarray, shape: tuple[int, ...], slice_offset: float = 0.0
) -> tuple[np.ndarray, ...]:
    """World (x, y, z) of the voxel centres, shifted by ``slice_offset`` voxels along the last axis."""
    idx = [
        np.arange(n, dtype=np.float64).reshape([-1 if a == k else 1 for a in range(3)])
        for k, n in enumerate(shape)
    ]
    idx[2] = idx[2] + slice_offset
    return tuple(
        affine[a, 0] * idx[0] + affine[a, 1] * idx[1] + affine[a, 2] * idx[2] + affine[a, 3] for a in range(3)
    )
