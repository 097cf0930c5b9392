"""Body wall, vertebral levels, diaphragm and lungs, back muscles, spine and ribs."""

from __future__ import annotations

import numpy as np

from .shapes import Block, body_oval_q
from .tissues import Tissue


class Body:
    """Mixin of :class:`ct_phantom.patient.Patient`: the body outline and the skeleton around the organs.

    Painters return (tissue codes, label codes or None); 0 leaves a voxel unchanged.
    """

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
        return (
            self.half_width * g - inset[0],
            self.half_depth * h - inset[1],
            0.92 * self.half_depth * h - inset[2],
        )

    def layer_q(self, p: tuple[np.ndarray, ...], layer: str, semi=None) -> np.ndarray:
        """Normalised radius of a body-wall layer boundary (< 1 inside); ``semi`` = semi(z, 0) if known."""
        a, ba, bp = self.semi(p[2], np.zeros(3)) if semi is None else semi
        d = self.inset(layer)
        return body_oval_q(p[0], p[1], a - d[0], ba - d[1], bp - d[2])

    def extent(self, z_lo: float, z_hi: float) -> tuple[float, float, float]:
        """Maximum body half-width, anterior and posterior extent over a z range."""
        a, ba, bp = self.semi(np.linspace(z_lo, z_hi, 64), self.inset("skin"))
        return float(a.max()), float(ba.max()), float(bp.max())

    def y_vertebra(self, z: np.ndarray) -> np.ndarray:
        """AP centre of the vertebral bodies (lumbar lordosis: lower = more anterior)."""
        return self.y_vertebra_at_0 - 0.06 * z

    def _vertebral_levels(self) -> None:
        scale = self.scale
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
        top = 4.5 * scale + sum(h + d for _, h, d in spec[:7]) * scale - 9 * scale
        bodies = []
        for name, h, d in spec:
            bodies.append((name, top - h * scale, top))
            top -= (h + d) * scale
        self.vertebrae = {name: (lo, hi) for name, lo, hi in bodies}
        self.vert_edges = np.array(sorted(v for _, lo, hi in bodies for v in (lo, hi)))
        self.vert_centres = np.array(sorted((lo + hi) / 2 for _, lo, hi in bodies))
        self.vert_lumbar = np.array(sorted(((lo + hi) / 2, n[0] == "L") for n, lo, hi in bodies))[:, 1]

    def diaphragm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height of the diaphragm surface (two domes, deep posterior costophrenic recesses)."""
        xr, yd = 0.4 * self.cavity_semi_x, -0.1 * self.cavity_semi_y
        ry = ((y - yd) / self.cavity_semi_y) ** 2
        drop = 60.0 + 50.0 * np.clip((yd - y) / (0.5 * self.cavity_semi_y), 0.0, 1.0)
        right = self.z_dome_r - drop * (((x - xr) / (0.75 * self.cavity_semi_x)) ** 2 + ry) ** 1.5
        left = self.z_dome_l - drop * (((x + xr) / (0.75 * self.cavity_semi_x)) ** 2 + ry) ** 1.5
        return np.maximum(right, left)

    def _paint_body_wall(self, blk: Block) -> tuple[np.ndarray, None]:
        t = np.zeros(blk.shape, np.uint8)
        semi = self.semi(blk.p[2], np.zeros(3))
        q = {}
        for layer, tissue in (
            ("skin", Tissue.SKIN),
            ("subq", Tissue.SUBQ_FAT),
            ("muscle", Tissue.MUSCLE),
            ("cavity", Tissue.FAT),
        ):
            q[layer] = self.layer_q(blk.p, layer, semi)
            t[q[layer] < 1] = tissue
        # linea alba and the fat planes between the lateral oblique / transversus muscles
        wall = np.nonzero(t == Tissue.MUSCLE)
        x, y, _ = (v[wall] for v in blk.full())
        r_out, r_in = np.sqrt(q["muscle"][wall]), np.sqrt(q["cavity"][wall])
        depth = (1.0 - r_out) / np.maximum(r_in - r_out, 1e-6)
        lateral = (np.abs(x) > 0.55 * np.broadcast_to(semi[0], blk.shape)[wall]) & (
            y > -0.3 * self.half_depth
        )
        planes = lateral & ((np.abs(depth - 0.4) < 0.06) | (np.abs(depth - 0.72) < 0.05))
        t[wall] = np.where(planes | ((np.abs(x) < 4.0) & (y > 0)), Tissue.SUBQ_FAT, Tissue.MUSCLE)
        return t, None

    def _paint_lungs(self, blk: Block) -> tuple[np.ndarray, None]:
        x, y, z = blk.p
        t = np.zeros(blk.shape, np.uint8)
        inside = self.layer_q(blk.p, "cavity") < 1
        z_dome = self.diaphragm(x, y)
        t[inside & (z > z_dome - 5.0)] = Tissue.MUSCLE
        lung = inside & (z > z_dome)
        t[lung] = Tissue.LUNG
        t[lung & ((((x + 8.0) / 28.0) ** 2 + ((y - self.y_vertebra(z) - 22.0) / 45.0) ** 2) < 1)] = (
            Tissue.SUBQ_FAT
        )
        return t, None

    def _paint_muscles(self, blk: Block) -> tuple[np.ndarray, None]:
        x, y, z = blk.p
        scale, ax, yv = self.scale, np.abs(x), self.y_vertebra(z)
        d = np.clip(self.vertebrae["L1"][1] - z, 0.0, None)
        rx = np.minimum(5.0 + 0.17 * d, 26.0 * scale)
        psoas = (d > 0) & (
            ((ax - self.vertebra_semi_x - 4.0 - 0.9 * rx) / rx) ** 2 + ((y - yv + 2.0) / (0.85 * rx)) ** 2 < 1
        )
        ql = (z < self.vertebrae["T12"][1]) & (
            ((ax - self.vertebra_semi_x - 45.0) / (18.0 * scale)) ** 2
            + ((y - yv + 40.0) / (9.0 * scale)) ** 2
            < 1
        )
        erector = ((ax - 27.0 * scale) / (27.0 * scale)) ** 2 + (
            (y - yv + self.vertebra_semi_y + 38.0 * scale) / (22.0 * scale)
        ) ** 2 < 1
        return np.broadcast_to(np.where(psoas | ql | erector, Tissue.MUSCLE, 0), blk.shape).astype(
            np.uint8
        ), None

    def _paint_spine(self, blk: Block) -> tuple[np.ndarray, None]:
        x, y, z = blk.p
        scale, edges, centres = self.scale, self.vert_edges, self.vert_centres
        yv = self.y_vertebra(z)
        idx = np.searchsorted(edges, z)
        in_body = idx % 2 == 1
        in_spine = (idx > 0) & (idx < len(edges))
        i = np.clip(np.searchsorted(centres, z), 1, len(centres) - 1)
        lvl = np.where(np.abs(z - centres[i - 1]) < np.abs(z - centres[i]), i - 1, i)
        lumbar = self.vert_lumbar[lvl] > 0
        zc = centres[lvl]
        sx, sy = (
            np.where(lumbar, self.vertebra_semi_x, 0.8 * self.vertebra_semi_x),
            np.where(lumbar, self.vertebra_semi_y, 0.85 * self.vertebra_semi_y),
        )
        q = (x / sx) ** 2 + ((y - yv) / sy) ** 2
        t = np.zeros(blk.shape, np.uint8)
        t[in_spine & ~in_body & (q < 0.96)] = Tissue.DISC
        body = in_body & (q < 1)
        lo, hi = edges[np.clip(idx - 1, 0, None)], edges[np.clip(idx, None, len(edges) - 1)]
        t[body] = Tissue.CANCELLOUS
        t[body & ((q > (1 - 2.0 / sx) ** 2) | (z - lo < 1.5) | (hi - z < 1.5))] = Tissue.CORTICAL
        cx, cy = 10.0 * scale, 8.0 * scale
        yc = yv - sy - cy - scale
        qc = (x / cx) ** 2 + ((y - yc) / cy) ** 2
        half = np.where(lumbar, 13.5, 11.0) * scale
        arch = (np.abs(z - zc) < half + 2.0) & ((x / (1.9 * cx)) ** 2 + ((y - yc) / (1.9 * cy)) ** 2 < 1)
        arch &= (qc >= 1) & (y < yv - sy + 2.0)
        spinous = (np.abs(x) < 4.0 * scale) & (y < yc - 1.5 * cy) & (y > yc - cy - 28.0 * scale)
        spinous &= np.abs(z - zc + 0.35 * (yc - cy - y)) < 7.0 * scale
        tp = (np.abs(x) > 1.3 * cx) & (np.abs(x) < 1.3 * cx + np.where(lumbar, 22.0, 16.0) * scale)
        tp &= (np.abs(y - yc) < 5.0 * scale) & (np.abs(z - zc) < 5.5 * scale)
        t[arch | spinous | tp] = Tissue.ARCH
        t[in_spine & (qc < 1)] = Tissue.CSF
        return t, None

    def _paint_ribs(self, blk: Block) -> tuple[np.ndarray, None]:
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
            bone = np.where(q > 0.4, Tissue.CORTICAL, Tissue.CANCELLOUS)
            ts[m] = np.where(ths > th_cart, Tissue.CARTILAGE, bone)[m]
        t[sel] = ts
        return t, None
