"""Placing a head in the scanner and synthesising its T1 image and brain mask."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from phantom_utils import axis_aligned_grid, smooth_noise, voxel_centres
from scipy import ndimage

from .head import Head
from .shapes import rotation
from .tissues import BRAIN, T1, Tissue


class MRICase(NamedTuple):
    """A generated case; ``tissue`` and ``bias`` are the ground truth at the voxel centres."""

    image: np.ndarray  # int16, scanner units
    mask: np.ndarray  # uint8, 1 = brain
    affine: np.ndarray  # 4x4 voxel -> world RAS (mm)
    tissue: np.ndarray  # uint8 Tissue at the voxel centre
    bias: np.ndarray  # float32 multiplicative bias field (geometric mean 1 over the head)
    scale: float  # stored units per unit of relative T1 signal (white matter = 1 before bias)


def bias_field(
    p: tuple[np.ndarray, ...], centre: np.ndarray, coef: np.ndarray, amplitude: float, head: np.ndarray
) -> np.ndarray:
    """Smooth multiplicative field: exp(quadratic in world mm / 100), +-``amplitude`` over ``head``."""
    x, y, z = ((p[i] - centre[i]) / 100.0 for i in range(3))
    log = sum(
        c * term for c, term in zip(coef, (x, y, z, x * x, y * y, z * z, x * y, x * z, y * z), strict=True)
    )
    log -= log[head].mean()
    log *= np.log1p(amplitude) / np.percentile(np.abs(log[head]), 99.0)
    return np.exp(log).astype(np.float32)


def generate_case(
    seed: int,
    spacing: tuple[float, float, float] | None = None,
    orientation: str = "RAS",
    supersample: int | None = None,
) -> MRICase:
    """Synthesise one T1-weighted head (see the module docstring for anatomy and mask definition).

    ``seed`` fixes the head, its pose, contrast, bias field, noise and scale; ``spacing`` (mm per voxel
    axis, the last one being the slice thickness) is drawn from the seed when None (in-plane 1-1.5 mm,
    slices 1-3 mm). ``orientation`` is the nibabel axis code of the affine (e.g. RAS, LPS, PIR).
    ``supersample`` sub-slices for the partial-volume slice profile (default: odd, about one per mm).
    """
    head_rng, case_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    head = Head(head_rng)
    drawn = (case_rng.uniform(1.0, 1.5), case_rng.uniform(1.0, 3.0))
    sp = np.array(spacing if spacing is not None else (drawn[0], drawn[0], drawn[1]), dtype=np.float64)
    rot = rotation(*case_rng.uniform([-10.0, -12.0, -6.0], [10.0, 12.0, 6.0]))
    trans = case_rng.uniform(-20.0, 20.0, 3)
    lo, hi = head.bounds(rot, trans)
    affine, dims = axis_aligned_grid(
        lo - case_rng.uniform(2.0, 6.0, 3), hi + case_rng.uniform(2.0, 6.0, 3), sp, orientation
    )
    table = np.array([mean + case_rng.normal(0.0, sd) for mean, sd in T1.values()])
    table[Tissue.VENTRICLE] = table[Tissue.CSF]
    bias_coef, amplitude = case_rng.normal(0.0, 1.0, 9), case_rng.uniform(0.25, 0.4)
    sigma, sigma_units = 1.0 / case_rng.uniform(30.0, 50.0), case_rng.uniform(1.0, 1.8)

    n_sub = supersample if supersample is not None else int(round(sp[2])) | 1
    inv = rot.T
    signal = np.zeros(dims, np.float32)
    for m in range(n_sub):
        world = voxel_centres(affine, dims, (m + 0.5) / n_sub - 0.5)
        local = tuple(sum(inv[a, b] * (world[b] - trans[b]) for b in range(3)) for a in range(3))
        t = head.tissue(local)
        signal += table[t].astype(np.float32)
        if m == n_sub // 2:
            tissue, centres, hull = t, world, head.pial_hull(local)
    signal /= n_sub
    signal *= 1.0 + 0.03 * smooth_noise(noise_rng, dims, 1.5 / sp)  # tissue texture
    signal = ndimage.gaussian_filter(signal, (0.45, 0.45, 0.0))  # in-plane PSF
    bias = bias_field(centres, trans, bias_coef, amplitude, tissue != Tissue.AIR)
    signal *= bias
    noise = noise_rng.standard_normal((2, *dims), dtype=np.float32) * np.float32(sigma)
    magnitude = np.sqrt((signal + noise[0]) ** 2 + noise[1] ** 2)
    scale = sigma_units / sigma
    image = np.clip(np.rint(magnitude * scale), 0, 32767).astype(np.int16)
    mask = (np.isin(tissue, BRAIN) | ((tissue == Tissue.CSF) & hull)).astype(np.uint8)
    return MRICase(image, mask, affine, tissue, bias, float(scale))
