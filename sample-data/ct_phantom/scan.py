"""Placing a patient in the scanner, sampling its tissues on a voxel grid and synthesising the CT image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from phantom_utils import smooth_noise
from scipy import ndimage

from .patient import Patient
from .shapes import Block, Structure, box_corners, rotation_z
from .tissues import HU_MAX, HU_MIN, PHASE_HU, TISSUE_HU, Tissue

MAX_BLOCK_VOXELS = 1 << 19

_AXIS_SIGN = {"R": 1.0, "L": -1.0, "A": 1.0, "P": -1.0, "S": 1.0, "I": -1.0}


def scan_grid(
    patient: Patient,
    rot: np.ndarray,
    trans: np.ndarray,
    spacing: np.ndarray,
    orientation: str,
    z_range: tuple[float, float],
    margin: float,
    shape: tuple[int, int, int] | None,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Axis-aligned affine (world RAS) and matrix covering the body (or a centred FOV of ``shape``)."""
    if (
        len(orientation) != 3
        or orientation[0] not in "RL"
        or orientation[1] not in "AP"
        or orientation[2] not in "SI"
    ):
        raise ValueError(f"orientation must look like 'RAS' or 'LPS', got {orientation!r}")
    signs = np.array([_AXIS_SIGN[c] for c in orientation])
    a, ba, bp = patient.extent(*z_range)
    if shape is None:
        lo = np.array([-a - margin, -bp - margin, z_range[0]])
        hi = np.array([a + margin, ba + margin, z_range[1]])
        world = box_corners(lo, hi) @ rot.T + trans
        wlo, whi = world.min(axis=0), world.max(axis=0)
        n = np.floor((whi - wlo) / spacing).astype(int) + 1
        start = (wlo + whi) / 2 - (n - 1) * spacing / 2
    else:
        n = np.asarray(shape, dtype=int)
        start = rot @ np.array([0.0, (ba - bp) / 2, sum(z_range) / 2]) + trans - (n - 1) * spacing / 2
    affine = np.eye(4)
    affine[:3, :3] = np.diag(signs * spacing)
    affine[:3, 3] = np.round(np.where(signs > 0, start, start + (n - 1) * spacing), 3)
    return affine, (int(n[0]), int(n[1]), int(n[2]))


def paint_tissues(
    structures: list[Structure],
    affine: np.ndarray,
    shape: tuple[int, int, int],
    rot: np.ndarray,
    trans: np.ndarray,
    offset: float,
    labels: np.ndarray | None,
) -> np.ndarray:
    """Tissue map at voxel centres shifted by ``offset`` voxels along axis 2 (and labels, if given)."""
    m = rot.T @ affine[:3, :3]
    c = rot.T @ (affine[:3, 3] - trans) + m[:, 2] * offset
    m_inv = np.linalg.inv(m)
    tissue = np.zeros(shape, np.uint8)
    for s in structures:
        ijk = (box_corners(s.lo, s.hi) - c) @ m_inv.T
        lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        step = max(1, MAX_BLOCK_VOXELS // int((hi[0] - lo[0]) * (hi[1] - lo[1])))
        i = np.arange(lo[0], hi[0], dtype=np.float64)[:, None, None]
        j = np.arange(lo[1], hi[1], dtype=np.float64)[None, :, None]
        for k0 in range(lo[2], hi[2], step):
            k1 = min(k0 + step, hi[2])
            k = np.arange(k0, k1, dtype=np.float64)[None, None, :]
            p = tuple(
                sum((m[a, d] * v for d, v in enumerate((i, j, k)) if m[a, d] != 0), np.full((1, 1, 1), c[a]))
                for a in range(3)
            )
            pts = box_corners((lo[0], lo[1], k0), (hi[0] - 1, hi[1] - 1, k1 - 1)) @ m.T + c
            t, lab = s.fn(Block(p, pts.min(axis=0), pts.max(axis=0), (hi[0] - lo[0], hi[1] - lo[1], k1 - k0)))
            view = tissue[lo[0] : hi[0], lo[1] : hi[1], k0:k1]
            sel = t > 0
            if s.fill:
                sel &= np.isin(view, s.fill)
            view[sel] = t[sel]
            if labels is not None:
                labels[lo[0] : hi[0], lo[1] : hi[1], k0:k1][sel] = 0 if lab is None else lab[sel]
    return tissue


@dataclass
class ScanPlan:
    patient: Patient
    rot: np.ndarray
    trans: np.ndarray
    affine: np.ndarray
    dims: tuple[int, int, int]
    spacing: np.ndarray
    table: np.ndarray
    tex_rng: np.random.Generator


def plan_scan(
    seed: int,
    spacing: tuple[float, float, float] | None,
    shape: tuple[int, int, int] | None,
    orientation: str,
    z_extent: float | None,
    phase: str = "portal_venous",
) -> ScanPlan:
    """Patient, placement in the scanner, sampling grid and tissue HU table (contrast ``phase``) of a case."""
    patient_rng, case_rng, tex_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    patient = Patient(patient_rng)
    drawn = (case_rng.uniform(0.6, 1.0), case_rng.uniform(1.5, 5.0))
    sp = np.array(spacing if spacing is not None else (drawn[0], drawn[0], drawn[1]), dtype=np.float64)
    rot = rotation_z(case_rng.uniform(-4.0, 4.0))
    trans = case_rng.uniform([-20.0, -40.0, -350.0], [20.0, 10.0, 100.0])
    margin = case_rng.uniform(3.0, 7.0)
    table = np.array([TISSUE_HU[t][:3] for t in Tissue], dtype=np.float64)
    for tissue, (mean, coarse) in PHASE_HU[phase].items():
        table[tissue, :2] = mean, coarse
    table[:, 0] += [case_rng.normal(0.0, TISSUE_HU[t][3]) for t in Tissue]
    z_range = (patient.z_lo, patient.z_hi)
    if z_extent is not None:
        mid = sum(patient.z_overlap) / 2
        z_range = (mid - z_extent / 2, mid + z_extent / 2)
    affine, dims = scan_grid(patient, rot, trans, sp, orientation, z_range, margin, shape)
    return ScanPlan(patient, rot, trans, affine, dims, sp, table, tex_rng)


def generate_ct_case(
    seed: int,
    spacing: tuple[float, float, float] | None = None,
    shape: tuple[int, int, int] | None = None,
    orientation: str = "RAS",
    z_extent: float | None = None,
    supersample: int | None = None,
    phase: str = "portal_venous",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthesise one abdominal CT: (HU int16 array, label uint8 array, 4x4 RAS affine).

    ``seed`` fixes the patient; ``spacing`` (in-plane x, y, slice thickness in mm) is drawn from
    the seed when None. Without ``shape`` the matrix is cropped to the body over the organ span
    (liver dome to below the kidneys; ``z_extent`` mm centred on the four organs if given); with
    ``shape`` a full FOV of that size is centred on the abdomen (e.g. 512x512x200 at 0.78x0.78x2.5).
    ``orientation`` is the nibabel axis code of the affine ([RL][AP][SI], e.g. RAS, LPS, LPI).
    ``supersample`` sub-slices per slice for the partial-volume slice profile (default about one
    per 1.25 mm of thickness, fewer for very large volumes to bound the run time). ``phase``: the contrast
    phase, one of ``tissues.PHASES`` (the enhancement of organs, vessels and collecting system).
    """
    plan = plan_scan(seed, spacing, shape, orientation, z_extent, phase)
    dims, sp, table = plan.dims, plan.spacing, plan.table
    n_sub = supersample
    if n_sub is None:
        n_sub = max(1, min(int(sp[2] / 1.25), int(4e7 // np.prod(dims)))) | 1
    tex_c = smooth_noise(plan.tex_rng, dims, 3.0 / sp)
    tex_f = smooth_noise(plan.tex_rng, dims, 0.9 / sp)
    vessels = 650.0 * np.clip((tex_f - 1.6) * 1.5, 0.0, 1.0)
    structures = plan.patient.structures()
    hu = np.zeros(dims, np.float64)
    labels = np.zeros(dims, np.uint8)
    for m in range(n_sub):
        centre = m == n_sub // 2
        offset = (m + 0.5) / n_sub - 0.5
        tissue = paint_tissues(
            structures, plan.affine, dims, plan.rot, plan.trans, offset, labels if centre else None
        )
        hu += table[tissue, 0] + table[tissue, 1] * tex_c + table[tissue, 2] * tex_f
        hu += np.where(tissue == Tissue.LUNG, vessels, 0.0)
        if centre:
            outside = tissue == Tissue.AIR
    del tex_c, tex_f, vessels
    hu /= n_sub
    hu = ndimage.gaussian_filter(hu, (0.45 / sp[0], 0.45 / sp[1], 0.0))
    size = np.sqrt(plan.patient.half_width * plan.patient.half_depth / (145.0 * 100.0))
    sigma = float(np.clip(7.5 * np.sqrt(5.0 / sp[2]) * size, 7.0, 14.0))
    noise = smooth_noise(plan.tex_rng, dims, (0.7, 0.7, 0.0))
    noise[outside] = 0.0  # air outside the body is masked flat, as scanners do outside the FOV
    hu += sigma * noise
    return np.clip(np.rint(hu), HU_MIN, HU_MAX).astype(np.int16), labels, plan.affine
