"""Segmentation metrics on binary masks and integer label maps (numpy/scipy only).

One metric family per module: :mod:`dice`, :mod:`iou`, :mod:`confusion`, :mod:`surface_distance`;
:mod:`table` scores label maps per case and label and aggregates them.
"""

from lib.metrics.confusion import (
    CONFUSION_METRICS,
    accuracy,
    confusion_metrics,
    f1_score,
    precision,
    recall,
    specificity,
)
from lib.metrics.dice import dice, dice_from_counts
from lib.metrics.iou import iou, iou_from_counts
from lib.metrics.surface_distance import (
    SURFACE_METRICS,
    assd,
    hausdorff_distance,
    surface,
    surface_distance_metrics,
    surface_distances,
)
from lib.metrics.table import METRICS, SegmentationMetrics, label_metrics
from lib.metrics.utils import ConfusionCounts, binary_masks

__all__ = [
    "CONFUSION_METRICS",
    "METRICS",
    "SURFACE_METRICS",
    "ConfusionCounts",
    "SegmentationMetrics",
    "accuracy",
    "assd",
    "binary_masks",
    "confusion_metrics",
    "dice",
    "dice_from_counts",
    "f1_score",
    "hausdorff_distance",
    "iou",
    "iou_from_counts",
    "label_metrics",
    "precision",
    "recall",
    "specificity",
    "surface",
    "surface_distance_metrics",
    "surface_distances",
]
