"""Dice similarity coefficient."""

from __future__ import annotations

import numpy as np

from lib.metrics.utils import ConfusionCounts


def dice_from_counts(counts: ConfusionCounts) -> float:
    """Dice = 2TP / (2TP + FP + FN): 1.0 when both masks are empty, 0.0 when exactly one is."""
    return counts.ratio(2 * counts.tp, 2 * counts.tp + counts.fp + counts.fn)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two same-shaped binary masks (any dimensionality, non-zero = foreground).

    Both empty -> 1.0; exactly one empty -> 0.0. Raises ``ValueError`` on a shape mismatch.
    """
    return dice_from_counts(ConfusionCounts.from_masks(pred, truth))
