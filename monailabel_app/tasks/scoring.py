"""Scoring: per-image, per-label metrics of the served model against the final labels."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.tasks.scoring import ScoringMethod

from lib.io.label_map import read_label_map
from lib.metrics.table import SegmentationMetrics, json_safe
from monailabel_app.tasks.infer import SegmentationInfer

logger = logging.getLogger(__name__)


class ModelMetrics(ScoringMethod):
    """Dice, IoU, HD95 and ASSD (mm, the label's voxel spacing) for every labelled image.

    Each image's table is stored in its datastore info under ``metrics_<model>``; the call returns the
    per-image tables and the per-label means.
    """

    def __init__(self, infer: SegmentationInfer) -> None:
        super().__init__(f"Dice / IoU / HD95 / ASSD of {infer.name} against final labels")
        self.infer = infer
        self.key = f"metrics_{infer.name}"

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        predictor, version = self.infer.predictor()
        metrics = SegmentationMetrics(predictor.preset.labels)
        for image_id in sorted(datastore.get_labeled_images(DefaultLabelTag.FINAL)):
            label_uri = datastore.get_label_uri(
                datastore.get_label_by_image_id(image_id, DefaultLabelTag.FINAL), DefaultLabelTag.FINAL
            )
            truth, spacing = read_label_map(Path(label_uri))
            metrics.add(image_id, predictor(datastore.get_image_uri(image_id)).label, truth, spacing=spacing)
            row = json_safe(metrics.cases[image_id])
            datastore.update_image_info(image_id, {self.key: {"model_version": version, "metrics": row}})
        result = json_safe({"model_version": version, **metrics.to_dict()})
        logger.info("scoring %s v%s: %s", self.infer.name, version, result.get("summary"))
        return result
