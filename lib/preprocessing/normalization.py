"""Intensity normalisation schemes by name: the table a plan's ``intensity["scheme"]`` selects from.

Like nnU-Net's channel-name -> normalisation table, each scheme is a small factory taking the plan's
parameters; the planner (:mod:`lib.planning.planner`) picks a scheme by modality and fills in the
dataset statistics it needs.

>>> import numpy as np
>>> t = normalization({"scheme": "ct_dataset", "clip": [-100.0, 300.0], "mean": 100.0, "std": 50.0})
>>> t({"image": np.array([[-500.0, 100.0, 150.0, 900.0]])})["image"].tolist()
[[-4.0, 0.0, 1.0, 4.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monai.transforms import Compose, MapTransform, ScaleIntensityRanged

from lib.preprocessing.ct_window import CTWindowd
from lib.preprocessing.intensity import PercentileNormalized
from lib.preprocessing.mri import MRINormalized
from lib.preprocessing.xray import CLAHEd, HistogramEqualized


def _ct_window(params: dict[str, Any], key: str) -> MapTransform:
    """A named CT window (``window``, see ``CT_WINDOWS``) scaled to [0, 1]."""
    return CTWindowd(keys=key, preset=params.get("window", "abdomen"))


def _ct_dataset(params: dict[str, Any], key: str) -> MapTransform:
    """nnU-Net's CT scheme: clip to the dataset's foreground 0.5/99.5 percentiles (``clip``), then
    z-score with the dataset's foreground ``mean``/``std``: one linear map with clipping."""
    low, high = (float(v) for v in params["clip"])
    mean, std = float(params["mean"]), max(float(params["std"]), 1e-8)
    return ScaleIntensityRanged(
        keys=key, a_min=low, a_max=high, b_min=(low - mean) / std, b_max=(high - mean) / std, clip=True
    )


def _mr_zscore(params: dict[str, Any], key: str) -> MapTransform:
    """Per-image z-score inside the head/body (Otsu foreground), N4 bias correction first if ``n4``."""
    return MRINormalized(keys=key, n4=bool(params.get("n4", False)))


def _xr_clahe(params: dict[str, Any], key: str) -> Compose:
    """Percentiles 0.5/99.5 (so burned-in markers and collimator edges do not set the range), then CLAHE."""
    return Compose([PercentileNormalized(keys=key), CLAHEd(keys=key)])


def _xr_histeq(params: dict[str, Any], key: str) -> Compose:
    """Percentiles 0.5/99.5, then global histogram equalisation."""
    return Compose([PercentileNormalized(keys=key), HistogramEqualized(keys=key)])


NORMALIZATION: dict[str, Callable[[dict[str, Any], str], MapTransform | Compose]] = {
    "ct_window": _ct_window,
    "ct_dataset": _ct_dataset,
    "mr_zscore": _mr_zscore,
    "xr_clahe": _xr_clahe,
    "xr_histeq": _xr_histeq,
}


def normalization(intensity: dict[str, Any], key: str = "image") -> MapTransform | Compose:
    """The transform for a plan's ``intensity`` (``{"scheme": name, **params}``) on ``key``."""
    scheme = intensity.get("scheme")
    if scheme not in NORMALIZATION:
        raise ValueError(f"unknown intensity scheme {scheme!r}; valid: {', '.join(NORMALIZATION)}")
    return NORMALIZATION[scheme](intensity, key)
