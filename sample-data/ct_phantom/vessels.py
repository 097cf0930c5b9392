"""Aorta, IVC, portal and mesenteric vessels, renal vessels and ureters, intrahepatic branches."""

from __future__ import annotations

import numpy as np

from .shapes import Block, Painter, Tube, ellipsoid_q, unit
from .tissues import Tissue


class Vessels:
    """Mixin of :class:`ct_phantom.patient.Patient`: vessel paths (after the organs they connect)."""

    def _draw_vessels(self, rng: np.random.Generator) -> None:
        uniform = rng.uniform
        vessel_scale = self.scale * uniform(0.85, 1.15)
        z_top, z_bottom = self.z_dome_r + 60.0, -170.0

        def y_spine_front(z: float) -> float:
            return float(self.y_vertebra(np.array(z))) + self.vertebra_semi_y

        self.aorta = Tube(
            np.array(
                [
                    [-22, y_spine_front(z_top) - 2, z_top],
                    [-14, y_spine_front(40) + 12, 40],
                    [-10, y_spine_front(-40) + 13, -40],
                    [-6, y_spine_front(z_bottom) + 12, z_bottom],
                ]
            ),
            np.array([12.5, 11, 10, 9]) * vessel_scale,
        )
        self.plaques = [
            self.aorta.pts[2]
            + (self.aorta.pts[3] - self.aorta.pts[2]) * uniform(0, 1)
            + 9.5 * vessel_scale * unit([rng.normal(), -abs(rng.normal()), 0.0])
            for _ in range(rng.integers(0, 6))
        ]
        z_dome = self.z_dome_r
        self.ivc = Tube(
            np.array(
                [
                    [22, y_spine_front(z_bottom) + 12, z_bottom],
                    [22, y_spine_front(0) + 14, 0],
                    [24, y_spine_front(60) + 22, 60],
                    [18, y_spine_front(z_dome) + 32, z_dome - 10],
                    [10, y_spine_front(z_dome) + 40, z_dome + 40],
                ]
            ),
            np.array([11, 12, 13, 14, 14]) * vessel_scale,
        )
        self.z_portal_confluence = 12.0 * self.scale + uniform(-8, 8)
        z_portal = self.z_portal_confluence
        self.portal_confluence = np.array([12.0, y_spine_front(z_portal) + 45.0, z_portal])
        self.porta = np.array([40.0, y_spine_front(z_portal) + 35.0, z_dome - 75.0 * self.scale])
        self.tubes: list[tuple[Tube, Tissue]] = [(self.aorta, Tissue.ARTERY), (self.ivc, Tissue.VEIN)]
        confluence, porta = self.portal_confluence, self.porta
        splenic_hilum = self.spleen_c + self.spleen_rot @ np.array(
            [0.8 * self.spleen_semi[0], 0.0, -0.1 * self.spleen_semi[2]]
        )
        tubes = [
            ([confluence, (confluence + porta) / 2 + [0, 4, 0], porta], [7.5, 7.5, 7], Tissue.PORTAL),
            (
                [confluence, confluence + [2, 6, -40], confluence + [3, 8, -90]],
                [6, 5.5, 5],
                Tissue.VEIN,
            ),  # SMV
            (
                [confluence, confluence + [-30, -6, 10], confluence + [-60, -20, 20], splenic_hilum],
                [5.5, 5, 5, 5],
                Tissue.VEIN,
            ),  # splenic vein
            (
                [
                    [-10, y_spine_front(z_portal + 5) + 20, z_portal + 5],
                    [-6, y_spine_front(z_portal) + 40, z_portal - 5],
                    [-2, y_spine_front(z_portal - 60) + 50, z_portal - 70],
                ],
                [4.5, 4, 3.5],
                Tissue.ARTERY,
            ),  # SMA
            (
                [
                    [-10, y_spine_front(z_portal + 25) + 20, z_portal + 25],
                    [-8, y_spine_front(z_portal + 25) + 36, z_portal + 28],
                ],
                [4, 4],
                Tissue.ARTERY,
            ),  # celiac
            (
                [
                    [-8, y_spine_front(z_top) + 25, z_top],
                    [-14, y_spine_front(z_dome) + 30, self.z_dome_l - 5],
                    [-40, y_spine_front(z_dome) + 30, self.z_dome_l - 30],
                ],
                [8, 8, 9],
                Tissue.MUSCLE,
            ),  # oesophagus
        ]
        for k in self.kidneys.values():
            c, rot, semi, side = k["c"], k["rot"], k["semi"], k["side"]
            hil = c + rot @ np.array([0.5 * semi[0], 0, 0])
            out = c + rot @ np.array([1.3 * semi[0], 0, 0])
            ivc_pt = np.array([22.0, y_spine_front(hil[2]) + 14.0, hil[2] - 4.0])
            if side < 0:
                tubes.append(
                    (
                        [hil, out, [-8, y_spine_front(hil[2]) + 29, hil[2] - 3], ivc_pt],
                        [5, 5, 4.5, 5],
                        Tissue.VEIN,
                    )
                )
            else:
                tubes.append(([hil, out, ivc_pt], [5, 5, 5.5], Tissue.VEIN))
            ao = np.array([-10.0, y_spine_front(hil[2] + 6) + 9.0, hil[2] + 6.0])
            art_hil = c + rot @ np.array([0.5 * semi[0], -0.3 * semi[1], 0.1 * semi[2]])
            tubes.append(([ao, (ao + art_hil) / 2 - [0, 8, 0], art_hil], [3.2, 3, 2.8], Tissue.ARTERY))
            pelvis = c + rot @ np.array([0.75 * semi[0], 0, -0.15 * semi[2]])
            xu = side * (self.vertebra_semi_x + 16.0)
            tubes.append(
                (
                    [
                        pelvis,
                        [xu, float(self.y_vertebra(pelvis[2] - 40)), pelvis[2] - 40],
                        [xu * 0.9, float(self.y_vertebra(z_bottom)) + 8, z_bottom],
                    ],
                    [3, 2.5, 2.5],
                    Tissue.URINE,
                )
            )
        self.tubes += [
            (Tube(np.array(p, dtype=np.float64), np.array(r, dtype=np.float64) * vessel_scale), t)
            for p, r, t in tubes
        ]
        # intrahepatic branches (painted with the liver, labelled liver)
        hv0 = np.array([self.ivc.pts[3, 0], self.ivc.pts[3, 1], z_dome - 22.0])
        jit = [rng.normal(0, 8, 3) for _ in range(8)]
        self.liver_vessels = [
            (
                Tube(
                    np.array([porta, porta + [35, -5, 8] + jit[0], porta + [75, -15, 12] + jit[1]]),
                    np.array([7, 5, 2.5]),
                ),
                Tissue.PORTAL,
            ),
            (
                Tube(
                    np.array([porta + [35, -5, 8] + jit[0], porta + [60, 25, 25] + jit[2]]),
                    np.array([4.5, 2.5]),
                ),
                Tissue.PORTAL,
            ),
            (
                Tube(
                    np.array([porta, porta + [-30, 18, 20] + jit[3], porta + [-70, 25, 28] + jit[4]]),
                    np.array([6.5, 4, 2]),
                ),
                Tissue.PORTAL,
            ),
            (
                Tube(
                    np.array([hv0, hv0 + [45, -25, -25] + jit[5], hv0 + [85, -25, -50]]), np.array([6, 4, 2])
                ),
                Tissue.VEIN,
            ),
            (
                Tube(
                    np.array([hv0, hv0 + [15, 35, -35] + jit[6], hv0 + [25, 60, -60]]),
                    np.array([5.5, 3.5, 2]),
                ),
                Tissue.VEIN,
            ),
            (
                Tube(
                    np.array([hv0, hv0 + [-35, 25, -10] + jit[7], hv0 + [-70, 30, -25]]), np.array([5, 3, 2])
                ),
                Tissue.VEIN,
            ),
        ]

    def _vessel_painter(self, tube: Tube, tissue: Tissue) -> Painter:
        def paint(blk: Block) -> tuple[np.ndarray, None]:
            s, _ = tube.sdf(blk)
            t = np.where(s < 0, tissue, 0).astype(np.uint8)
            if tube is self.aorta:
                for c in self.plaques:
                    t[(s < 1.0) & (ellipsoid_q(blk.p, c, (2.5, 2.5, 4.0)) < 1)] = Tissue.CORTICAL
            return t, None

        return paint
