"""Confusion-matrix metrics: precision, recall, F1, accuracy, specificity.

Each is a ratio of TP/FP/FN/TN counts. When both masks are empty every metric is 1.0. A ratio
whose denominator is zero otherwise is undefined and returned as NaN (never a silent 0):
precision of an empty prediction, recall against an empty truth, specificity when the truth
covers the whole image.
"""

from __future__ import annotations

import numpy as np

from lib.metrics.dice import dice_from_counts
from lib.metrics.utils import ConfusionCounts

CONFUSION_METRICS = ("precision", "recall", "f1", "accuracy", "specificity")


def precision(counts: ConfusionCounts) -> float:
    """TP / (TP + FP); NaN when the prediction is empty and the truth is not."""
    return counts.ratio(counts.tp, counts.tp + counts.fp)


def recall(counts: ConfusionCounts) -> float:
    """TP / (TP + FN) (sensitivity); NaN when the truth is empty and the prediction is not."""
    return counts.ratio(counts.tp, counts.tp + counts.fn)


def f1_score(counts: ConfusionCounts) -> float:
    """Harmonic mean of precision and recall, identical to Dice; 0.0 when exactly one mask is empty."""
    return dice_from_counts(counts)


def accuracy(counts: ConfusionCounts) -> float:
    """(TP + TN) / all voxels."""
    return counts.ratio(counts.tp + counts.tn, counts.tp + counts.fp + counts.fn + counts.tn)


def specificity(counts: ConfusionCounts) -> float:
    """TN / (TN + FP); NaN when the truth covers every voxel."""
    return counts.ratio(counts.tn, counts.tn + counts.fp)


def confusion_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """All of :data:`CONFUSION_METRICS` for two same-shaped binary masks (non-zero = foreground)."""
    counts = ConfusionCounts.from_masks(pred, truth)
    return {
        "precision": precision(counts),
        "recall": recall(counts),
        "f1": f1_score(counts),
        "accuracy": accuracy(counts),
        "specificity": specificity(counts),
    }
