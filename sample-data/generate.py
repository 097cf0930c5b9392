"""Deterministic synthetic abdominal CT generator for the sample datastore.

Run ``python sample-data/generate.py`` from the repository root to regenerate, bit for bit,
``sample-data/ct`` (NIfTI images and ``labels/final``) and ``sample-data/ct-dicom`` (one case
also written as a DICOM CT series). ``generate_ct_case`` is importable (load this file with
``importlib``) for code that needs more volumes, e.g. full-FOV 512x512xN benchmarks.

The anatomy is a set of implicit shapes in a patient frame (mm; +x towards the patient's right,
+y anterior, +z superior, i.e. RAS) that is rigidly placed (small yaw, table offset) in world RAS
coordinates and sampled at the voxel centres of each case's affine, so any axis-aligned orientation
gets correct geometry. Labels: 0 background, 1 liver, 2 spleen, 3 kidney_left, 4 kidney_right
(patient's left: smaller RAS x, larger DICOM/LPS x); a label is the organ membership at the voxel
centre (renal sinus fat and pelvis excluded, intrahepatic vessels included, IVC excluded). The
image averages the tissue over the slice thickness (box slice profile), adds per-tissue texture,
an in-plane PSF and correlated noise (portal-venous HU, sigma 7-14 HU depending on thickness).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
from phantom_utils import nifti_gz_bytes, smooth_noise
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

LABELS = {"background": 0, "liver": 1, "spleen": 2, "kidney_left": 3, "kidney_right": 4}
HU_MIN, HU_MAX = -1024, 3071
MAX_BLOCK_VOXELS = 1 << 19


class T(IntEnum):
    """Tissue classes; ``FAT`` (visceral/retroperitoneal) is what organs may fill into."""

    AIR = 0
    LUNG = 1
    SUBQ_FAT = 2
    FAT = 3
    PERIRENAL_FAT = 4
    SKIN = 5
    MUSCLE = 6
    LIVER = 7
    SPLEEN = 8
    CORTEX = 9
    MEDULLA = 10
    URINE = 11
    ARTERY = 12
    PORTAL = 13
    VEIN = 14
    CANCELLOUS = 15
    CORTICAL = 16
    ARCH = 17
    DISC = 18
    CSF = 19
    BOWEL_WALL = 20
    FLUID = 21
    GAS = 22
    STOOL = 23
    CHYME = 24
    PANCREAS = 25
    BILE = 26
    CARTILAGE = 27
    MYOCARDIUM = 28
    CONTRAST = 29


# Portal-venous phase: mean HU, coarse texture amplitude, fine texture amplitude, per-case jitter SD.
TISSUE_HU: dict[T, tuple[float, float, float, float]] = {
    T.AIR: (-1000, 0, 0, 0),
    T.LUNG: (-855, 25, 0, 15),
    T.SUBQ_FAT: (-105, 6, 4, 8),
    T.FAT: (-95, 8, 4, 8),
    T.PERIRENAL_FAT: (-100, 6, 4, 8),
    T.SKIN: (30, 5, 0, 5),
    T.MUSCLE: (52, 5, 3, 5),
    T.LIVER: (102, 4, 2, 7),
    T.SPLEEN: (112, 4, 2, 7),
    T.CORTEX: (165, 6, 3, 10),
    T.MEDULLA: (100, 6, 3, 8),
    T.URINE: (8, 2, 0, 3),
    T.ARTERY: (160, 3, 0, 15),
    T.PORTAL: (170, 3, 0, 12),
    T.VEIN: (140, 3, 0, 12),
    T.CANCELLOUS: (240, 25, 45, 30),
    T.CORTICAL: (850, 40, 30, 60),
    T.ARCH: (450, 40, 40, 40),
    T.DISC: (90, 6, 4, 8),
    T.CSF: (15, 3, 0, 3),
    T.BOWEL_WALL: (75, 6, 3, 10),
    T.FLUID: (15, 4, 2, 5),
    T.GAS: (-990, 5, 0, 0),
    T.STOOL: (-200, 60, 200, 30),
    T.CHYME: (35, 10, 15, 10),
    T.PANCREAS: (95, 6, 12, 8),
    T.BILE: (8, 2, 0, 4),
    T.CARTILAGE: (120, 10, 10, 15),
    T.MYOCARDIUM: (105, 5, 0, 8),
    T.CONTRAST: (300, 20, 10, 60),
}


@dataclass(frozen=True)
class CaseSpec:
    """One committed case: anatomy seed, sampling and z coverage (None = whole organ span)."""

    name: str
    seed: int
    inplane: float
    thickness: float
    orientation: str
    z_extent: float | None = None
    dicom: bool = False
    labelled: bool = True  # False: the image is shipped without its label


# In-plane spacings are FOV/512 for FOVs of 310-510 mm. Most cases are thick-slice; thin or
# fine-pixel cases cover a z slab centred on the four organs to respect the 30 MB budget.
CASES: tuple[CaseSpec, ...] = (
    CaseSpec("case_000", 131, 0.996094, 5.0, "LPS"),
    CaseSpec("case_001", 208, 0.976562, 5.0, "RAS"),
    CaseSpec("case_002", 206, 0.976562, 5.0, "LPI"),
    CaseSpec("case_003", 255, 0.605469, 5.0, "RAS", 60.0),
    CaseSpec("case_004", 139, 0.976562, 1.5, "LPS", 40.0),
    CaseSpec("case_005", 150, 0.859375, 3.0, "RAS", 60.0),
    CaseSpec("case_006", 175, 0.703125, 5.0, "LPS", 80.0),
    CaseSpec("case_007", 143, 0.78125, 4.0, "RAS", 80.0),
    CaseSpec("case_008", 225, 0.9375, 2.0, "LPS", 50.0),
    CaseSpec("case_009", 241, 0.839844, 5.0, "RAS", 90.0),
    CaseSpec("case_010", 251, 0.878906, 3.75, "RAI", 100.0),
    CaseSpec("case_011", 275, 0.996094, 5.0, "LPS", 70.0, dicom=True),
)

# Shipped without labels, so Next Sample has images to offer on first start; not part of any split.
UNLABELLED: tuple[CaseSpec, ...] = (
    CaseSpec("new_000", 281, 0.996094, 5.0, "RAS", 70.0, labelled=False),
    CaseSpec("new_001", 287, 0.976562, 5.0, "LPS", 70.0, labelled=False),
)


# ----------------------------------------------------------------------------- geometry helpers


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64) / np.linalg.norm(v)


def _frame(w: np.ndarray, u_hint: np.ndarray) -> np.ndarray:
    """Right-handed rotation whose columns are (u, v, w): w given, u closest to ``u_hint``."""
    w = _unit(w)
    u = _unit(u_hint - np.dot(u_hint, w) * w)
    return np.stack([u, np.cross(w, u), w], axis=1)


def _rot_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _local(p: tuple[np.ndarray, ...], centre: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, ...]:
    """Coordinates of points ``p`` in the frame ``rot`` (columns = axes) centred at ``centre``."""
    d = [p[i] - centre[i] for i in range(3)]
    return tuple(rot[0, a] * d[0] + rot[1, a] * d[1] + rot[2, a] * d[2] for a in range(3))


def _ell_q(p: tuple[np.ndarray, ...], centre, semi) -> np.ndarray:
    """Normalised squared radius of an axis-aligned ellipsoid (< 1 inside)."""
    return sum(((p[i] - centre[i]) / semi[i]) ** 2 for i in range(3))


def _oval_q(x: np.ndarray, y: np.ndarray, a, b_ant, b_post) -> np.ndarray:
    """Body-like cross-section: ellipse anteriorly, flatter (boxier) posteriorly (< 1 inside)."""
    post = y < 0
    xx = (x / a) ** 2
    yy = (y / np.where(post, b_post, b_ant)) ** 2
    return xx + yy - 0.6 * xx * yy * post


@dataclass
class _Tube:
    """Tapered tube along a polyline; ``radii`` per vertex (mm)."""

    pts: np.ndarray
    radii: np.ndarray

    def bounds(self, pad: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        r = self.radii.max() + pad
        return self.pts.min(axis=0) - r, self.pts.max(axis=0) + r

    def sdf(self, blk: _Block) -> tuple[np.ndarray, np.ndarray]:
        """Approximate signed distance to the tube surface and arc length of the closest point."""
        x, y, z = blk.p
        best = np.full(blk.shape, np.inf)
        arc = np.zeros(blk.shape)
        start = 0.0
        for a, b, ra, rb in zip(self.pts[:-1], self.pts[1:], self.radii[:-1], self.radii[1:], strict=True):
            d = b - a
            length = float(np.linalg.norm(d))
            r = max(ra, rb)
            if np.any(np.minimum(a, b) - r > blk.hi) or np.any(np.maximum(a, b) + r < blk.lo):
                start += length
                continue
            t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / length**2, 0.0, 1.0)
            dist = np.sqrt(
                (x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2
            )
            s = dist - (ra + t * (rb - ra))
            closer = s < best
            best = np.where(closer, s, best)
            arc = np.where(closer, start + t * length, arc)
            start += length
        return best, arc


def _box_corners(lo, hi) -> np.ndarray:
    """The 8 corners (rows) of the axis-aligned box [lo, hi]."""
    return np.array(np.meshgrid(*zip(lo, hi, strict=True))).reshape(3, -1).T


def _random_path(rng: np.random.Generator, start, lo, hi, n: int, step: float) -> np.ndarray:
    """Smooth random walk confined to the box [lo, hi] (bowel loops)."""
    pts = [np.asarray(start, dtype=np.float64)]
    direction = _unit(rng.normal(size=3))
    for _ in range(n):
        direction = _unit(direction + 0.7 * rng.normal(size=3))
        nxt = pts[-1] + step * direction
        out = (nxt < lo) | (nxt > hi)
        direction[out] *= -1
        pts.append(np.clip(pts[-1] + step * direction, lo, hi))
    return np.array(pts)


class _Field:
    """Smooth random displacement field (a few separable low-frequency modes, RMS ``amplitude`` mm)."""

    def __init__(self, rng: np.random.Generator, amplitude: float, modes: int = 4) -> None:
        self.k = 2 * np.pi / rng.uniform(150.0, 350.0, (3, modes, 3))  # component, mode, axis
        self.phi = rng.uniform(0.0, 2 * np.pi, (3, modes, 3))
        w = rng.normal(0.0, 1.0, (3, modes))
        self.w = w * amplitude / (0.354 * np.sqrt((w**2).sum(axis=1, keepdims=True)))

    def __call__(self, blk: _Block) -> tuple[np.ndarray, ...]:
        out = []
        for c in range(3):
            d = 0.0
            for m in range(self.k.shape[1]):
                k, phi = self.k[c, m], self.phi[c, m]
                xy = self.w[c, m] * np.cos(k[0] * blk.p[0] + phi[0]) * np.cos(k[1] * blk.p[1] + phi[1])
                d = d + xy * np.cos(k[2] * blk.p[2] + phi[2])
            out.append(blk.p[c] + d)
        return tuple(out)


@dataclass
class _Block:
    """Patient-frame coordinates of a box of voxel centres (one sub-sample)."""

    p: tuple[np.ndarray, np.ndarray, np.ndarray]  # broadcastable to ``shape``
    lo: np.ndarray
    hi: np.ndarray
    shape: tuple[int, ...]

    def full(self) -> tuple[np.ndarray, ...]:
        return tuple(np.broadcast_to(v, self.shape) for v in self.p)


Painter = Callable[[_Block], tuple[np.ndarray, np.ndarray | None]]
OVER: tuple[T, ...] = ()
FAT_ONLY = (T.FAT,)
FAT_OR_PERIRENAL = (T.FAT, T.PERIRENAL_FAT)


@dataclass
class _Structure:
    name: str
    lo: np.ndarray
    hi: np.ndarray
    fn: Painter
    fill: tuple[T, ...]  # tissues it may replace (organs, viscera); empty = overwrite anything


# ----------------------------------------------------------------------------- anatomy


class _Anatomy:
    """One synthetic patient drawn from ``rng``: parameters plus the ordered structures to paint."""

    def __init__(self, rng: np.random.Generator) -> None:
        u = rng.uniform
        sc = self.sc = u(0.88, 1.03)
        # body outline (skin) and wall layers: lateral, anterior, posterior thicknesses in mm
        self.a, self.b = u(138.0, 165.0), u(92.0, 115.0)
        fat = u(4.0, 14.0) + 0.3 * (self.a - 138.0)
        self.fat = np.array([fat * u(0.8, 1.1), fat * u(0.8, 1.3), fat * u(0.45, 0.75)])
        self.wall = np.array([u(8.0, 12.0), u(7.0, 10.0), u(8.0, 12.0)])
        self.phase = u(0.0, 2 * np.pi, 2)
        # vertical landmarks; z = 0 at the L1/L2 disc
        self.z_dome_r = 112.0 * sc + u(-8.0, 8.0)
        self.z_dome_l = self.z_dome_r - u(8.0, 22.0)
        self.y_vb0 = -0.92 * self.b + 2.0 + self.fat[2] + 88.0 * sc
        self.vsx, self.vsy = 23.0 * sc, 16.0 * sc  # lumbar vertebral body semi-axes
        self._levels()
        cav = self.semi(np.array(20.0), self.inset("cavity"))
        self.a_c, self.b_c = float(cav[0]), float(cav[1])
        self._kidneys(rng)
        self._spleen(rng)
        self._liver(rng)
        self._vessels(rng)
        self._viscera(rng)
        self.ribs = [
            (side, float(np.mean(self.vert[f"T{n}"])), drop * u(0.9, 1.1), np.pi * end, np.pi * cart)
            for n, drop, end, cart in (
                (7, 130, 0.97, 0.78),
                (8, 150, 0.93, 0.76),
                (9, 160, 0.86, 0.72),
                (10, 165, 0.8, 0.7),
                (11, 120, 0.6, 0.6),
                (12, 80, 0.42, 0.42),
            )
            for side in (-1.0, 1.0)
        ]
        self.warp = {k: _Field(rng, u(2.0, 4.0)) for k in ("liver", "spleen", "kidney_left", "kidney_right")}
        kid_bottom = min(k["c"][2] - k["semi"][2] * k["rot"][2, 2] for k in self.kidneys.values())
        self.z_lo = kid_bottom - u(8.0, 18.0)
        self.z_hi = self.z_dome_r + u(2.0, 10.0)
        bottoms = [self.z_liver_tip, self.spleen_c[2] - 0.8 * self.spleen_semi[2]]
        tops = [self.z_dome_r, self.spleen_c[2] + 0.8 * self.spleen_semi[2]]
        for k in self.kidneys.values():
            bottoms.append(k["c"][2] - 0.7 * k["semi"][2])
            tops.append(k["c"][2] + 0.7 * k["semi"][2])
        self.z_overlap = (max(bottoms), min(tops))

    # -- body ------------------------------------------------------------------------------------

    def inset(self, layer: str) -> np.ndarray:
        """Inward offsets (lateral, anterior, posterior) of a body-wall layer boundary."""
        skin = np.full(3, 2.0)
        return {
            "skin": np.zeros(3),
            "subq": skin,
            "muscle": skin + self.fat,
            "rib": skin + self.fat + 0.5 * self.wall,
            "cavity": skin + self.fat + self.wall,
        }[layer]

    def semi(self, z: np.ndarray, inset: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Semi-axes (lateral, anterior, posterior) of a body layer at height ``z``."""
        chest = 0.04 * np.clip((z - self.z_dome_r + 70.0) / 70.0, 0.0, 1.0)
        g = 1.0 + 0.035 * np.sin(2 * np.pi * z / 380.0 + self.phase[0]) + chest
        h = 1.0 + 0.03 * np.sin(2 * np.pi * z / 300.0 + self.phase[1]) + chest
        return self.a * g - inset[0], self.b * h - inset[1], 0.92 * self.b * h - inset[2]

    def layer_q(self, p: tuple[np.ndarray, ...], layer: str, semi=None) -> np.ndarray:
        """Normalised radius of a body-wall layer boundary (< 1 inside); ``semi`` = semi(z, 0) if known."""
        a, ba, bp = self.semi(p[2], np.zeros(3)) if semi is None else semi
        d = self.inset(layer)
        return _oval_q(p[0], p[1], a - d[0], ba - d[1], bp - d[2])

    def extent(self, z_lo: float, z_hi: float) -> tuple[float, float, float]:
        """Maximum body half-width, anterior and posterior extent over a z range."""
        a, ba, bp = self.semi(np.linspace(z_lo, z_hi, 64), self.inset("skin"))
        return float(a.max()), float(ba.max()), float(bp.max())

    def y_vb(self, z: np.ndarray) -> np.ndarray:
        """AP centre of the vertebral bodies (lumbar lordosis: lower = more anterior)."""
        return self.y_vb0 - 0.06 * z

    def _levels(self) -> None:
        sc = self.sc
        # (name, body height, disc height below) from T7 down to L5
        spec = [
            ("T7", 20, 6),
            ("T8", 21, 6),
            ("T9", 21, 6),
            ("T10", 22, 6),
            ("T11", 23, 7),
            ("T12", 24, 7),
            ("L1", 27, 9),
            ("L2", 27, 9),
            ("L3", 28, 9.5),
            ("L4", 28, 9.5),
            ("L5", 28, 0),
        ]
        top = 4.5 * sc + sum(h + d for _, h, d in spec[:7]) * sc - 9 * sc
        bodies = []
        for name, h, d in spec:
            bodies.append((name, top - h * sc, top))
            top -= (h + d) * sc
        self.vert = {name: (lo, hi) for name, lo, hi in bodies}
        self.vert_edges = np.array(sorted(v for _, lo, hi in bodies for v in (lo, hi)))
        self.vert_centres = np.array(sorted((lo + hi) / 2 for _, lo, hi in bodies))
        self.vert_lumbar = np.array(sorted(((lo + hi) / 2, n[0] == "L") for n, lo, hi in bodies))[:, 1]

    # -- organs ----------------------------------------------------------------------------------

    def _kidneys(self, rng: np.random.Generator) -> None:
        u = rng.uniform
        z_left = 2.0 * self.sc + u(-10.0, 8.0)
        self.kidneys = {}
        for name, side, zc in (("kidney_left", -1.0, z_left), ("kidney_right", 1.0, z_left - u(8.0, 22.0))):
            s = self.sc * u(1.0, 1.12)
            alpha, beta, gamma = np.radians([u(8, 20), u(10, 25), u(25, 45)])
            w = np.array([-side * np.tan(alpha), -np.tan(beta), 1.0])
            rot = _frame(w, np.array([-side * np.cos(gamma), np.sin(gamma), 0.0]))
            c = np.array(
                [
                    side * (self.vsx + 20.0 + 25.0 * s + u(-4.0, 6.0)),
                    float(self.y_vb(zc)) - 18.0 + u(-5, 5),
                    zc,
                ]
            )
            self.kidneys[name] = {
                "name": name,
                "label": LABELS[name],
                "c": c,
                "rot": rot,
                "semi": np.array([30.0, 24.0, 57.0]) * s,
                "bulge": rng.normal(0.0, 1.0, 3),
                "phase": u(0, 2 * np.pi),
                "side": side,
            }

    def _spleen(self, rng: np.random.Generator) -> None:
        u = rng.uniform
        s = self.sc * u(0.8, 1.2)
        self.spleen_semi = np.array([25.0, 45.0, 58.0]) * s
        zc = self.z_dome_l - 30.0 * self.sc + u(-8, 8)
        a, _, bp = self.semi(np.array(zc), self.inset("cavity"))
        beta = np.radians(u(25.0, 45.0))
        wall = np.array([-a * np.cos(beta), -bp * np.sin(beta), zc])
        n_out = _unit([wall[0] / a**2, wall[1] / bp**2, 0.0])
        self.spleen_c = wall - n_out * (self.spleen_semi[0] + 3.0)
        self.spleen_rot = _frame(np.array([0.0, -0.5, 1.0]), -n_out)
        self.spleen_bulge = rng.normal(0.0, 1.0, 3)

    def _liver(self, rng: np.random.Generator) -> None:
        u = rng.uniform
        s = self.sc * u(0.9, 1.1)
        self.liver_h = 175.0 * s
        self.z_liver_tip = self.z_dome_r - self.liver_h
        self.liver_r = np.array([u(0.9, 1.05) * self.a_c, u(0.95, 1.1) * self.b_c])
        self.liver_x0 = u(0.25, 0.4) * self.a_c
        self.liver_taper = u(1.8, 2.6)
        self.left_lobe = (
            np.array([-0.1 * self.a_c, 0.45 * self.b_c, self.z_dome_r - 45.0 * s]),
            np.array([u(0.45, 0.65) * self.a_c, 0.42 * self.b_c, 40.0 * s]),
        )

    def _vessels(self, rng: np.random.Generator) -> None:
        u = rng.uniform
        sv = self.sc * u(0.85, 1.15)
        zt, zb = self.z_dome_r + 60.0, -170.0

        def ya(z: float) -> float:
            return float(self.y_vb(np.array(z))) + self.vsy

        self.aorta = _Tube(
            np.array(
                [
                    [-22, ya(zt) - 2, zt],
                    [-14, ya(40) + 12, 40],
                    [-10, ya(-40) + 13, -40],
                    [-6, ya(zb) + 12, zb],
                ]
            ),
            np.array([12.5, 11, 10, 9]) * sv,
        )
        self.plaques = [
            self.aorta.pts[2]
            + (self.aorta.pts[3] - self.aorta.pts[2]) * u(0, 1)
            + 9.5 * sv * _unit([rng.normal(), -abs(rng.normal()), 0.0])
            for _ in range(rng.integers(0, 6))
        ]
        zd = self.z_dome_r
        self.ivc = _Tube(
            np.array(
                [
                    [22, ya(zb) + 12, zb],
                    [22, ya(0) + 14, 0],
                    [24, ya(60) + 22, 60],
                    [18, ya(zd) + 32, zd - 10],
                    [10, ya(zd) + 40, zd + 40],
                ]
            ),
            np.array([11, 12, 13, 14, 14]) * sv,
        )
        self.z_pc = 12.0 * self.sc + u(-8, 8)
        zp = self.z_pc
        self.portal_confluence = np.array([12.0, ya(zp) + 45.0, zp])
        self.porta = np.array([40.0, ya(zp) + 35.0, zd - 75.0 * self.sc])
        self.tubes: list[tuple[_Tube, T]] = [(self.aorta, T.ARTERY), (self.ivc, T.VEIN)]
        pc, ph = self.portal_confluence, self.porta
        sh = self.spleen_c + self.spleen_rot @ np.array(
            [0.8 * self.spleen_semi[0], 0.0, -0.1 * self.spleen_semi[2]]
        )
        tubes = [
            ([pc, (pc + ph) / 2 + [0, 4, 0], ph], [7.5, 7.5, 7], T.PORTAL),
            ([pc, pc + [2, 6, -40], pc + [3, 8, -90]], [6, 5.5, 5], T.VEIN),  # SMV
            ([pc, pc + [-30, -6, 10], pc + [-60, -20, 20], sh], [5.5, 5, 5, 5], T.VEIN),  # splenic vein
            (
                [[-10, ya(zp + 5) + 20, zp + 5], [-6, ya(zp) + 40, zp - 5], [-2, ya(zp - 60) + 50, zp - 70]],
                [4.5, 4, 3.5],
                T.ARTERY,
            ),  # SMA
            ([[-10, ya(zp + 25) + 20, zp + 25], [-8, ya(zp + 25) + 36, zp + 28]], [4, 4], T.ARTERY),  # celiac
            (
                [
                    [-8, ya(zt) + 25, zt],
                    [-14, ya(zd) + 30, self.z_dome_l - 5],
                    [-40, ya(zd) + 30, self.z_dome_l - 30],
                ],
                [8, 8, 9],
                T.MUSCLE,
            ),  # oesophagus
        ]
        for k in self.kidneys.values():
            c, rot, semi, side = k["c"], k["rot"], k["semi"], k["side"]
            hil = c + rot @ np.array([0.5 * semi[0], 0, 0])
            out = c + rot @ np.array([1.3 * semi[0], 0, 0])
            ivc_pt = np.array([22.0, ya(hil[2]) + 14.0, hil[2] - 4.0])
            if side < 0:
                tubes.append(([hil, out, [-8, ya(hil[2]) + 29, hil[2] - 3], ivc_pt], [5, 5, 4.5, 5], T.VEIN))
            else:
                tubes.append(([hil, out, ivc_pt], [5, 5, 5.5], T.VEIN))
            ao = np.array([-10.0, ya(hil[2] + 6) + 9.0, hil[2] + 6.0])
            art_hil = c + rot @ np.array([0.5 * semi[0], -0.3 * semi[1], 0.1 * semi[2]])
            tubes.append(([ao, (ao + art_hil) / 2 - [0, 8, 0], art_hil], [3.2, 3, 2.8], T.ARTERY))
            pelvis = c + rot @ np.array([0.75 * semi[0], 0, -0.15 * semi[2]])
            xu = side * (self.vsx + 16.0)
            tubes.append(
                (
                    [
                        pelvis,
                        [xu, float(self.y_vb(pelvis[2] - 40)), pelvis[2] - 40],
                        [xu * 0.9, float(self.y_vb(zb)) + 8, zb],
                    ],
                    [3, 2.5, 2.5],
                    T.URINE,
                )
            )
        self.tubes += [
            (_Tube(np.array(p, dtype=np.float64), np.array(r, dtype=np.float64) * sv), t) for p, r, t in tubes
        ]
        # intrahepatic branches (painted with the liver, labelled liver)
        hv0 = np.array([self.ivc.pts[3, 0], self.ivc.pts[3, 1], zd - 22.0])
        jit = [rng.normal(0, 8, 3) for _ in range(8)]
        self.liver_vessels = [
            (
                _Tube(
                    np.array([ph, ph + [35, -5, 8] + jit[0], ph + [75, -15, 12] + jit[1]]),
                    np.array([7, 5, 2.5]),
                ),
                T.PORTAL,
            ),
            (
                _Tube(
                    np.array([ph + [35, -5, 8] + jit[0], ph + [60, 25, 25] + jit[2]]), np.array([4.5, 2.5])
                ),
                T.PORTAL,
            ),
            (
                _Tube(
                    np.array([ph, ph + [-30, 18, 20] + jit[3], ph + [-70, 25, 28] + jit[4]]),
                    np.array([6.5, 4, 2]),
                ),
                T.PORTAL,
            ),
            (
                _Tube(
                    np.array([hv0, hv0 + [45, -25, -25] + jit[5], hv0 + [85, -25, -50]]), np.array([6, 4, 2])
                ),
                T.VEIN,
            ),
            (
                _Tube(
                    np.array([hv0, hv0 + [15, 35, -35] + jit[6], hv0 + [25, 60, -60]]),
                    np.array([5.5, 3.5, 2]),
                ),
                T.VEIN,
            ),
            (
                _Tube(
                    np.array([hv0, hv0 + [-35, 25, -10] + jit[7], hv0 + [-70, 30, -25]]), np.array([5, 3, 2])
                ),
                T.VEIN,
            ),
        ]

    def _viscera(self, rng: np.random.Generator) -> None:
        u = rng.uniform
        ac, bc, zl, pc = self.a_c, self.b_c, self.z_dome_l, self.portal_confluence
        self.heart = (np.array([-0.15 * ac, 0.3 * bc, zl + 40.0]), np.array([0.5 * ac, 0.5 * bc, 50.0]))
        self.contrast = u() < 0.35  # positive oral contrast in small bowel / stomach
        dist = u(0.5, 0.9)
        self.stomach = _Tube(
            np.array(
                [
                    [-0.42 * ac, -0.2 * bc, zl - 22],
                    [-0.45 * ac, 0.2 * bc, zl - 55],
                    [-0.28 * ac, 0.55 * bc, zl - 88],
                    [-0.05 * ac, 0.62 * bc, zl - 108],
                    [0.2 * ac, 0.5 * bc, pc[2] + 12],
                ]
            ),
            np.array([38, 35, 28, 20, 10]) * dist,
        )
        self.stomach_gas = self.stomach.pts[:, 1].max() + 5.0 - u(0.0, 25.0)
        self.stomach_fill = T.CONTRAST if self.contrast and u() < 0.5 else (T.CHYME if u() < 0.5 else T.FLUID)
        self.gallbladder = None
        if u() > 0.15:
            gs = u(0.6, 1.2)
            c = np.array([0.3 * ac, 0.35 * bc, self.porta[2] - 22.0])
            self.gallbladder = (
                c,
                _frame(np.array([0.1, -0.55, 0.83]), np.array([1.0, 0, 0])),
                np.array([15.0, 14.0, 38.0]) * gs,
            )
        ya = pc[1] - 45.0
        self.pancreas = _Tube(
            np.array(
                [
                    [35, ya + 45, pc[2] - 15],
                    [10, ya + 55, pc[2]],
                    [-30, ya + 45, pc[2] + 10],
                    [-62, ya + 22, pc[2] + 20],
                ]
            ),
            np.array([16, 11, 11, 9]) * u(0.8, 1.1),
        )
        duo = np.array(
            [
                [25, ya + 70, pc[2] + 15],
                [50, ya + 52, pc[2] + 10],
                [56, ya + 40, pc[2] - 25],
                [40, ya + 40, pc[2] - 48],
                [0, ya + 35, pc[2] - 52],
                [-22, ya + 42, pc[2] - 40],
            ]
        )
        xa, xd = ac - 26.0, -(ac - 24.0)
        colon = np.array(
            [
                [xa, 0, -150],
                [xa + 4, 5, -70],
                [xa - 8, 0.35 * bc, self.z_liver_tip + 8],
                [0.35 * ac, 0.75 * bc, -35],
                [0, 0.8 * bc, u(-70, -40)],
                [-0.35 * ac, 0.72 * bc, -30],
                [xd + 6, 0.15 * bc, self.spleen_c[2] - 0.8 * self.spleen_semi[2]],
                [xd, -0.1 * bc, -40],
                [xd + 2, -0.05 * bc, -150],
            ]
        )
        cr = u(0.8, 1.1)
        self.colon = _Tube(colon, np.array([24, 23, 22, 21, 20, 20, 18, 17, 16]) * cr)
        self.colon_gas = u(0.35, 0.7) * bc
        y0 = float(self.y_vb(np.array(-60.0))) + self.vsy + 15.0
        lo = np.array([-0.6 * ac, y0, -160.0])
        hi = np.array([0.6 * ac, max(0.85 * bc, y0 + 30.0), pc[2] - 40])
        self.bowel = [_Tube(duo, np.full(len(duo), 12.0))]
        for _ in range(rng.integers(3, 5)):
            path = _random_path(rng, rng.uniform(lo, hi), lo, hi, 24, 16.0)
            self.bowel.append(_Tube(path, np.full(len(path), u(10.0, 13.0))))
        self.bowel_fill = T.CONTRAST if self.contrast else T.FLUID
        self.bowel_gas = u(0.75, 0.95) * bc

    # -- painters: each returns (tissue codes, label codes or None); 0 = leave unchanged ---------

    def diaphragm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height of the diaphragm surface (two domes, deep posterior costophrenic recesses)."""
        xr, yd = 0.4 * self.a_c, -0.1 * self.b_c
        ry = ((y - yd) / self.b_c) ** 2
        drop = 60.0 + 50.0 * np.clip((yd - y) / (0.5 * self.b_c), 0.0, 1.0)
        right = self.z_dome_r - drop * (((x - xr) / (0.75 * self.a_c)) ** 2 + ry) ** 1.5
        left = self.z_dome_l - drop * (((x + xr) / (0.75 * self.a_c)) ** 2 + ry) ** 1.5
        return np.maximum(right, left)

    def _body(self, blk: _Block) -> tuple[np.ndarray, None]:
        t = np.zeros(blk.shape, np.uint8)
        semi = self.semi(blk.p[2], np.zeros(3))
        q = {}
        for layer, tissue in (
            ("skin", T.SKIN),
            ("subq", T.SUBQ_FAT),
            ("muscle", T.MUSCLE),
            ("cavity", T.FAT),
        ):
            q[layer] = self.layer_q(blk.p, layer, semi)
            t[q[layer] < 1] = tissue
        # linea alba and the fat planes between the lateral oblique / transversus muscles
        wall = np.nonzero(t == T.MUSCLE)
        x, y, _ = (v[wall] for v in blk.full())
        r_out, r_in = np.sqrt(q["muscle"][wall]), np.sqrt(q["cavity"][wall])
        depth = (1.0 - r_out) / np.maximum(r_in - r_out, 1e-6)
        lateral = (np.abs(x) > 0.55 * np.broadcast_to(semi[0], blk.shape)[wall]) & (y > -0.3 * self.b)
        planes = lateral & ((np.abs(depth - 0.4) < 0.06) | (np.abs(depth - 0.72) < 0.05))
        t[wall] = np.where(planes | ((np.abs(x) < 4.0) & (y > 0)), T.SUBQ_FAT, T.MUSCLE)
        return t, None

    def _lungs(self, blk: _Block) -> tuple[np.ndarray, None]:
        x, y, z = blk.p
        t = np.zeros(blk.shape, np.uint8)
        inside = self.layer_q(blk.p, "cavity") < 1
        zd = self.diaphragm(x, y)
        t[inside & (z > zd - 5.0)] = T.MUSCLE
        lung = inside & (z > zd)
        t[lung] = T.LUNG
        t[lung & ((((x + 8.0) / 28.0) ** 2 + ((y - self.y_vb(z) - 22.0) / 45.0) ** 2) < 1)] = T.SUBQ_FAT
        return t, None

    def _heart(self, blk: _Block) -> tuple[np.ndarray, None]:
        x, y, z = blk.p
        c, semi = self.heart
        t = np.zeros(blk.shape, np.uint8)
        above = z > self.diaphragm(x, y)
        for shrink, tissue in ((0.0, T.SUBQ_FAT), (4.0, T.MYOCARDIUM), (14.0, T.ARTERY)):
            t[above & (_ell_q(blk.p, c, semi - shrink) < 1)] = tissue
        return t, None

    def _muscles(self, blk: _Block) -> tuple[np.ndarray, None]:
        x, y, z = blk.p
        sc, ax, yv = self.sc, np.abs(x), self.y_vb(z)
        d = np.clip(self.vert["L1"][1] - z, 0.0, None)
        rx = np.minimum(5.0 + 0.17 * d, 26.0 * sc)
        psoas = (d > 0) & (
            ((ax - self.vsx - 4.0 - 0.9 * rx) / rx) ** 2 + ((y - yv + 2.0) / (0.85 * rx)) ** 2 < 1
        )
        ql = (z < self.vert["T12"][1]) & (
            ((ax - self.vsx - 45.0) / (18.0 * sc)) ** 2 + ((y - yv + 40.0) / (9.0 * sc)) ** 2 < 1
        )
        erector = ((ax - 27.0 * sc) / (27.0 * sc)) ** 2 + (
            (y - yv + self.vsy + 38.0 * sc) / (22.0 * sc)
        ) ** 2 < 1
        return np.broadcast_to(np.where(psoas | ql | erector, T.MUSCLE, 0), blk.shape).astype(np.uint8), None

    def _spine(self, blk: _Block) -> tuple[np.ndarray, None]:
        x, y, z = blk.p
        sc, edges, centres = self.sc, self.vert_edges, self.vert_centres
        yv = self.y_vb(z)
        idx = np.searchsorted(edges, z)
        in_body = idx % 2 == 1
        in_spine = (idx > 0) & (idx < len(edges))
        i = np.clip(np.searchsorted(centres, z), 1, len(centres) - 1)
        lvl = np.where(np.abs(z - centres[i - 1]) < np.abs(z - centres[i]), i - 1, i)
        lumbar = self.vert_lumbar[lvl] > 0
        zc = centres[lvl]
        sx, sy = np.where(lumbar, self.vsx, 0.8 * self.vsx), np.where(lumbar, self.vsy, 0.85 * self.vsy)
        q = (x / sx) ** 2 + ((y - yv) / sy) ** 2
        t = np.zeros(blk.shape, np.uint8)
        t[in_spine & ~in_body & (q < 0.96)] = T.DISC
        body = in_body & (q < 1)
        lo, hi = edges[np.clip(idx - 1, 0, None)], edges[np.clip(idx, None, len(edges) - 1)]
        t[body] = T.CANCELLOUS
        t[body & ((q > (1 - 2.0 / sx) ** 2) | (z - lo < 1.5) | (hi - z < 1.5))] = T.CORTICAL
        cx, cy = 10.0 * sc, 8.0 * sc
        yc = yv - sy - cy - sc
        qc = (x / cx) ** 2 + ((y - yc) / cy) ** 2
        half = np.where(lumbar, 13.5, 11.0) * sc
        arch = (np.abs(z - zc) < half + 2.0) & ((x / (1.9 * cx)) ** 2 + ((y - yc) / (1.9 * cy)) ** 2 < 1)
        arch &= (qc >= 1) & (y < yv - sy + 2.0)
        spinous = (np.abs(x) < 4.0 * sc) & (y < yc - 1.5 * cy) & (y > yc - cy - 28.0 * sc)
        spinous &= np.abs(z - zc + 0.35 * (yc - cy - y)) < 7.0 * sc
        tp = (np.abs(x) > 1.3 * cx) & (np.abs(x) < 1.3 * cx + np.where(lumbar, 22.0, 16.0) * sc)
        tp &= (np.abs(y - yc) < 5.0 * sc) & (np.abs(z - zc) < 5.5 * sc)
        t[arch | spinous | tp] = T.ARCH
        t[in_spine & (qc < 1)] = T.CSF
        return t, None

    def _ribs(self, blk: _Block) -> tuple[np.ndarray, None]:
        x, y, z = blk.p
        a, ba, bp = self.semi(z, self.inset("rib"))
        rho = np.sqrt((x / a) ** 2 + (y / np.where(y < 0, bp, ba)) ** 2)
        t = np.zeros(blk.shape, np.uint8)
        sel = np.nonzero((rho > 0.62) & (rho < 1.1))
        xs, ys, zs = (v[sel] for v in blk.full())
        ths = np.arctan2(np.abs(xs), -ys)
        rho_c = 1.0 - 0.3 * np.clip((0.45 * np.pi - ths) / (0.3 * np.pi), 0.0, 1.0) ** 2
        drs = (rho[sel] - rho_c) * np.sqrt(xs * xs + ys * ys) / rho[sel]
        ts = np.zeros(xs.shape, np.uint8)
        th0 = 0.17 * np.pi
        f = np.clip((ths - th0) / (np.pi - th0), 0.0, None) ** 1.1
        dr2 = (drs / 3.5) ** 2
        for side, z_post, drop, th_end, th_cart in self.ribs:
            q = dr2 + ((zs - z_post + drop * f) / 5.5) ** 2
            m = (xs * side > 0) & (ths >= th0) & (ths <= th_end) & (q < 1)
            bone = np.where(q > 0.4, T.CORTICAL, T.CANCELLOUS)
            ts[m] = np.where(ths > th_cart, T.CARTILAGE, bone)[m]
        t[sel] = ts
        return t, None

    def _tube_painter(self, tube: _Tube, tissue: T) -> Painter:
        def paint(blk: _Block) -> tuple[np.ndarray, None]:
            s, _ = tube.sdf(blk)
            t = np.where(s < 0, tissue, 0).astype(np.uint8)
            if tube is self.aorta:
                for c in self.plaques:
                    t[(s < 1.0) & (_ell_q(blk.p, c, (2.5, 2.5, 4.0)) < 1)] = T.CORTICAL
            return t, None

        return paint

    def _kidney(self, k: dict) -> Painter:
        def paint(blk: _Block) -> tuple[np.ndarray, np.ndarray]:
            lu, lv, lw = _local(self.warp[k["name"]](blk), k["c"], k["rot"])
            ru, rv, rw = k["semi"]
            b = k["bulge"]
            q = ((lu / ru) ** 2 + (lv / rv) ** 2 + (lw / rw) ** 2) * (
                1.0 + 0.06 * b[0] * lw / rw + 0.05 * b[1] * lu * lw / (ru * rw) + 0.05 * b[2] * lv / rv
            )
            inside = q < 1
            sinus = ((lu - 0.5 * ru) / (0.5 * ru)) ** 2 + (lv / (0.42 * rv)) ** 2 + (
                lw / (0.55 * rw)
            ) ** 2 < 1
            sinus |= (lu > 0.55 * ru) & ((lv / (0.5 * rv)) ** 2 + (lw / (0.38 * rw)) ** 2 < 1)
            pelvis = ((lu - 0.72 * ru) / (0.32 * ru)) ** 2 + (lv / (0.25 * rv)) ** 2 + (
                lw / (0.3 * rw)
            ) ** 2 < 1
            inner = (lu / (ru - 6.0)) ** 2 + (lv / (rv - 6.0)) ** 2 + (lw / (rw - 7.0)) ** 2 < 1
            near_sinus = ((lu - 0.5 * ru) / (0.62 * ru)) ** 2 + (lv / (0.55 * rv)) ** 2 + (
                lw / (0.68 * rw)
            ) ** 2 < 1
            ang = np.arctan2(lw / rw, (lu - 0.3 * ru) / ru)
            medulla = inner & ~near_sinus & (np.cos(7.0 * ang + k["phase"]) > -0.35)
            peri = (lu / (ru + 8.0)) ** 2 + (lv / (rv + 7.0)) ** 2 + (lw / (rw + 10.0)) ** 2 < 1
            t = np.where(peri, T.PERIRENAL_FAT, 0).astype(np.uint8)
            t[inside] = T.CORTEX
            t[inside & medulla] = T.MEDULLA
            parenchyma = inside & ~sinus
            t[(inside | peri) & sinus] = T.PERIRENAL_FAT
            t[(inside | peri) & sinus & pelvis] = T.URINE
            return t, np.where(parenchyma, k["label"], 0).astype(np.uint8)

        return paint

    def _spleen_paint(self, blk: _Block) -> tuple[np.ndarray, np.ndarray]:
        lu, lv, lw = _local(self.warp["spleen"](blk), self.spleen_c, self.spleen_rot)
        ru, rv, rw = self.spleen_semi
        b = self.spleen_bulge
        q = ((lu / ru) ** 2 + (lv / rv) ** 2 + (lw / rw) ** 2) * (
            1.0 + 0.07 * b[0] * lw / rw + 0.06 * b[1] * lv * lw / (rv * rw) + 0.05 * b[2] * lv / rv
        )
        hilum = ((lu - 2.2 * ru) / (1.35 * ru)) ** 2 + (lv / (0.8 * rv)) ** 2 + (lw / (0.75 * rw)) ** 2 < 1
        m = (q < 1) & ~hilum
        return np.where(m, T.SPLEEN, 0).astype(np.uint8), np.where(m, LABELS["spleen"], 0).astype(np.uint8)

    def _gallbladder_paint(self, blk: _Block) -> tuple[np.ndarray, None]:
        c, rot, semi = self.gallbladder
        lu, lv, lw = _local(blk.p, c, rot)
        t = np.zeros(blk.shape, np.uint8)
        for shrink, tissue in ((0.0, T.BOWEL_WALL), (2.0, T.BILE)):
            t[
                (lu / (semi[0] - shrink)) ** 2
                + (lv / (semi[1] - shrink)) ** 2
                + (lw / (semi[2] - shrink)) ** 2
                < 1
            ] = tissue
        return t, None

    def _liver_paint(self, blk: _Block) -> tuple[np.ndarray, np.ndarray]:
        x, y, z = self.warp["liver"](blk)
        ac, bc = self.a_c, self.b_c
        tt = (self.z_dome_r + 5.0 - z) / self.liver_h
        g = np.sqrt(np.clip(1.0 - np.clip(tt, 0.0, None) ** self.liver_taper, 1e-6, None))
        cx, cy = self.liver_x0 + 0.25 * ac * tt, -0.1 * bc + 0.25 * bc * tt
        rx = np.where(x > cx, self.liver_r[0], 0.65 * ac) * g
        inside = (tt < 1) & (((x - cx) / rx) ** 2 + ((y - cy) / (self.liver_r[1] * g)) ** 2 < 1)
        c, s = self.left_lobe
        thin = 1.0 - 0.5 * np.clip((c[0] - x) / s[0], 0.0, 1.0)
        inside |= ((x - c[0]) / s[0]) ** 2 + ((y - c[1]) / (s[1] * thin)) ** 2 + (
            (z - c[2]) / (s[2] * thin)
        ) ** 2 < 1
        ivc = self.ivc.pts[3]
        inside |= (
            _ell_q((x, y, z), (ivc[0] - 14.0, ivc[1] - 8.0, self.z_dome_r - 60.0), (20.0, 18.0, 35.0)) < 1
        )
        t = np.where(inside, T.LIVER, 0).astype(np.uint8)
        sel = np.nonzero(inside)
        if sel[0].size:
            p = tuple(v[sel] for v in blk.full())
            sub = _Block(p, np.array([v.min() for v in p]), np.array([v.max() for v in p]), p[0].shape)
            ts = t[sel]
            for tube, tissue in self.liver_vessels:
                ts[tube.sdf(sub)[0] < 0] = tissue
            t[sel] = ts
        return t, np.where(inside, LABELS["liver"], 0).astype(np.uint8)

    def _lumen_painter(
        self, tube: _Tube, wall: float, gas_y: float, fill: T, haustra: bool = False
    ) -> Painter:
        def paint(blk: _Block) -> tuple[np.ndarray, None]:
            s, arc = tube.sdf(blk)
            if haustra:
                s = s - 2.5 * np.cos(2 * np.pi * arc / 28.0)
            t = np.where(s < 0, T.BOWEL_WALL, 0).astype(np.uint8)
            lumen = s < -wall
            t[lumen] = fill
            t[lumen & (blk.p[1] > gas_y)] = T.GAS
            return t, None

        return paint

    def _solid_painter(self, tube: _Tube, tissue: T) -> Painter:
        def paint(blk: _Block) -> tuple[np.ndarray, None]:
            return np.where(tube.sdf(blk)[0] < 0, tissue, 0).astype(np.uint8), None

        return paint

    def structures(self) -> list[_Structure]:
        """All structures in painting order (later ones win; ``fill`` ones only replace T.FAT)."""
        big = 1e4
        a, ba, bp = self.extent(-400.0, 400.0)
        body_lo, body_hi = np.array([-a, -bp, -big]), np.array([a, ba, big])
        pad = 20.0  # deformation margin
        out = [
            _Structure("body", body_lo, body_hi, self._body, OVER),
            _Structure("lungs", np.array([-a, -bp, self.z_dome_l - 140.0]), body_hi, self._lungs, OVER),
            _Structure(
                "heart", self.heart[0] - self.heart[1], self.heart[0] + self.heart[1], self._heart, OVER
            ),
            _Structure(
                "muscles",
                np.array([-self.vsx - 80.0, -bp, -big]),
                np.array([self.vsx + 80.0, ba, big]),
                self._muscles,
                OVER,
            ),
        ]
        for tube, tissue in self.tubes:
            out.append(_Structure("vessel", *tube.bounds(3.0), self._tube_painter(tube, tissue), OVER))
        z_spine = (self.vert_edges[0] - 20.0, self.vert_edges[-1] + 20.0)
        y_spine = self.y_vb(np.array(z_spine))
        out += [
            _Structure(
                "spine",
                np.array([-80.0, y_spine.min() - 100.0, z_spine[0]]),
                np.array([80.0, y_spine.max() + 25.0, z_spine[1]]),
                self._spine,
                OVER,
            ),
            _Structure(
                "ribs",
                np.array([-a, -bp, -60.0]),
                np.array([a, ba, self.vert["T7"][1] + 20.0]),
                self._ribs,
                OVER,
            ),
        ]
        for name, k in self.kidneys.items():
            r = np.sqrt(((k["rot"] * (k["semi"] + 14.0)) ** 2).sum(axis=1)) + pad
            out.append(_Structure(name, k["c"] - r, k["c"] + r, self._kidney(k), FAT_ONLY))
        r = np.sqrt(((self.spleen_rot * self.spleen_semi) ** 2).sum(axis=1)) + pad
        out.append(
            _Structure("spleen", self.spleen_c - r, self.spleen_c + r, self._spleen_paint, FAT_OR_PERIRENAL)
        )
        if self.gallbladder is not None:
            r = self.gallbladder[2].max()
            out.append(
                _Structure(
                    "gallbladder",
                    self.gallbladder[0] - r,
                    self.gallbladder[0] + r,
                    self._gallbladder_paint,
                    FAT_ONLY,
                )
            )
        out += [
            _Structure(
                "liver",
                np.array([-0.85 * self.a_c, -self.b_c, self.z_liver_tip - pad]),
                np.array([self.a_c, self.b_c, self.z_dome_r + pad]),
                self._liver_paint,
                FAT_OR_PERIRENAL,
            ),
            _Structure(
                "pancreas", *self.pancreas.bounds(), self._solid_painter(self.pancreas, T.PANCREAS), FAT_ONLY
            ),
            _Structure(
                "stomach",
                *self.stomach.bounds(),
                self._lumen_painter(self.stomach, 4.0, self.stomach_gas, self.stomach_fill),
                FAT_ONLY,
            ),
            _Structure(
                "colon",
                *self.colon.bounds(3.0),
                self._lumen_painter(self.colon, 2.5, self.colon_gas, T.STOOL, haustra=True),
                FAT_ONLY,
            ),
        ]
        for tube in self.bowel:
            out.append(
                _Structure(
                    "bowel",
                    *tube.bounds(),
                    self._lumen_painter(tube, 2.0, self.bowel_gas, self.bowel_fill),
                    FAT_ONLY,
                )
            )
        return out


# ----------------------------------------------------------------------------- sampling


_AXIS_SIGN = {"R": 1.0, "L": -1.0, "A": 1.0, "P": -1.0, "S": 1.0, "I": -1.0}


def _grid(
    anat: _Anatomy,
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
    a, ba, bp = anat.extent(*z_range)
    if shape is None:
        lo = np.array([-a - margin, -bp - margin, z_range[0]])
        hi = np.array([a + margin, ba + margin, z_range[1]])
        world = _box_corners(lo, hi) @ rot.T + trans
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


def _paint(
    structures: list[_Structure],
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
        ijk = (_box_corners(s.lo, s.hi) - c) @ m_inv.T
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
            pts = _box_corners((lo[0], lo[1], k0), (hi[0] - 1, hi[1] - 1, k1 - 1)) @ m.T + c
            t, lab = s.fn(
                _Block(p, pts.min(axis=0), pts.max(axis=0), (hi[0] - lo[0], hi[1] - lo[1], k1 - k0))
            )
            view = tissue[lo[0] : hi[0], lo[1] : hi[1], k0:k1]
            sel = t > 0
            if s.fill:
                sel &= np.isin(view, s.fill)
            view[sel] = t[sel]
            if labels is not None:
                labels[lo[0] : hi[0], lo[1] : hi[1], k0:k1][sel] = 0 if lab is None else lab[sel]
    return tissue


@dataclass
class _Plan:
    anat: _Anatomy
    rot: np.ndarray
    trans: np.ndarray
    affine: np.ndarray
    dims: tuple[int, int, int]
    spacing: np.ndarray
    table: np.ndarray
    tex_rng: np.random.Generator


def _plan(
    seed: int,
    spacing: tuple[float, float, float] | None,
    shape: tuple[int, int, int] | None,
    orientation: str,
    z_extent: float | None,
) -> _Plan:
    """Patient, placement in the scanner, sampling grid and tissue HU table of one case."""
    anat_rng, case_rng, tex_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    anat = _Anatomy(anat_rng)
    drawn = (case_rng.uniform(0.6, 1.0), case_rng.uniform(1.5, 5.0))
    sp = np.array(spacing if spacing is not None else (drawn[0], drawn[0], drawn[1]), dtype=np.float64)
    rot = _rot_z(case_rng.uniform(-4.0, 4.0))
    trans = case_rng.uniform([-20.0, -40.0, -350.0], [20.0, 10.0, 100.0])
    margin = case_rng.uniform(3.0, 7.0)
    table = np.array([TISSUE_HU[t][:3] for t in T], dtype=np.float64)
    table[:, 0] += [case_rng.normal(0.0, TISSUE_HU[t][3]) for t in T]
    z_range = (anat.z_lo, anat.z_hi)
    if z_extent is not None:
        mid = sum(anat.z_overlap) / 2
        z_range = (mid - z_extent / 2, mid + z_extent / 2)
    affine, dims = _grid(anat, rot, trans, sp, orientation, z_range, margin, shape)
    return _Plan(anat, rot, trans, affine, dims, sp, table, tex_rng)


def generate_ct_case(
    seed: int,
    spacing: tuple[float, float, float] | None = None,
    shape: tuple[int, int, int] | None = None,
    orientation: str = "RAS",
    z_extent: float | None = None,
    supersample: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthesise one abdominal CT: (HU int16 array, label uint8 array, 4x4 RAS affine).

    ``seed`` fixes the patient; ``spacing`` (in-plane x, y, slice thickness in mm) is drawn from
    the seed when None. Without ``shape`` the matrix is cropped to the body over the organ span
    (liver dome to below the kidneys; ``z_extent`` mm centred on the four organs if given); with
    ``shape`` a full FOV of that size is centred on the abdomen (e.g. 512x512x200 at 0.78x0.78x2.5).
    ``orientation`` is the nibabel axis code of the affine ([RL][AP][SI], e.g. RAS, LPS, LPI).
    ``supersample`` sub-slices per slice for the partial-volume slice profile (default about one
    per 1.25 mm of thickness, fewer for very large volumes to bound the run time).
    """
    plan = _plan(seed, spacing, shape, orientation, z_extent)
    dims, sp, table = plan.dims, plan.spacing, plan.table
    n_sub = supersample
    if n_sub is None:
        n_sub = max(1, min(int(sp[2] / 1.25), int(4e7 // np.prod(dims)))) | 1
    tex_c = smooth_noise(plan.tex_rng, dims, 3.0 / sp)
    tex_f = smooth_noise(plan.tex_rng, dims, 0.9 / sp)
    vessels = 650.0 * np.clip((tex_f - 1.6) * 1.5, 0.0, 1.0)
    structures = plan.anat.structures()
    hu = np.zeros(dims, np.float64)
    labels = np.zeros(dims, np.uint8)
    for m in range(n_sub):
        centre = m == n_sub // 2
        offset = (m + 0.5) / n_sub - 0.5
        tissue = _paint(
            structures, plan.affine, dims, plan.rot, plan.trans, offset, labels if centre else None
        )
        hu += table[tissue, 0] + table[tissue, 1] * tex_c + table[tissue, 2] * tex_f
        hu += np.where(tissue == T.LUNG, vessels, 0.0)
        if centre:
            outside = tissue == T.AIR
    del tex_c, tex_f, vessels
    hu /= n_sub
    hu = ndimage.gaussian_filter(hu, (0.45 / sp[0], 0.45 / sp[1], 0.0))
    size = np.sqrt(plan.anat.a * plan.anat.b / (145.0 * 100.0))
    sigma = float(np.clip(7.5 * np.sqrt(5.0 / sp[2]) * size, 7.0, 14.0))
    noise = smooth_noise(plan.tex_rng, dims, (0.7, 0.7, 0.0))
    noise[outside] = 0.0  # air outside the body is masked flat, as scanners do outside the FOV
    hu += sigma * noise
    return np.clip(np.rint(hu), HU_MIN, HU_MAX).astype(np.int16), labels, plan.affine


# ----------------------------------------------------------------------------- writers


def _ds(value: float) -> str:
    """DICOM decimal string (<= 16 chars) with micrometre precision."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def dicom_series(hu: np.ndarray, affine: np.ndarray, case: str, thickness: float) -> list[Dataset]:
    """One CT Image Storage dataset per slice (12-bit unsigned, intercept -1024), geometry in LPS."""
    lps = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, :]
    col_step, row_step, slice_step = lps[:, 0], lps[:, 1], lps[:, 2]
    iop = np.concatenate([col_step / np.linalg.norm(col_step), row_step / np.linalg.norm(row_step)])
    uid = {
        k: generate_uid(entropy_srcs=["monai-label-sample-data", case, k]) for k in ("study", "series", "for")
    }
    series = []
    for k in range(hu.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(
            entropy_srcs=["monai-label-sample-data", case, str(k)]
        )
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = generate_uid(entropy_srcs=["monai-label-sample-data-generator"])
        ds.file_meta.ImplementationVersionName = "SYNTH_CT_1"
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240101"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "Synthetic"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "Synthetic CT abdomen, portal venous phase"
        ds.SeriesDescription = f"Abdomen PV {_ds(thickness)}mm"
        ds.PatientName = f"Synthetic^{case}"
        ds.PatientID = case
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "ABDOMEN"
        ds.SliceThickness = _ds(thickness)
        ds.KVP = "120"
        ds.SpacingBetweenSlices = _ds(float(np.linalg.norm(slice_step)))
        ds.ConvolutionKernel = "STANDARD"
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid["study"], uid["series"]
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        position = lps[:, 3] + k * slice_step
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in iop]
        ds.FrameOfReferenceUID = uid["for"]
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(position[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.PixelSpacing = [_ds(np.linalg.norm(row_step)), _ds(np.linalg.norm(col_step))]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        ds.PixelData = (hu[:, :, k].T.astype(np.int32) + 1024).astype("<u2").tobytes()
        series.append(ds)
    return series


def write_case(spec: CaseSpec, root: Path) -> dict:
    """Generate ``spec`` and write its image, label (unless unlabelled) and DICOM series under ``root``."""
    start = time.perf_counter()
    hu, label, affine = generate_ct_case(
        spec.seed,
        (spec.inplane, spec.inplane, spec.thickness),
        orientation=spec.orientation,
        z_extent=spec.z_extent,
    )
    (root / "ct" / "labels" / "final").mkdir(parents=True, exist_ok=True)
    (root / "ct" / f"{spec.name}.nii.gz").write_bytes(nifti_gz_bytes(hu, affine))
    if spec.labelled:
        (root / "ct" / "labels" / "final" / f"{spec.name}.nii.gz").write_bytes(nifti_gz_bytes(label, affine))
    if spec.dicom:
        folder = root / "ct-dicom" / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("IM*.dcm"):
            old.unlink()
        for k, ds in enumerate(dicom_series(hu, affine, spec.name, spec.thickness)):
            ds.save_as(folder / f"IM{k:04d}.dcm", write_like_original=False)
    return {
        "case": spec.name,
        "shape": hu.shape,
        "spacing": (spec.inplane, spec.thickness),
        "orientation": spec.orientation,
        "seconds": round(time.perf_counter() - start, 1),
    }


def write_wide_cases(root: Path, count: int, first_seed: int = 300) -> list[dict]:
    """Write ``count`` full-FOV 512x512 training volumes (``wide_NNN``) into the datastore ``root``.

    Chest to pelvis around the organs (lungs, heart, bowel, bladder, femoral heads: what a clinical
    abdominal CT shows and the committed organ-span slabs do not); 0.7-0.9 mm pixels, 2.5-5 mm
    slices over 400-650 mm. Not committed (about 25 MB each): the full-FOV fine-tune recipe in the
    README generates them.
    """
    (root / "labels" / "final").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(count):
        rng = np.random.default_rng(first_seed + k)
        inplane = float(rng.uniform(0.7, 0.9))
        thickness = float(rng.choice([2.5, 3.0, 5.0]))
        slices = int(rng.uniform(400.0, 650.0) / thickness)
        hu, label, affine = generate_ct_case(
            first_seed + k, (inplane, inplane, thickness), shape=(512, 512, slices)
        )
        name = f"wide_{k:03d}.nii.gz"
        (root / name).write_bytes(nifti_gz_bytes(hu, affine))
        (root / "labels" / "final" / name).write_bytes(nifti_gz_bytes(label, affine))
        rows.append({"case": name, "shape": hu.shape, "spacing": (round(inplane, 3), thickness)})
    return rows


def main() -> None:
    """Regenerate the committed sample data (all cases, or those named with --case)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output root")
    parser.add_argument("--case", action="append", help="only this case (repeatable)")
    parser.add_argument(
        "--wide", type=int, default=0, help="write N full-FOV training volumes into the datastore --out"
    )
    args = parser.parse_args()
    if args.wide:
        for row in write_wide_cases(args.out, args.wide):
            print(row, flush=True)
        return
    for spec in (*CASES, *UNLABELLED):
        if args.case is None or spec.name in args.case:
            print(write_case(spec, args.out), flush=True)


if __name__ == "__main__":
    main()
