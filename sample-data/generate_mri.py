"""Deterministic synthetic T1-weighted head MRI phantoms with brain masks for the sample datastore.

Run ``python sample-data/generate_mri.py`` from the repository root to regenerate, bit for bit,
``sample-data/mri/head_NNN.nii.gz`` (int16, arbitrary scanner units, a different scale per case) and
``sample-data/mri/labels/final/head_NNN.nii.gz`` (uint8, 1 = brain). ``generate_case`` is importable
(with ``sample-data`` on ``sys.path``) for tests that need variants.

Anatomy is a set of implicit shapes in a head frame (mm; +x right, +y anterior, +z superior, origin
near the centre of the cerebrum), smoothly warped, rigidly placed in world RAS and sampled at the voxel
centres of each case's affine, so any axis-aligned orientation gets correct geometry. From outside in:
scalp (skin/galea and bright subcutaneous fat) over face and neck soft tissue, eyes in orbital fat,
skull (dark cortical tables around slightly brighter diploe), extra-cerebral CSF, then the brain:
cerebrum (cortical grey matter around white matter, folded by band-limited random fields so that CSF
filled sulci cut into the cortex, split by the interhemispheric fissure above the corpus callosum),
cerebellum (finer folia), brainstem, deep grey nuclei and the lateral and third ventricles.

Brain mask definition (the skull-stripping convention of BET / FreeSurfer brain masks: the brain's
envelope, not its tissue classes): a voxel is brain when its centre lies in cerebral or cerebellar
grey or white matter, a deep grey nucleus, a ventricle (lateral or third, CSF included), the
brainstem above the foramen magnum, or the CSF of a sulcus (inside the pial hull of the cerebrum or
cerebellum). The subarachnoid space outside that hull, the interhemispheric fissure, skull, scalp,
eyes and the spinal cord are not brain.

Image: T1 contrast (fat > WM > deep GM > GM > soft tissue > diploe > CSF > cortical bone), averaged
over sub-slices (box slice profile, partial volume), in-plane Gaussian PSF, a smooth multiplicative
bias field (quadratic in world coordinates, +-25-40 % over the head), Rician noise, then int16.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import NamedTuple

import numpy as np
from phantom_utils import axis_aligned_grid, nifti_gz_bytes, smooth_noise, voxel_centres
from scipy import ndimage


class Tissue(IntEnum):
    """Tissue classes at a point."""

    AIR = 0
    FAT = 1
    SOFT = 2  # skin, galea, muscle
    BONE = 3  # cortical bone
    DIPLOE = 4
    CSF = 5  # extra-cerebral CSF and vitreous
    GM = 6
    WM = 7
    DEEP = 8  # deep grey nuclei
    VENTRICLE = 9
    STEM = 10  # brainstem (above the foramen magnum)
    CORD = 11


BRAIN = (Tissue.GM, Tissue.WM, Tissue.DEEP, Tissue.VENTRICLE, Tissue.STEM)

# T1 signal relative to white matter: mean, per-case SD (ventricles use the case's CSF value).
T1: dict[Tissue, tuple[float, float]] = {
    Tissue.AIR: (0.0, 0.0),
    Tissue.FAT: (1.25, 0.08),
    Tissue.SOFT: (0.45, 0.04),
    Tissue.BONE: (0.05, 0.015),
    Tissue.DIPLOE: (0.28, 0.04),
    Tissue.CSF: (0.16, 0.03),
    Tissue.GM: (0.62, 0.03),
    Tissue.WM: (1.0, 0.0),
    Tissue.DEEP: (0.78, 0.03),
    Tissue.VENTRICLE: (0.16, 0.0),
    Tissue.STEM: (0.9, 0.03),
    Tissue.CORD: (0.85, 0.03),
}


@dataclass(frozen=True)
class CaseSpec:
    """One committed case: anatomy seed, voxel spacing (mm, per voxel axis) and axis code."""

    name: str
    seed: int
    spacing: tuple[float, float, float]
    orientation: str
    labelled: bool = True  # False: the image is shipped without its brain mask


CASES: tuple[CaseSpec, ...] = (
    CaseSpec("head_000", 100, (1.3, 1.3, 3.0), "RAS"),
    CaseSpec("head_001", 101, (1.5, 1.5, 1.25), "LPS"),
    CaseSpec("head_002", 102, (1.0, 1.0, 3.0), "LAS"),
    CaseSpec("head_003", 103, (1.25, 1.25, 2.5), "PIR"),  # sagittal
    CaseSpec("head_004", 104, (1.4, 1.4, 3.0), "RSA"),  # coronal
    CaseSpec("head_005", 105, (1.5, 1.5, 3.0), "RAS"),
    CaseSpec("head_006", 106, (1.3, 1.3, 2.5), "LPI"),
    CaseSpec("head_007", 107, (1.2, 1.2, 2.5), "ASL"),  # sagittal
    CaseSpec("head_008", 108, (1.5, 1.5, 2.0), "RPI"),
    CaseSpec("head_009", 109, (1.4, 1.4, 2.5), "LIP"),  # coronal
    CaseSpec("head_010", 110, (1.5, 1.5, 2.0), "LPS"),
    CaseSpec("head_011", 111, (1.5, 1.5, 2.0), "PSR"),  # sagittal
)

# Shipped without a mask, so Next Sample has an image to offer on first start; not part of any split.
UNLABELLED: tuple[CaseSpec, ...] = (CaseSpec("new_000", 112, (1.5, 1.5, 3.0), "RAS", labelled=False),)


class MRICase(NamedTuple):
    """A generated case; ``tissue`` and ``bias`` are the ground truth at the voxel centres."""

    image: np.ndarray  # int16, scanner units
    mask: np.ndarray  # uint8, 1 = brain
    affine: np.ndarray  # 4x4 voxel -> world RAS (mm)
    tissue: np.ndarray  # uint8 Tissue at the voxel centre
    bias: np.ndarray  # float32 multiplicative bias field (geometric mean 1 over the head)
    scale: float  # stored units per unit of relative T1 signal (white matter = 1 before bias)


# ----------------------------------------------------------------------------- geometry helpers

Semi = float | np.ndarray  # a semi-axis, possibly varying point by point


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation (degrees) about z, then x, then y of the head frame."""
    a, b, c = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry


def _ell_sdf(dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, sx: Semi, sy: Semi, sz: Semi) -> np.ndarray:
    """Radial signed distance (mm, < 0 inside) to an ellipsoid with semi-axes ``s*`` centred at 0.

    Exact for spheres; for the mild ellipsoids here a close stand-in for the true distance.
    """
    r = np.sqrt(dx * dx + dy * dy + dz * dz)
    root = np.sqrt((dx / sx) ** 2 + (dy / sy) ** 2 + (dz / sz) ** 2)
    surface = np.divide(r, root, out=np.zeros_like(r), where=root > 1e-9)  # (the centre: r = 0, d = 0)
    return r - surface


def _ell_q(
    dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, semi: np.ndarray | tuple[float, ...]
) -> np.ndarray:
    """Normalised squared radius of an axis-aligned ellipsoid (< 1 inside)."""
    return (dx / semi[0]) ** 2 + (dy / semi[1]) ** 2 + (dz / semi[2]) ** 2


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth minimum (union of two distance fields with a fillet of about ``k`` mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


class _Lattice:
    """Random field channels on a cubic head-frame lattice, sampled by linear interpolation."""

    def __init__(self, grid: np.ndarray, centre: np.ndarray, half: float) -> None:
        self.grid = grid.astype(np.float32)
        self.origin = np.asarray(centre, dtype=np.float64) - half
        self.step = 2.0 * half / (grid.shape[-1] - 1)

    def __call__(self, p: tuple[np.ndarray, ...], channel: int = 0) -> np.ndarray:
        idx = np.stack([(p[i].ravel() - self.origin[i]) / self.step for i in range(3)])
        return ndimage.map_coordinates(self.grid[channel], idx, order=1, mode="nearest").reshape(p[0].shape)


def _band_field(
    rng: np.random.Generator, centre: np.ndarray, half: float, step: float, wavelength: float
) -> _Lattice:
    """Band-pass (difference of Gaussians) unit-variance random field and its gradient (per mm)."""
    n = int(round(2 * half / step)) + 1
    white = rng.standard_normal((n, n, n))
    s = wavelength / (2 * np.pi * step)
    f = ndimage.gaussian_filter(white, s) - ndimage.gaussian_filter(white, 2.5 * s)
    f /= f.std()
    return _Lattice(np.stack([f, *np.gradient(f, step)]), centre, half)


# ----------------------------------------------------------------------------- anatomy


class _Head:
    """One synthetic head drawn from ``rng``: shape parameters and the tissue map at given points."""

    def __init__(self, rng: np.random.Generator) -> None:
        uniform = rng.uniform
        s = uniform(0.9, 1.07)
        ax, ay, az = s * uniform(0.94, 1.06), s * uniform(0.95, 1.05), s * uniform(0.94, 1.06)
        self.cer_semi = (67.0 * ax, 84.0 * ay, 86.0 * ay, 60.0 * az, 42.0 * az)  # x, y+, y-, z+, z-
        self.cbl_c = np.array([0.0, -44.0 * ay, -40.0 * az])
        self.cbl_semi = np.array([50.0 * ax * uniform(0.95, 1.05), 29.0 * ay, 22.0 * az])
        self.stem = (
            np.array([0.0, -10.0 * ay, -12.0 * az]),
            np.array([0.0, -28.0 * ay, -110.0 * az]),
            10.0 * s,
        )
        self.z_fm = self.cbl_c[2] - 0.7 * self.cbl_semi[2]  # foramen magnum
        self.z_cut = self.cbl_c[2] - self.cbl_semi[2] - uniform(4.0, 12.0)  # lowest head-frame z imaged
        self.csf = uniform(1.2, 3.5)  # subarachnoid space (atrophy widens it and the sulci)
        self.skull, self.table = uniform(5.0, 8.0), uniform(1.4, 2.0)
        self.scalp = uniform(4.5, 8.0)
        self.fat = self.scalp * uniform(0.55, 0.8)
        self.face_c = np.array([0.0, 46.0 * ay, -52.0 * az])
        self.face_semi = np.array([58.0 * ax, 46.0 * ay, 44.0 * az])
        self.neck = (np.array([0.0, -14.0 * ay]), np.array([50.0 * ax, 54.0 * ay]), -48.0 * az)
        self.eyes = [(np.array([side * 31.0 * ax, 64.0 * ay, -34.0 * az]), 12.0 * s) for side in (-1.0, 1.0)]
        self.fissure = uniform(0.8, 1.6)
        self.z_cc = 22.0 * az
        self.gm = uniform(2.6, 3.4)  # cortical thickness
        self.sulcus_depth = uniform(12.0, 18.0)
        self.sulcus_width = uniform(0.3, 0.6) + 0.2 * self.csf  # half-width of the CSF in a sulcus
        v = uniform(0.8, 1.8)  # ventricle size
        self.vent = [
            (
                np.array([side * (3.0 + 4.5 * v), -4.0, 14.0 * az]),
                np.array([4.5 * v, 27.0 * ay, 6.0 * v]),
                side,
            )
            for side in (-1.0, 1.0)
        ]
        self.horns = (
            [
                (np.array([side * (4.0 + 4.5 * v), 22.0 * ay, 8.0 * az]), np.array([5.0 * v, 11.0, 8.0 + v]))
                for side in (-1.0, 1.0)
            ]
            + [
                (np.array([side * 20.0 * ax, -30.0 * ay, 4.0 * az]), np.array([4.0 * v, 13.0, 9.0]))
                for side in (-1.0, 1.0)
            ]
            + [
                (np.array([side * 27.0 * ax, -6.0 * ay, -16.0 * az]), np.array([2.5 * v, 17.0, 4.0]))
                for side in (-1.0, 1.0)
            ]
            + [(np.array([0.0, -6.0 * ay, -2.0 * az]), np.array([1.0 + 1.2 * v, 13.0, 8.0]))]
        )
        self.deep = (
            [
                (np.array([side * (9.0 + 1.5 * v), -12.0 * ay, 0.0]), np.array([8.0, 14.0, 9.0]))
                for side in (-1.0, 1.0)
            ]
            + [
                (np.array([side * (8.5 + 5.0 * v), 21.0 * ay, 9.0 * az]), np.array([4.5, 10.0, 8.0]))
                for side in (-1.0, 1.0)
            ]
            + [
                (np.array([side * 24.0 * ax, 4.0 * ay, 0.0]), np.array([6.5, 15.0, 10.0]))
                for side in (-1.0, 1.0)
            ]
        )
        n = 17
        white = rng.standard_normal((3, n, n, n))
        warp = ndimage.gaussian_filter(white, (0, 1.6, 1.6, 1.6))
        self.warp = _Lattice(warp * (uniform(2.0, 4.0) / warp.std()), np.zeros(3), 128.0)
        self.folds = _band_field(rng, np.zeros(3), 100.0, 2.0, uniform(18.0, 24.0))
        self.folia = _band_field(rng, self.cbl_c, 56.0, 1.0, uniform(6.0, 8.0))

    # -- distance fields ------------------------------------------------------------------------

    def cerebrum_sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Cerebral envelope: ellipsoid pieces, narrower in front, flatter below except temporally."""
        sx, syp, sym, szp, szm = self.cer_semi
        sy = np.where(y > 0, syp, sym)
        temporal = 1.0 + 0.3 * np.clip(np.abs(x) / sx, 0.0, 1.0) ** 2 * np.exp(-(((y + 5.0) / 40.0) ** 2))
        return _ell_sdf(
            x, y, z, sx * (1.0 - 0.1 * np.clip(y / syp, 0.0, 1.0)), sy, np.where(z > 0, szp, szm * temporal)
        )

    def cerebellum_sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Cerebellar envelope (ellipsoid)."""
        return _ell_sdf(x - self.cbl_c[0], y - self.cbl_c[1], z - self.cbl_c[2], *self.cbl_semi)

    def stem_sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance to the brainstem/cord surface and to its axis."""
        a, b, r = self.stem
        d = b - a
        t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / float(d @ d), 0.0, 1.0)
        axis = np.sqrt((x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2)
        pons = 1.0 + 0.45 * np.exp(-(((z - a[2] + 22.0) / 9.0) ** 2))
        return axis - r * pons, axis

    def envelopes(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
        """(cerebrum, cerebellum, intracranial brain envelope, head surface) signed distances."""
        cer = self.cerebrum_sdf(x, y, z)
        cbl = self.cerebellum_sdf(x, y, z)
        brain = _smin(cer, cbl, 10.0)
        face = _ell_sdf(x - self.face_c[0], y - self.face_c[1], z - self.face_c[2], *self.face_semi)
        (cx, cy), (nx, ny), top = self.neck
        neck = np.maximum(_ell_sdf(x - cx, y - cy, np.zeros_like(z), nx, ny, 1.0), z - top)
        head = _smin(_smin(brain - (self.csf + self.skull + self.scalp), face, 14.0), neck, 16.0)
        return cer, cbl, brain, head

    # -- tissue map -----------------------------------------------------------------------------

    def pial_hull(self, p: tuple[np.ndarray, ...]) -> np.ndarray:
        """True at head-frame points ``p`` inside the cerebral or cerebellar surface (sulci included)."""
        x, y, z = (p[c] + self.warp(p, c) for c in range(3))
        return (self.cerebrum_surface(x, y, z) < 0) | (self.cerebellum_surface(x, y, z) < 0)

    def tissue(self, p: tuple[np.ndarray, ...]) -> np.ndarray:
        """Tissue class (uint8 ``Tissue``) at head-frame points ``p`` (before the shape warp)."""
        x, y, z = (p[c] + self.warp(p, c) for c in range(3))
        cer, _, brain, head = self.envelopes(x, y, z)
        t = np.where(head < 0, np.where(head > -self.fat, Tissue.FAT, Tissue.SOFT), Tissue.AIR).astype(
            np.uint8
        )
        t[(head < 0) & (head > -1.2)] = Tissue.SOFT  # skin
        for c, r in self.eyes:
            q = _ell_q(x - c[0], y - c[1], z - c[2], (r, r, r))
            t[q < (1.0 + 6.0 / r) ** 2] = Tissue.FAT
            t[q < 1.0] = Tissue.CSF
        e = brain - self.csf  # 0 at the inner table
        t[(e >= 0) & (e < self.skull)] = Tissue.BONE
        t[(e >= self.table) & (e < self.skull - self.table)] = Tissue.DIPLOE
        t[e < 0] = Tissue.CSF
        stem, axis = self.stem_sdf(x, y, z)
        r = self.stem[2]
        below = z < self.z_fm
        atlas = below & (z > self.z_fm - 14.0) & (axis < r + 10.0) & (t != Tissue.AIR)
        t[atlas] = Tissue.BONE
        t[atlas & (axis > r + 4.5) & (axis < r + 8.5)] = Tissue.DIPLOE
        t[below & (axis < r + 3.0)] = Tissue.CSF
        self._cortex(
            t, self.cerebrum_surface, (x, y, z), self.folds, self.gm, self.sulcus_depth, self.sulcus_width
        )
        self._cortex(t, self.cerebellum_surface, (x, y, z), self.folia, 1.2, 8.0, 0.35)
        stem_in = (stem < 0) & (t != Tissue.GM) & (t != Tissue.WM)
        t[stem_in] = np.where(below[stem_in], Tissue.CORD, Tissue.STEM)
        white = t == Tissue.WM
        for c, semi in self.deep:
            t[white & (_ell_q(x - c[0], y - c[1], z - c[2], semi) < 1.0)] = Tissue.DEEP
        vent = np.zeros(t.shape, bool)
        for c, semi, side in self.vent:  # bodies lean outwards at the top
            vent |= _ell_q(x - c[0] - side * 0.35 * (z - c[2]), y - c[1], z - c[2], semi) < 1.0
        for c, semi in self.horns:
            vent |= _ell_q(x - c[0], y - c[1], z - c[2], semi) < 1.0
        t[vent & (cer < -4.0)] = Tissue.VENTRICLE
        return t

    def cerebrum_surface(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Cerebral surface: the envelope less the interhemispheric fissure above the callosum and the
        cerebellum (tentorium gap)."""
        fissure = np.minimum(self.fissure - np.abs(x), z - (self.z_cc - 40.0 * (y / 48.0) ** 2))
        return np.maximum.reduce([self.cerebrum_sdf(x, y, z), fissure, 2.5 - self.cerebellum_sdf(x, y, z)])

    def cerebellum_surface(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Cerebellar surface, outside the cerebrum."""
        return np.maximum(self.cerebellum_sdf(x, y, z), -self.cerebrum_surface(x, y, z))

    @staticmethod
    def _cortex(
        t: np.ndarray,
        surface: Callable[..., np.ndarray],
        p: tuple[np.ndarray, ...],
        folds: _Lattice,
        gm: float,
        depth: float,
        width: float,
    ) -> None:
        """Paint WM inside ``surface < 0`` under a folded cortex: GM of thickness ``gm`` along the
        surface and around CSF-filled sulci (half-width ``width``, depth about ``depth`` mm).

        Sulci are the zero sheets of ``folds`` evaluated at the nearest surface point, so they stand
        perpendicular to the surface; the distance to a sheet is |n| / |tangential grad n|.
        """
        d = surface(*p)
        inside = d < 0
        t[inside] = Tissue.WM
        band = inside & (d > -(gm + depth + width))
        q = [c[band] for c in p]
        dep = -d[band]
        eps = 0.25
        grad = [(surface(*(q[j] + (eps if j == i else 0.0) for j in range(3))) + dep) / eps for i in range(3)]
        norm = np.sqrt(grad[0] ** 2 + grad[1] ** 2 + grad[2] ** 2) + 1e-9
        normal = [g / norm for g in grad]
        foot = tuple(q[i] + dep * normal[i] for i in range(3))
        n = folds(foot, 0)
        g = [folds(foot, 1 + i) for i in range(3)]
        along = g[0] * normal[0] + g[1] * normal[1] + g[2] * normal[2]
        sheet = np.abs(n) / np.sqrt(np.maximum(g[0] ** 2 + g[1] ** 2 + g[2] ** 2 - along**2, 1e-6))
        fold = depth * (0.6 + 0.4 * np.tanh(folds(tuple(0.3 * c for c in foot), 0)))  # sulcal depth varies
        cls = np.where((dep < gm) | ((sheet < width + gm) & (dep < fold + gm)), Tissue.GM, Tissue.WM)
        cls[(sheet < width) & (dep < fold)] = Tissue.CSF
        t[band] = cls

    def bounds(self, rot: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World box of the head above ``z_cut`` (coarse 4 mm scan of the warped head surface)."""
        g = np.arange(-130.0, 131.0, 4.0)
        p = np.meshgrid(g, g, g, indexing="ij")
        q = tuple(p[c] + self.warp(p, c) for c in range(3))
        pts = (
            np.stack([c[(self.envelopes(*q)[3] < 0) & (p[2] > self.z_cut)] for c in p], axis=1) @ rot.T
            + trans
        )
        return pts.min(axis=0) - 4.0, pts.max(axis=0) + 4.0


# ----------------------------------------------------------------------------- image


def _bias(
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
    head = _Head(head_rng)
    drawn = (case_rng.uniform(1.0, 1.5), case_rng.uniform(1.0, 3.0))
    sp = np.array(spacing if spacing is not None else (drawn[0], drawn[0], drawn[1]), dtype=np.float64)
    rot = _rotation(*case_rng.uniform([-10.0, -12.0, -6.0], [10.0, 12.0, 6.0]))
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
    bias = _bias(centres, trans, bias_coef, amplitude, tissue != Tissue.AIR)
    signal *= bias
    noise = noise_rng.standard_normal((2, *dims), dtype=np.float32) * np.float32(sigma)
    magnitude = np.sqrt((signal + noise[0]) ** 2 + noise[1] ** 2)
    scale = sigma_units / sigma
    image = np.clip(np.rint(magnitude * scale), 0, 32767).astype(np.int16)
    mask = (np.isin(tissue, BRAIN) | ((tissue == Tissue.CSF) & hull)).astype(np.uint8)
    return MRICase(image, mask, affine, tissue, bias, float(scale))


# ----------------------------------------------------------------------------- writer


def write_case(spec: CaseSpec, root: Path) -> dict:
    """Generate ``spec`` and write its image and brain mask (unless unlabelled) under ``root`` (``mri``)."""
    start = time.perf_counter()
    case = generate_case(spec.seed, spec.spacing, spec.orientation)
    (root / "labels" / "final").mkdir(parents=True, exist_ok=True)
    (root / f"{spec.name}.nii.gz").write_bytes(nifti_gz_bytes(case.image, case.affine))
    if spec.labelled:
        (root / "labels" / "final" / f"{spec.name}.nii.gz").write_bytes(
            nifti_gz_bytes(case.mask, case.affine)
        )
    return {"shape": case.image.shape, "seconds": time.perf_counter() - start}


def main() -> None:
    """Regenerate the committed MRI sample cases (all, or those named)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "mri")
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    for spec in (*CASES, *UNLABELLED):
        if not args.cases or spec.name in args.cases:
            info = write_case(spec, args.out)
            print(f"{spec.name}: {info['shape']} {spec.spacing} {spec.orientation} {info['seconds']:.1f}s")


if __name__ == "__main__":
    main()
