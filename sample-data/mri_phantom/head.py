"""One synthetic head: its shape parameters and the tissue class at any point of the head frame."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from .shapes import Lattice, band_field, ell_q, ell_sdf, smin
from .tissues import Tissue


class Head:
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
        self.warp = Lattice(warp * (uniform(2.0, 4.0) / warp.std()), np.zeros(3), 128.0)
        self.folds = band_field(rng, np.zeros(3), 100.0, 2.0, uniform(18.0, 24.0))
        self.folia = band_field(rng, self.cbl_c, 56.0, 1.0, uniform(6.0, 8.0))

    # -- distance fields ------------------------------------------------------------------------

    def cerebrum_sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Cerebral envelope: ellipsoid pieces, narrower in front, flatter below except temporally."""
        sx, syp, sym, szp, szm = self.cer_semi
        sy = np.where(y > 0, syp, sym)
        temporal = 1.0 + 0.3 * np.clip(np.abs(x) / sx, 0.0, 1.0) ** 2 * np.exp(-(((y + 5.0) / 40.0) ** 2))
        return ell_sdf(
            x, y, z, sx * (1.0 - 0.1 * np.clip(y / syp, 0.0, 1.0)), sy, np.where(z > 0, szp, szm * temporal)
        )

    def cerebellum_sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Cerebellar envelope (ellipsoid)."""
        return ell_sdf(x - self.cbl_c[0], y - self.cbl_c[1], z - self.cbl_c[2], *self.cbl_semi)

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
        brain = smin(cer, cbl, 10.0)
        face = ell_sdf(x - self.face_c[0], y - self.face_c[1], z - self.face_c[2], *self.face_semi)
        (cx, cy), (nx, ny), top = self.neck
        neck = np.maximum(ell_sdf(x - cx, y - cy, np.zeros_like(z), nx, ny, 1.0), z - top)
        head = smin(smin(brain - (self.csf + self.skull + self.scalp), face, 14.0), neck, 16.0)
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
            q = ell_q(x - c[0], y - c[1], z - c[2], (r, r, r))
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
            t[white & (ell_q(x - c[0], y - c[1], z - c[2], semi) < 1.0)] = Tissue.DEEP
        vent = np.zeros(t.shape, bool)
        for c, semi, side in self.vent:  # bodies lean outwards at the top
            vent |= ell_q(x - c[0] - side * 0.35 * (z - c[2]), y - c[1], z - c[2], semi) < 1.0
        for c, semi in self.horns:
            vent |= ell_q(x - c[0], y - c[1], z - c[2], semi) < 1.0
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
        folds: Lattice,
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
