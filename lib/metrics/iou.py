"""Intersection over union (Jaccard index)."""

from __future__ import annotations

import numpy as np

from lib.metrics.utils import ConfusionCounts


def iou_from_counts(counts: ConfusionCounts) -> float:
    """IoU = TP / (TP + FP + FN): 1.0 when both masks are empty, 0.0 when exactly one is."""
    return counts.ratio(counts.tp, counts.tp + counts.fp + counts.fn)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two same-shaped binary masks (any dimensionality, non-zero = foreground).

    Both empty -> 1.0; exactly one empty -> 0.0. Raises ``ValueError`` on a shape mismatch.
    """
    return iou_from_counts(ConfusionCounts.from_masks(pred, truth))
