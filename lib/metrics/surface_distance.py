"""Surface distances between binary masks, in millimetres: ASSD, Hausdorff (HD) and HD95.

The surface of a mask is the set of its voxels with at least one face-neighbour (6-connectivity
in 3-D, 4 in 2-D) outside the mask or outside the image, i.e. ``mask XOR erosion(mask)`` with
scipy's default cross-shaped structure. This is exactly MONAI's ``get_mask_edges`` (without
sub-voxel edges), so the results equal ``monai.metrics.compute_hausdorff_distance`` /
``compute_average_surface_distance`` with ``spacing=...``. Distances are measured from every
surface voxel of one mask to the nearest surface voxel of the other (Euclidean, voxel centres,
scaled by the spacing), so a hole inside a mask contributes its own boundary.

Conventions (documented results, never a crash):

* ASSD: mean of the pooled distances of both directions (pred->truth and truth->pred).
* HD: maximum of the pooled distances.
* HD95: MONAI's convention: the 95th percentile (linear interpolation) of each direction
  separately, then the maximum of the two.
* Both masks empty: all three are 0.0 (the surfaces agree). MONAI returns NaN here.
* Exactly one mask empty: all three are ``inf`` (no surface to measure to). Aggregators
  exclude ``inf`` from means and report the count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from lib.metrics.utils import binary_masks

SURFACE_METRICS = ("assd", "hd", "hd95")
Directions = tuple[np.ndarray, np.ndarray]  # (pred -> truth, truth -> pred) distances in mm


def surface(mask: np.ndarray) -> np.ndarray:
    """Boolean surface (boundary voxels) of a mask of any dimensionality (non-zero = inside); same shape."""
    mask = np.asarray(mask) != 0
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def _crop_to_union(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop both masks to the bounding box of their (non-empty) union.

    Exact for the surface distances: every mask voxel on the box face has its outward face-neighbour
    outside both masks, so it is a surface voxel with or without the crop, and every surface voxel
    lies inside the box.
    """
    box = ndimage.find_objects((pred | truth).view(np.uint8))[0]
    return pred[box], truth[box]


def _spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    """Validate ``spacing`` (one positive value per axis, default 1.0)."""
    if spacing is None:
        return (1.0,) * ndim
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim or not all(s > 0 for s in values):
        raise ValueError(f"spacing must hold {ndim} positive values, got {tuple(spacing)}")
    return values


def surface_distances(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None
) -> Directions:
    """Distances (mm) from each pred surface voxel to the truth surface, and from each truth surface voxel
    to the pred surface.

    ``pred`` and ``truth`` are same-shaped binary masks (non-zero = foreground); ``spacing`` is the voxel
    size per axis (default 1.0). Returns two 1-D float arrays whose lengths are the surface voxel counts;
    when the other mask is empty, every distance of that direction is ``inf``.
    """
    p, t = binary_masks(pred, truth)
    sampling = _spacing(spacing, p.ndim)
    if not (p.any() or t.any()):
        return np.zeros(0), np.zeros(0)
    p, t = _crop_to_union(p, t)
    surface_p, surface_t = surface(p), surface(t)

    def directed(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        if not target.any():
            return np.full(np.count_nonzero(source), math.inf)
        return ndimage.distance_transform_edt(~target, sampling=sampling)[source]

    return directed(surface_p, surface_t), directed(surface_t, surface_p)


def _reduce(directions: Directions, statistic: Callable[[Directions], float]) -> float:
    """Apply ``statistic`` to the two distance arrays, handling empty masks (0.0 both, ``inf`` one)."""
    sizes = [d.size for d in directions]
    if not any(sizes):
        return 0.0
    if not all(sizes):
        return math.inf
    return float(statistic(directions))


def _mean(directions: Directions) -> float:
    return float(np.concatenate(directions).mean())


def _percentile(percentile: float) -> Callable[[Directions], float]:
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    return lambda directions: max(float(np.percentile(d, percentile)) for d in directions)


def assd(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """Average symmetric surface distance (mm): mean of both directions' distances, pooled.

    Both empty -> 0.0; exactly one empty -> ``inf``.
    """
    return _reduce(surface_distances(pred, truth, spacing), _mean)


def hausdorff_distance(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None, percentile: float = 100
) -> float:
    """Symmetric Hausdorff distance (mm): max over both directions of the per-direction ``percentile``.

    ``percentile=100`` is HD, ``95`` is HD95 (MONAI's convention). Both empty -> 0.0; one empty -> ``inf``.
    """
    return _reduce(surface_distances(pred, truth, spacing), _percentile(percentile))


def surface_distance_metrics(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None
) -> dict[str, float]:
    """ASSD, HD and HD95 (mm) of two same-shaped binary masks, sharing one distance computation.

    Keys :data:`SURFACE_METRICS`. Both empty -> all 0.0; exactly one empty -> all ``inf``.
    """
    directions = surface_distances(pred, truth, spacing)
    return {
        "assd": _reduce(directions, _mean),
        "hd": _reduce(directions, _percentile(100)),
        "hd95": _reduce(directions, _percentile(95)),
    }
