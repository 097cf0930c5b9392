"""Plan a model from a dataset fingerprint (nnU-Net v2's rules, sized for a CPU).

Rules, in order (nnU-Net's ``ExperimentPlanner`` unless said otherwise):

* **Dimensionality**: 2-D when every image is 2-D (radiographs), else 3-D.
* **Target spacing**: the median spacing per axis. If the coarsest axis is more than
  ``ANISOTROPY_THRESHOLD`` times coarser than the finest other axis *and* has fewer than a third of
  the voxels of the smallest other axis, it takes the 10th percentile of that axis's spacings
  instead (but never finer than the other axes).
* **Patch size**: start from a cube of ``INITIAL_PATCH_VOXELS`` shaped by the inverse spacing (the
  same physical extent per axis), clip to the median shape at the target spacing, then shrink the
  axis that is largest relative to the median shape until the patch fits the CPU budget
  (``budget.max_patch_voxels``, our replacement for nnU-Net's GPU-memory estimate). Every axis is a
  multiple of its pooling divisor.
* **Topology**: a first stage at full resolution (stride 1, as nnU-Net's first stage: thin
  structures two voxels wide are lost by a network whose first layer already downsamples), then an
  axis is pooled (stride 2) at a level while its current spacing is less than twice the finest
  current spacing and its size stays >= ``2 * MIN_FEATURE_MAP``; at most ``budget.max_pools``
  poolings. Features start at ``budget.base_features`` and double per level up to
  ``budget.max_features`` (nnU-Net: 32 -> 320 on a GPU; 8 -> 256 here).
* **Normalisation** by modality (see :mod:`lib.preprocessing.normalization`): CT ``ct_dataset``
  (foreground 0.5/99.5 percentiles, mean, std of the dataset); MR ``mr_zscore`` (per image, N4 when
  the definition asks); XR ``xr_clahe``.
* **2-D** images are resized to a working size: the median shape scaled so its longer side is
  ``budget.max_side_2d`` (each side a multiple of the pooling divisor).
* **Mirroring** (ours; nnU-Net mirrors along every axis and never names sides): left-right only, and
  only where the labelled anatomy is left-right symmetric, measured on the labels (each label's
  mirror image lands on itself or on one counterpart, which a mirror then swaps;
  :func:`lib.planning.laterality.symmetric_classes`). 2-D images carry no orientation: never mirrored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.planning.fingerprint import Fingerprint, infer_modality
from lib.planning.laterality import symmetric_classes
from lib.planning.presets import ModelPreset

ANISOTROPY_THRESHOLD = 3.0
INITIAL_PATCH_VOXELS = 256**3
MIN_FEATURE_MAP = 4


@dataclass(frozen=True)
class PlanBudget:
    """CPU limits the plan must respect: at most 48^3 patch voxels, four poolings, 8 -> 256 features.

    The patch budget is measured, not derived: in a time budget on a 2-core CPU a 48^3 patch (three
    poolings, 8 -> 128) trains about 2.6 times as many steps as 64^3 and scored higher on unseen real CTs,
    40^3 and 56^3 lower (``docs/benchmarks.md``, ``bench/own_task.py``)."""

    max_patch_voxels: int = 48**3
    max_pools: int = 4
    base_features: int = 8
    max_features: int = 256
    max_side_2d: int = 256


def target_spacing(spacings: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """Median spacing, with nnU-Net's rule for strongly anisotropic data (see module docstring).

    >>> target_spacing(np.array([[1.0, 1.0, 5.0], [1.0, 1.0, 3.0], [1.0, 1.0, 5.0]]),
    ...                np.array([[512, 512, 40]] * 3)).tolist()
    [1.0, 1.0, 3.4]
    """
    target = np.median(spacings, axis=0)
    median_shape = np.median(shapes, axis=0)
    worst = int(np.argmax(target))
    others = [i for i in range(len(target)) if i != worst]
    if not others:
        return target
    aniso_spacing = target[worst] > ANISOTROPY_THRESHOLD * max(target[others])
    aniso_voxels = median_shape[worst] * ANISOTROPY_THRESHOLD < min(median_shape[others])
    if aniso_spacing and aniso_voxels:
        target[worst] = max(np.percentile(spacings[:, worst], 10), max(target[others]) + 1e-5)
    return target


def pooling(spacing: np.ndarray, patch: np.ndarray, max_pools: int) -> list[list[int]]:
    """Per-level strides (1 or 2 per axis) by nnU-Net's rule: pool an axis while its spacing is less
    than twice the finest and its size stays >= ``2 * MIN_FEATURE_MAP``.

    >>> pooling(np.array([0.8, 0.8, 5.0]), np.array([192, 160, 32]), 4)
    [[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]
    """
    current_spacing, current_size = spacing.astype(float).copy(), patch.astype(float).copy()
    levels: list[list[int]] = []
    while len(levels) < max_pools:
        finest = current_spacing.min()
        axes = [
            i
            for i in range(len(spacing))
            if current_spacing[i] / finest < 2 and current_size[i] >= 2 * MIN_FEATURE_MAP
        ]
        if not axes:
            break
        strides = [2 if i in axes else 1 for i in range(len(spacing))]
        current_spacing *= strides
        current_size /= strides
        levels.append(strides)
    return levels


def _divisor(levels: list[list[int]], dims: int) -> np.ndarray:
    return np.prod(np.array(levels, dtype=int), axis=0) if levels else np.ones(dims, int)


def patch_size(spacing: np.ndarray, median_shape: np.ndarray, budget: PlanBudget) -> tuple[np.ndarray, list]:
    """(patch, per-level strides): nnU-Net's initial patch, clipped and shrunk to ``budget``."""
    inverse = 1.0 / spacing
    dims = len(spacing)
    initial = np.round(inverse * (INITIAL_PATCH_VOXELS / np.prod(inverse)) ** (1 / dims))
    patch = np.minimum(initial, np.maximum(median_shape, 1)).astype(int)
    while True:
        levels = pooling(spacing, patch, budget.max_pools)
        divisor = _divisor(levels, dims)
        fitted = np.ceil(patch / divisor).astype(int) * divisor
        if np.prod(fitted) <= budget.max_patch_voxels or np.all(patch <= divisor):
            return fitted, levels
        axis = int(np.argmax(patch / np.maximum(median_shape, 1)))
        patch[axis] = max(int(patch[axis] - divisor[axis]), 1)


def _features(levels: int, budget: PlanBudget) -> tuple[int, ...]:
    return tuple(min(budget.base_features * 2**i, budget.max_features) for i in range(levels + 1))


def normalization_for(modality: str, fp: Fingerprint, n4: bool) -> dict:
    """The intensity scheme (and its dataset statistics) for ``modality``."""
    if modality == "CT":
        stats = fp.foreground
        return {
            "scheme": "ct_dataset",
            "clip": [round(stats["percentile_00_5"], 2), round(stats["percentile_99_5"], 2)],
            "mean": round(stats["mean"], 3),
            "std": round(stats["std"], 3),
        }
    if modality == "MR":
        return {"scheme": "mr_zscore", "n4": n4}
    return {"scheme": "xr_clahe"}


def plan_model(
    name: str,
    labels: dict[str, int],
    fp: Fingerprint,
    modality: str | None = None,
    description: str = "",
    n4: bool = False,
    budget: PlanBudget = PlanBudget(),
) -> ModelPreset:
    """A plan for a user model with ``labels`` from the fingerprint ``fp`` of its labelled images.

    ``modality`` (CT, MR, XR) is inferred from ``fp`` when not given; the fingerprint, the modality's
    source and the rules' inputs are kept in the plan's ``fingerprint`` field.
    """
    found, source = infer_modality(fp)
    modality, source = (modality, "declared") if modality else (found, source)
    summary = {**fp.to_dict(), "modality_source": source, "cases": len(fp.shapes)}
    network = {"arch": "unet", "num_res_units": 2, "dropout": 0.05}
    if fp.spatial_dims == 2:
        median = np.median(np.array(fp.shapes, float), axis=0)
        scaled = median * budget.max_side_2d / median.max()
        levels = pooling(np.ones(2), scaled, budget.max_pools)
        divisor = _divisor(levels, 2)
        working = tuple(int(max(divisor[i], round(scaled[i] / divisor[i]) * divisor[i])) for i in range(2))
        spacing, patch, working_size = (1.0, 1.0), working, working
    else:
        spacings, shapes = np.array(fp.spacings, float), np.array(fp.shapes, float)
        spacing_arr = target_spacing(spacings, shapes)
        median_shape = np.median(shapes * spacings / spacing_arr, axis=0)
        patch_arr, levels = patch_size(spacing_arr, median_shape, budget)
        spacing = tuple(round(float(s), 4) for s in spacing_arr)
        patch, working_size = tuple(int(p) for p in patch_arr), None
        summary["median_shape_at_target"] = [round(float(s), 1) for s in median_shape]
    full_resolution = (1,) * fp.spatial_dims
    network.update(
        {
            "channels": _features(len(levels) + 1, budget),
            "strides": (full_resolution, *(tuple(s) for s in levels)),
        }
    )
    return ModelPreset(
        name=name,
        modality=modality,
        description=description or f"{name}: {', '.join(labels)} ({modality}, planned from the data)",
        labels=dict(labels),
        spatial_dims=fp.spatial_dims,
        spacing=spacing,
        patch_size=patch,
        intensity=normalization_for(modality, fp, n4),
        network=network,
        working_size=working_size,
        fingerprint=summary,
        mirror=symmetric_classes(fp.mirror_overlap, labels) if fp.spatial_dims == 3 else None,
    )
