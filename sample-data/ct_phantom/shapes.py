"""Geometry of the implicit shapes the phantom is made of, in the patient frame (mm, RAS)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .tissues import Tissue


def unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64) / np.linalg.norm(v)


def frame(w: np.ndarray, u_hint: np.ndarray) -> np.ndarray:
    """Right-handed rotation whose columns are (u, v, w): w given, u closest to ``u_hint``."""
    w = unit(w)
    u = unit(u_hint - np.dot(u_hint, w) * w)
    return np.stack([u, np.cross(w, u), w], axis=1)


def rotation_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def to_local(p: tuple[np.ndarray, ...], centre: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, ...]:
    """Coordinates of points ``p`` in the frame ``rot`` (columns = axes) centred at ``centre``."""
    d = [p[i] - centre[i] for i in range(3)]
    return tuple(rot[0, a] * d[0] + rot[1, a] * d[1] + rot[2, a] * d[2] for a in range(3))


def ellipsoid_q(p: tuple[np.ndarray, ...], centre, semi) -> np.ndarray:
    """Normalised squared radius of an axis-aligned ellipsoid (< 1 inside)."""
    return sum(((p[i] - centre[i]) / semi[i]) ** 2 for i in range(3))


def body_oval_q(x: np.ndarray, y: np.ndarray, a, b_ant, b_post) -> np.ndarray:
    """Body-like cross-section: ellipse anteriorly, flatter (boxier) posteriorly (< 1 inside)."""
    post = y < 0
    xx = (x / a) ** 2
    yy = (y / np.where(post, b_post, b_ant)) ** 2
    return xx + yy - 0.6 * xx * yy * post


@dataclass
class Tube:
    """Tapered tube along a polyline; ``radii`` per vertex (mm)."""

    pts: np.ndarray
    radii: np.ndarray

    def bounds(self, pad: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        r = self.radii.max() + pad
        return self.pts.min(axis=0) - r, self.pts.max(axis=0) + r

    def sdf(self, blk: Block) -> tuple[np.ndarray, np.ndarray]:
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


def box_corners(lo, hi) -> np.ndarray:
    """The 8 corners (rows) of the axis-aligned box [lo, hi]."""
    return np.array(np.meshgrid(*zip(lo, hi, strict=True))).reshape(3, -1).T


def random_path(rng: np.random.Generator, start, lo, hi, n: int, step: float) -> np.ndarray:
    """Smooth random walk confined to the box [lo, hi] (bowel loops)."""
    pts = [np.asarray(start, dtype=np.float64)]
    direction = unit(rng.normal(size=3))
    for _ in range(n):
        direction = unit(direction + 0.7 * rng.normal(size=3))
        nxt = pts[-1] + step * direction
        out = (nxt < lo) | (nxt > hi)
        direction[out] *= -1
        pts.append(np.clip(pts[-1] + step * direction, lo, hi))
    return np.array(pts)


class SmoothWarp:
    """Smooth random displacement field (a few separable low-frequency modes, RMS ``amplitude`` mm)."""

    def __init__(self, rng: np.random.Generator, amplitude: float, modes: int = 4) -> None:
        self.k = 2 * np.pi / rng.uniform(150.0, 350.0, (3, modes, 3))  # component, mode, axis
        self.phi = rng.uniform(0.0, 2 * np.pi, (3, modes, 3))
        w = rng.normal(0.0, 1.0, (3, modes))
        self.w = w * amplitude / (0.354 * np.sqrt((w**2).sum(axis=1, keepdims=True)))

    def __call__(self, blk: Block) -> tuple[np.ndarray, ...]:
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
class Block:
    """Patient-frame coordinates of a box of voxel centres (one sub-sample)."""

    p: tuple[np.ndarray, np.ndarray, np.ndarray]  # broadcastable to ``shape``
    lo: np.ndarray
    hi: np.ndarray
    shape: tuple[int, ...]

    def full(self) -> tuple[np.ndarray, ...]:
        return tuple(np.broadcast_to(v, self.shape) for v in self.p)


Painter = Callable[[Block], tuple[np.ndarray, np.ndarray | None]]
OVERWRITE: tuple[Tissue, ...] = ()
FAT_ONLY = (Tissue.FAT,)
FAT_OR_PERIRENAL = (Tissue.FAT, Tissue.PERIRENAL_FAT)


@dataclass
class Structure:
    name: str
    lo: np.ndarray
    hi: np.ndarray
    fn: Painter
    fill: tuple[Tissue, ...]  # tissues it may replace (organs, viscera); empty = overwrite anything
