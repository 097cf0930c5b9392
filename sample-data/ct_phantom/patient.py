"""One synthetic patient drawn from a seed, and the structures to paint in order."""

from __future__ import annotations

import numpy as np

from .body import Body
from .organs import Organs
from .shapes import FAT_ONLY, FAT_OR_PERIRENAL, OVERWRITE, SmoothWarp, Structure
from .tissues import Tissue
from .vessels import Vessels
from .viscera import Viscera


class Patient(Body, Organs, Vessels, Viscera):
    """One synthetic patient drawn from ``rng``: parameters plus the ordered structures to paint.

    The draws happen in a fixed order (body, kidneys, spleen, liver, vessels, viscera, ribs, warps,
    z range), so a seed always gives the same patient; each region's mixin reads what earlier ones set.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        uniform = rng.uniform
        scale = self.scale = uniform(0.88, 1.03)
        # body outline (skin) and wall layers: lateral, anterior, posterior thicknesses in mm
        self.half_width, self.half_depth = uniform(138.0, 165.0), uniform(92.0, 115.0)
        fat = uniform(4.0, 14.0) + 0.3 * (self.half_width - 138.0)
        self.fat = np.array([fat * uniform(0.8, 1.1), fat * uniform(0.8, 1.3), fat * uniform(0.45, 0.75)])
        self.wall = np.array([uniform(8.0, 12.0), uniform(7.0, 10.0), uniform(8.0, 12.0)])
        self.phase = uniform(0.0, 2 * np.pi, 2)
        # vertical landmarks; z = 0 at the L1/L2 disc
        self.z_dome_r = 112.0 * scale + uniform(-8.0, 8.0)
        self.z_dome_l = self.z_dome_r - uniform(8.0, 22.0)
        self.y_vertebra_at_0 = -0.92 * self.half_depth + 2.0 + self.fat[2] + 88.0 * scale
        self.vertebra_semi_x, self.vertebra_semi_y = (
            23.0 * scale,
            16.0 * scale,
        )  # lumbar vertebral body semi-axes
        self._vertebral_levels()
        cav = self.semi(np.array(20.0), self.inset("cavity"))
        self.cavity_semi_x, self.cavity_semi_y = float(cav[0]), float(cav[1])
        self._draw_kidneys(rng)
        self._draw_spleen(rng)
        self._draw_liver(rng)
        self._draw_vessels(rng)
        self._draw_viscera(rng)
        self.ribs = [
            (
                side,
                float(np.mean(self.vertebrae[f"T{n}"])),
                drop * uniform(0.9, 1.1),
                np.pi * end,
                np.pi * cart,
            )
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
        self.warp = {
            k: SmoothWarp(rng, uniform(2.0, 4.0)) for k in ("liver", "spleen", "kidney_left", "kidney_right")
        }
        kid_bottom = min(k["c"][2] - k["semi"][2] * k["rot"][2, 2] for k in self.kidneys.values())
        self.z_lo = kid_bottom - uniform(8.0, 18.0)
        self.z_hi = self.z_dome_r + uniform(2.0, 10.0)
        bottoms = [self.z_liver_tip, self.spleen_c[2] - 0.8 * self.spleen_semi[2]]
        tops = [self.z_dome_r, self.spleen_c[2] + 0.8 * self.spleen_semi[2]]
        for k in self.kidneys.values():
            bottoms.append(k["c"][2] - 0.7 * k["semi"][2])
            tops.append(k["c"][2] + 0.7 * k["semi"][2])
        self.z_overlap = (max(bottoms), min(tops))

    def structures(self) -> list[Structure]:
        """All structures in painting order (later ones win; ``fill`` ones only replace Tissue.FAT)."""
        big = 1e4
        a, ba, bp = self.extent(-400.0, 400.0)
        body_lo, body_hi = np.array([-a, -bp, -big]), np.array([a, ba, big])
        pad = 20.0  # deformation margin
        out = [
            Structure("body", body_lo, body_hi, self._paint_body_wall, OVERWRITE),
            Structure(
                "lungs", np.array([-a, -bp, self.z_dome_l - 140.0]), body_hi, self._paint_lungs, OVERWRITE
            ),
            Structure(
                "heart",
                self.heart[0] - self.heart[1],
                self.heart[0] + self.heart[1],
                self._paint_heart,
                OVERWRITE,
            ),
            Structure(
                "muscles",
                np.array([-self.vertebra_semi_x - 80.0, -bp, -big]),
                np.array([self.vertebra_semi_x + 80.0, ba, big]),
                self._paint_muscles,
                OVERWRITE,
            ),
        ]
        for tube, tissue in self.tubes:
            out.append(Structure("vessel", *tube.bounds(3.0), self._vessel_painter(tube, tissue), OVERWRITE))
        z_spine = (self.vert_edges[0] - 20.0, self.vert_edges[-1] + 20.0)
        y_spine = self.y_vertebra(np.array(z_spine))
        out += [
            Structure(
                "spine",
                np.array([-80.0, y_spine.min() - 100.0, z_spine[0]]),
                np.array([80.0, y_spine.max() + 25.0, z_spine[1]]),
                self._paint_spine,
                OVERWRITE,
            ),
            Structure(
                "ribs",
                np.array([-a, -bp, -60.0]),
                np.array([a, ba, self.vertebrae["T7"][1] + 20.0]),
                self._paint_ribs,
                OVERWRITE,
            ),
        ]
        for name, k in self.kidneys.items():
            r = np.sqrt(((k["rot"] * (k["semi"] + 14.0)) ** 2).sum(axis=1)) + pad
            out.append(Structure(name, k["c"] - r, k["c"] + r, self._kidney_painter(k), FAT_ONLY))
        r = np.sqrt(((self.spleen_rot * self.spleen_semi) ** 2).sum(axis=1)) + pad
        out.append(
            Structure("spleen", self.spleen_c - r, self.spleen_c + r, self._paint_spleen, FAT_OR_PERIRENAL)
        )
        if self.gallbladder is not None:
            r = self.gallbladder[2].max()
            out.append(
                Structure(
                    "gallbladder",
                    self.gallbladder[0] - r,
                    self.gallbladder[0] + r,
                    self._paint_gallbladder,
                    FAT_ONLY,
                )
            )
        out += [
            Structure(
                "liver",
                np.array([-0.85 * self.cavity_semi_x, -self.cavity_semi_y, self.z_liver_tip - pad]),
                np.array([self.cavity_semi_x, self.cavity_semi_y, self.z_dome_r + pad]),
                self._paint_liver,
                FAT_OR_PERIRENAL,
            ),
            Structure(
                "pancreas",
                *self.pancreas.bounds(),
                self._solid_painter(self.pancreas, Tissue.PANCREAS),
                FAT_ONLY,
            ),
            Structure(
                "stomach",
                *self.stomach.bounds(),
                self._lumen_painter(self.stomach, 4.0, self.stomach_gas, self.stomach_fill),
                FAT_ONLY,
            ),
            Structure(
                "colon",
                *self.colon.bounds(3.0),
                self._lumen_painter(self.colon, 2.5, self.colon_gas, Tissue.STOOL, haustra=True),
                FAT_ONLY,
            ),
        ]
        for tube in self.bowel:
            out.append(
                Structure(
                    "bowel",
                    *tube.bounds(),
                    self._lumen_painter(tube, 2.0, self.bowel_gas, self.bowel_fill),
                    FAT_ONLY,
                )
            )
        return out
