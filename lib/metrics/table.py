"""Per-case, per-label evaluation of integer label maps, with per-label means and an overall summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from lib.metrics.confusion import accuracy, f1_score, precision, recall, specificity
from lib.metrics.dice import dice_from_counts
from lib.metrics.iou import iou_from_counts
from lib.metrics.surface_distance import surface_distance_metrics
from lib.metrics.utils import ConfusionCounts, same_shape

METRICS = ("dice", "iou", "precision", "recall", "f1", "accuracy", "specificity", "assd", "hd", "hd95")
_COUNT_METRICS = {
    "dice": dice_from_counts,
    "iou": iou_from_counts,
    "precision": precision,
    "recall": recall,
    "f1": f1_score,
    "accuracy": accuracy,
    "specificity": specificity,
}


def label_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    labels: Mapping[str, int],
    spacing: Sequence[float] | None = None,
) -> dict[str, dict[str, float]]:
    """All :data:`METRICS` of one case, per label: ``{label name: {metric: value}}``.

    ``pred`` and ``truth`` are same-shaped integer label maps (2-D or 3-D; a binary mask is the label
    map of ``{"foreground": 1}``); each label is scored as the binary mask ``map == value``, and values
    not in ``labels`` count as background. ``spacing`` is the voxel size in mm per axis (default 1.0).
    Edge cases follow the metric modules: both masks empty -> overlap metrics 1.0 and distances 0.0;
    exactly one empty -> Dice/IoU/F1 0.0 and distances ``inf``; undefined ratios are NaN.
    Raises ``ValueError`` on a shape mismatch or a bad spacing.
    """
    pred, truth = same_shape(pred, truth)
    result = {}
    for name, value in labels.items():
        p, t = pred == value, truth == value
        counts = ConfusionCounts.from_masks(p, t)
        row = {metric: fn(counts) for metric, fn in _COUNT_METRICS.items()}
        row.update(surface_distance_metrics(p, t, spacing))
        result[name] = row
    return result


def _finite_mean(values: list[float]) -> float:
    """Mean of the finite values; NaN when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


class SegmentationMetrics:
    """Accumulate :func:`label_metrics` over cases and aggregate them.

    Means skip non-finite values (``inf`` distances when exactly one mask is empty, NaN undefined
    ratios); :meth:`per_label` reports how many values each mean excluded.

    Example::

        metrics = SegmentationMetrics({"liver": 1, "tumour": 2})
        metrics.add("case1", pred, truth, spacing=(0.8, 0.8, 2.5))
        metrics.summary()  # {"n_cases": 1, "mean_dice": ..., "mean_iou": ...}
    """

    def __init__(self, labels: Mapping[str, int]) -> None:
        if not labels:
            raise ValueError("at least one label is required")
        self.labels = dict(labels)
        self.cases: dict[str, dict[str, dict[str, float]]] = {}

    def add(
        self, case: str, pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None
    ) -> dict[str, dict[str, float]]:
        """Score one case (see :func:`label_metrics`), store it under ``case`` and return it.

        Raises ``ValueError`` if ``case`` was already added.
        """
        if case in self.cases:
            raise ValueError(f"case {case!r} was already added")
        self.cases[case] = label_metrics(pred, truth, self.labels, spacing)
        return self.cases[case]

    def per_label(self) -> dict[str, dict]:
        """``{label: {"n_cases": N, "mean": {metric: mean}, "excluded": {metric: count}}}``.

        ``excluded`` counts, per metric, the cases whose value was non-finite and left out of the mean
        (for the distances: cases where exactly one of pred/truth is empty). A mean is NaN when every
        value was excluded.
        """
        result = {}
        for name in self.labels:
            columns = {m: [case[name][m] for case in self.cases.values()] for m in METRICS}
            result[name] = {
                "n_cases": len(self.cases),
                "mean": {m: _finite_mean(v) for m, v in columns.items()},
                "excluded": {m: sum(not math.isfinite(x) for x in v) for m, v in columns.items()},
            }
        return result

    def summary(self) -> dict[str, float | int]:
        """Case count and the mean over labels of the per-label mean Dice and IoU (NaN with no cases)."""
        per_label = self.per_label()
        return {
            "n_cases": len(self.cases),
            "mean_dice": _finite_mean([p["mean"]["dice"] for p in per_label.values()]),
            "mean_iou": _finite_mean([p["mean"]["iou"] for p in per_label.values()]),
        }

    def table(self) -> list[dict[str, str | float]]:
        """Flat rows ``{"case", "label", *METRICS}``: one per case and label, then per label a
        ``case="mean"`` row and a ``case="excluded"`` row (counts of values left out of the mean)."""
        rows: list[dict[str, str | float]] = [
            {"case": case, "label": name, **values}
            for case, per_case in self.cases.items()
            for name, values in per_case.items()
        ]
        for name, agg in self.per_label().items():
            rows.append({"case": "mean", "label": name, **agg["mean"]})
            rows.append({"case": "excluded", "label": name, **agg["excluded"]})
        return rows

    def to_dict(self) -> dict:
        """Everything, JSON-ready apart from non-finite floats:
        ``{"labels", "cases": {case: {label: {metric: value}}}, "per_label", "summary"}``."""
        return {
            "labels": self.labels,
            "cases": self.cases,
            "per_label": self.per_label(),
            "summary": self.summary(),
        }


def json_safe(obj: object) -> object:
    """Replace non-finite floats by the strings "inf", "-inf", "nan" so the output is strict JSON."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj
