"""The four labelled organs: kidneys, spleen and liver (with its intrahepatic vessels)."""

from __future__ import annotations

import numpy as np

from .shapes import Block, Painter, ellipsoid_q, frame, to_local, unit
from .tissues import LABELS, Tissue


class Organs:
    """Mixin of :class:`ct_phantom.patient.Patient`: shape parameters and painters of the labelled organs."""

    def _draw_kidneys(self, rng: np.random.Generator) -> None:
        uniform = rng.uniform
        z_left = 2.0 * self.scale + uniform(-10.0, 8.0)
        self.kidneys = {}
        for name, side, zc in (
            ("kidney_left", -1.0, z_left),
            ("kidney_right", 1.0, z_left - uniform(8.0, 22.0)),
        ):
            s = self.scale * uniform(1.0, 1.12)
            alpha, beta, gamma = np.radians([uniform(8, 20), uniform(10, 25), uniform(25, 45)])
            w = np.array([-side * np.tan(alpha), -np.tan(beta), 1.0])
            rot = frame(w, np.array([-side * np.cos(gamma), np.sin(gamma), 0.0]))
            c = np.array(
                [
                    side * (self.vertebra_semi_x + 20.0 + 25.0 * s + uniform(-4.0, 6.0)),
                    float(self.y_vertebra(zc)) - 18.0 + uniform(-5, 5),
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
                "phase": uniform(0, 2 * np.pi),
                "side": side,
            }

    def _draw_spleen(self, rng: np.random.Generator) -> None:
        uniform = rng.uniform
        s = self.scale * uniform(0.8, 1.2)
        self.spleen_semi = np.array([25.0, 45.0, 58.0]) * s
        zc = self.z_dome_l - 30.0 * self.scale + uniform(-8, 8)
        a, _, bp = self.semi(np.array(zc), self.inset("cavity"))
        beta = np.radians(uniform(25.0, 45.0))
        wall = np.array([-a * np.cos(beta), -bp * np.sin(beta), zc])
        n_out = unit([wall[0] / a**2, wall[1] / bp**2, 0.0])
        self.spleen_c = wall - n_out * (self.spleen_semi[0] + 3.0)
        self.spleen_rot = frame(np.array([0.0, -0.5, 1.0]), -n_out)
        self.spleen_bulge = rng.normal(0.0, 1.0, 3)

    def _draw_liver(self, rng: np.random.Generator) -> None:
        uniform = rng.uniform
        s = self.scale * uniform(0.9, 1.1)
        self.liver_h = 175.0 * s
        self.z_liver_tip = self.z_dome_r - self.liver_h
        self.liver_r = np.array(
            [uniform(0.9, 1.05) * self.cavity_semi_x, uniform(0.95, 1.1) * self.cavity_semi_y]
        )
        self.liver_x0 = uniform(0.25, 0.4) * self.cavity_semi_x
        self.liver_taper = uniform(1.8, 2.6)
        self.left_lobe = (
            np.array([-0.1 * self.cavity_semi_x, 0.45 * self.cavity_semi_y, self.z_dome_r - 45.0 * s]),
            np.array([uniform(0.45, 0.65) * self.cavity_semi_x, 0.42 * self.cavity_semi_y, 40.0 * s]),
        )

    def _kidney_painter(self, k: dict) -> Painter:
        def paint(blk: Block) -> tuple[np.ndarray, np.ndarray]:
            lu, lv, lw = to_local(self.warp[k["name"]](blk), k["c"], k["rot"])
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
            t = np.where(peri, Tissue.PERIRENAL_FAT, 0).astype(np.uint8)
            t[inside] = Tissue.CORTEX
            t[inside & medulla] = Tissue.MEDULLA
            parenchyma = inside & ~sinus
            t[(inside | peri) & sinus] = Tissue.PERIRENAL_FAT
            t[(inside | peri) & sinus & pelvis] = Tissue.URINE
            return t, np.where(parenchyma, k["label"], 0).astype(np.uint8)

        return paint

    def _paint_spleen(self, blk: Block) -> tuple[np.ndarray, np.ndarray]:
        lu, lv, lw = to_local(self.warp["spleen"](blk), self.spleen_c, self.spleen_rot)
        ru, rv, rw = self.spleen_semi
        b = self.spleen_bulge
        q = ((lu / ru) ** 2 + (lv / rv) ** 2 + (lw / rw) ** 2) * (
            1.0 + 0.07 * b[0] * lw / rw + 0.06 * b[1] * lv * lw / (rv * rw) + 0.05 * b[2] * lv / rv
        )
        hilum = ((lu - 2.2 * ru) / (1.35 * ru)) ** 2 + (lv / (0.8 * rv)) ** 2 + (lw / (0.75 * rw)) ** 2 < 1
        m = (q < 1) & ~hilum
        return np.where(m, Tissue.SPLEEN, 0).astype(np.uint8), np.where(m, LABELS["spleen"], 0).astype(
            np.uint8
        )

    def _paint_liver(self, blk: Block) -> tuple[np.ndarray, np.ndarray]:
        x, y, z = self.warp["liver"](blk)
        cav_x, cav_y = self.cavity_semi_x, self.cavity_semi_y
        tt = (self.z_dome_r + 5.0 - z) / self.liver_h
        g = np.sqrt(np.clip(1.0 - np.clip(tt, 0.0, None) ** self.liver_taper, 1e-6, None))
        cx, cy = self.liver_x0 + 0.25 * cav_x * tt, -0.1 * cav_y + 0.25 * cav_y * tt
        rx = np.where(x > cx, self.liver_r[0], 0.65 * cav_x) * g
        inside = (tt < 1) & (((x - cx) / rx) ** 2 + ((y - cy) / (self.liver_r[1] * g)) ** 2 < 1)
        c, s = self.left_lobe
        thin = 1.0 - 0.5 * np.clip((c[0] - x) / s[0], 0.0, 1.0)
        inside |= ((x - c[0]) / s[0]) ** 2 + ((y - c[1]) / (s[1] * thin)) ** 2 + (
            (z - c[2]) / (s[2] * thin)
        ) ** 2 < 1
        ivc = self.ivc.pts[3]
        inside |= (
            ellipsoid_q((x, y, z), (ivc[0] - 14.0, ivc[1] - 8.0, self.z_dome_r - 60.0), (20.0, 18.0, 35.0))
            < 1
        )
        t = np.where(inside, Tissue.LIVER, 0).astype(np.uint8)
        sel = np.nonzero(inside)
        if sel[0].size:
            p = tuple(v[sel] for v in blk.full())
            sub = Block(p, np.array([v.min() for v in p]), np.array([v.max() for v in p]), p[0].shape)
            ts = t[sel]
            for tube, tissue in self.liver_vessels:
                ts[tube.sdf(sub)[0] < 0] = tissue
            t[sel] = ts
        return t, np.where(inside, LABELS["liver"], 0).astype(np.uint8)
