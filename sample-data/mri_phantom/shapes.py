"""Geometry helpers of the head phantom: rotations, ellipsoid distances, smooth unions, random fields."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

Semi = float | np.ndarray  # a semi-axis, possibly varying point by point


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation (degrees) about z, then x, then y of the head frame."""
    a, b, c = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry


def ell_sdf(dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, sx: Semi, sy: Semi, sz: Semi) -> np.ndarray:
    """Radial signed distance (mm, < 0 inside) to an ellipsoid with semi-axes ``s*`` centred at 0.

    Exact for spheres; for the mild ellipsoids here a close stand-in for the true distance.
    """
    r = np.sqrt(dx * dx + dy * dy + dz * dz)
    root = np.sqrt((dx / sx) ** 2 + (dy / sy) ** 2 + (dz / sz) ** 2)
    surface = np.divide(r, root, out=np.zeros_like(r), where=root > 1e-9)  # (the centre: r = 0, d = 0)
    return r - surface


def ell_q(dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, semi: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """Normalised squared radius of an axis-aligned ellipsoid (< 1 inside)."""
    return (dx / semi[0]) ** 2 + (dy / semi[1]) ** 2 + (dz / semi[2]) ** 2


def smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth minimum (union of two distance fields with a fillet of about ``k`` mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


class Lattice:
    """Random field channels on a cubic head-frame lattice, sampled by linear interpolation."""

    def __init__(self, grid: np.ndarray, centre: np.ndarray, half: float) -> None:
        self.grid = grid.astype(np.float32)
        self.origin = np.asarray(centre, dtype=np.float64) - half
        self.step = 2.0 * half / (grid.shape[-1] - 1)

    def __call__(self, p: tuple[np.ndarray, ...], channel: int = 0) -> np.ndarray:
        idx = np.stack([(p[i].ravel() - self.origin[i]) / self.step for i in range(3)])
        return ndimage.map_coordinates(self.grid[channel], idx, order=1, mode="nearest").reshape(p[0].shape)


def band_field(
    rng: np.random.Generator, centre: np.ndarray, half: float, step: float, wavelength: float
) -> Lattice:
    """Band-pass (difference of Gaussians) unit-variance random field and its gradient (per mm)."""
    n = int(round(2 * half / step)) + 1
    white = rng.standard_normal((n, n, n))
    s = wavelength / (2 * np.pi * step)
    f = ndimage.gaussian_filter(white, s) - ndimage.gaussian_filter(white, 2.5 * s)
    f /= f.std()
    return Lattice(np.stack([f, *np.gradient(f, step)]), centre, half)
