"""Shared helpers for the segmentation metrics: mask validation and confusion counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def same_shape(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return both as arrays; raise ``ValueError`` when their shapes differ (no broadcasting)."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"pred and truth shapes differ: {pred.shape} vs {truth.shape}")
    return pred, truth


def binary_masks(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two same-shaped masks as boolean arrays (non-zero = foreground); ``ValueError`` on a shape mismatch."""
    pred, truth = same_shape(pred, truth)
    return pred != 0, truth != 0


@dataclass(frozen=True)
class ConfusionCounts:
    """Voxel counts of a binary prediction against a binary truth."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def from_masks(cls, pred: np.ndarray, truth: np.ndarray) -> ConfusionCounts:
        """Count TP/FP/FN/TN of two same-shaped masks (any dimensionality, non-zero = foreground)."""
        p, t = binary_masks(pred, truth)
        tp = int(np.count_nonzero(p & t))
        fp = int(np.count_nonzero(p)) - tp
        fn = int(np.count_nonzero(t)) - tp
        return cls(tp=tp, fp=fp, fn=fn, tn=p.size - tp - fp - fn)

    @property
    def both_empty(self) -> bool:
        """True when neither the prediction nor the truth has a foreground voxel."""
        return self.tp + self.fp + self.fn == 0

    def ratio(self, numerator: int, denominator: int) -> float:
        """``numerator / denominator``; 0/0 is 1.0 when both masks are empty (perfect agreement), else NaN.

        NaN marks a metric that is undefined for this case (e.g. precision of an empty prediction
        against a non-empty truth); aggregators exclude it and count the exclusion.
        """
        if denominator:
            return numerator / denominator
        return 1.0 if self.both_empty else math.nan
