"""Unlabelled viscera around the organs: heart, stomach, gallbladder, pancreas, bowel and colon."""

from __future__ import annotations

import numpy as np

from .shapes import Block, Painter, Tube, ellipsoid_q, frame, random_path, to_local
from .tissues import Tissue


class Viscera:
    """Mixin of :class:`ct_phantom.patient.Patient`: the hollow and solid viscera that are not labelled."""

    def _draw_viscera(self, rng: np.random.Generator) -> None:
        uniform = rng.uniform
        cav_x, cav_y, z_dome_left, confluence = (
            self.cavity_semi_x,
            self.cavity_semi_y,
            self.z_dome_l,
            self.portal_confluence,
        )
        self.heart = (
            np.array([-0.15 * cav_x, 0.3 * cav_y, z_dome_left + 40.0]),
            np.array([0.5 * cav_x, 0.5 * cav_y, 50.0]),
        )
        self.contrast = uniform() < 0.35  # positive oral contrast in small bowel / stomach
        dist = uniform(0.5, 0.9)
        self.stomach = Tube(
            np.array(
                [
                    [-0.42 * cav_x, -0.2 * cav_y, z_dome_left - 22],
                    [-0.45 * cav_x, 0.2 * cav_y, z_dome_left - 55],
                    [-0.28 * cav_x, 0.55 * cav_y, z_dome_left - 88],
                    [-0.05 * cav_x, 0.62 * cav_y, z_dome_left - 108],
                    [0.2 * cav_x, 0.5 * cav_y, confluence[2] + 12],
                ]
            ),
            np.array([38, 35, 28, 20, 10]) * dist,
        )
        self.stomach_gas = self.stomach.pts[:, 1].max() + 5.0 - uniform(0.0, 25.0)
        self.stomach_fill = (
            Tissue.CONTRAST
            if self.contrast and uniform() < 0.5
            else (Tissue.CHYME if uniform() < 0.5 else Tissue.FLUID)
        )
        self.gallbladder = None
        if uniform() > 0.15:
            gs = uniform(0.6, 1.2)
            c = np.array([0.3 * cav_x, 0.35 * cav_y, self.porta[2] - 22.0])
            self.gallbladder = (
                c,
                frame(np.array([0.1, -0.55, 0.83]), np.array([1.0, 0, 0])),
                np.array([15.0, 14.0, 38.0]) * gs,
            )
        y_ref = confluence[1] - 45.0
        self.pancreas = Tube(
            np.array(
                [
                    [35, y_ref + 45, confluence[2] - 15],
                    [10, y_ref + 55, confluence[2]],
                    [-30, y_ref + 45, confluence[2] + 10],
                    [-62, y_ref + 22, confluence[2] + 20],
                ]
            ),
            np.array([16, 11, 11, 9]) * uniform(0.8, 1.1),
        )
        duo = np.array(
            [
                [25, y_ref + 70, confluence[2] + 15],
                [50, y_ref + 52, confluence[2] + 10],
                [56, y_ref + 40, confluence[2] - 25],
                [40, y_ref + 40, confluence[2] - 48],
                [0, y_ref + 35, confluence[2] - 52],
                [-22, y_ref + 42, confluence[2] - 40],
            ]
        )
        xa, xd = cav_x - 26.0, -(cav_x - 24.0)
        colon = np.array(
            [
                [xa, 0, -150],
                [xa + 4, 5, -70],
                [xa - 8, 0.35 * cav_y, self.z_liver_tip + 8],
                [0.35 * cav_x, 0.75 * cav_y, -35],
                [0, 0.8 * cav_y, uniform(-70, -40)],
                [-0.35 * cav_x, 0.72 * cav_y, -30],
                [xd + 6, 0.15 * cav_y, self.spleen_c[2] - 0.8 * self.spleen_semi[2]],
                [xd, -0.1 * cav_y, -40],
                [xd + 2, -0.05 * cav_y, -150],
            ]
        )
        cr = uniform(0.8, 1.1)
        self.colon = Tube(colon, np.array([24, 23, 22, 21, 20, 20, 18, 17, 16]) * cr)
        self.colon_gas = uniform(0.35, 0.7) * cav_y
        y0 = float(self.y_vertebra(np.array(-60.0))) + self.vertebra_semi_y + 15.0
        lo = np.array([-0.6 * cav_x, y0, -160.0])
        hi = np.array([0.6 * cav_x, max(0.85 * cav_y, y0 + 30.0), confluence[2] - 40])
        self.bowel = [Tube(duo, np.full(len(duo), 12.0))]
        for _ in range(rng.integers(3, 5)):
            path = random_path(rng, rng.uniform(lo, hi), lo, hi, 24, 16.0)
            self.bowel.append(Tube(path, np.full(len(path), uniform(10.0, 13.0))))
        self.bowel_fill = Tissue.CONTRAST if self.contrast else Tissue.FLUID
        self.bowel_gas = uniform(0.75, 0.95) * cav_y

    def _paint_heart(self, blk: Block) -> tuple[np.ndarray, None]:
        x, y, z = blk.p
        c, semi = self.heart
        t = np.zeros(blk.shape, np.uint8)
        above = z > self.diaphragm(x, y)
        for shrink, tissue in ((0.0, Tissue.SUBQ_FAT), (4.0, Tissue.MYOCARDIUM), (14.0, Tissue.ARTERY)):
            t[above & (ellipsoid_q(blk.p, c, semi - shrink) < 1)] = tissue
        return t, None

    def _paint_gallbladder(self, blk: Block) -> tuple[np.ndarray, None]:
        c, rot, semi = self.gallbladder
        lu, lv, lw = to_local(blk.p, c, rot)
        t = np.zeros(blk.shape, np.uint8)
        for shrink, tissue in ((0.0, Tissue.BOWEL_WALL), (2.0, Tissue.BILE)):
            t[
                (lu / (semi[0] - shrink)) ** 2
                + (lv / (semi[1] - shrink)) ** 2
                + (lw / (semi[2] - shrink)) ** 2
                < 1
            ] = tissue
        return t, None

    def _lumen_painter(
        self, tube: Tube, wall: float, gas_y: float, fill: Tissue, haustra: bool = False
    ) -> Painter:
        def paint(blk: Block) -> tuple[np.ndarray, None]:
            s, arc = tube.sdf(blk)
            if haustra:
                s = s - 2.5 * np.cos(2 * np.pi * arc / 28.0)
            t = np.where(s < 0, Tissue.BOWEL_WALL, 0).astype(np.uint8)
            lumen = s < -wall
            t[lumen] = fill
            t[lumen & (blk.p[1] > gas_y)] = Tissue.GAS
            return t, None

        return paint

    def _solid_painter(self, tube: Tube, tissue: Tissue) -> Painter:
        def paint(blk: Block) -> tuple[np.ndarray, None]:
            return np.where(tube.sdf(blk)[0] < 0, tissue, 0).astype(np.uint8), None

        return paint
