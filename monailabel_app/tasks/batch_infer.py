"""Batch inference: segment many datastore images and store each result as its ``original`` label.

MONAI Label 0.8.5's own batch task spreads images over ``cuda:N`` devices and divides by the GPU
count, so on a CPU machine it fails before the first image (ZeroDivisionError). This task runs the
images one after the other through the app's own ``infer`` (same checks, same model, same writer),
logs one progress line per image, reports a bad image with its reason and goes on, and skips an image
whose ``original`` label already comes from the served model version.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.tasks.batch_infer import BatchInferImageType, BatchInferTask

from lib.inference.predictor import root_cause
from monailabel_app.tasks.infer import SegmentationInfer

logger = logging.getLogger(__name__)

SELECTIONS = tuple(t.value for t in BatchInferImageType)  # all, labeled, unlabeled


def selected_images(images: Any, datastore: Datastore) -> list[str]:
    """Image ids for ``images``: one of :data:`SELECTIONS` or a list of image ids (kept in order).

    Raises ``ValueError`` naming what is wrong (not a selection, not a list of known ids).
    """
    if isinstance(images, str):
        if images == BatchInferImageType.IMAGES_LABELED:
            return sorted(datastore.get_labeled_images())
        if images == BatchInferImageType.IMAGES_UNLABELED:
            return sorted(datastore.get_unlabeled_images())
        if images == BatchInferImageType.IMAGES_ALL:
            return sorted(datastore.list_images())
        raise ValueError(f"images: {images!r} is not one of {list(SELECTIONS)} or a list of image ids")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
        raise ValueError(f"images: expected one of {list(SELECTIONS)} or a non-empty list of image ids")
    unknown = sorted(set(images) - set(datastore.list_images()))
    if unknown:
        raise LookupError(f"images: unknown image id(s) {unknown[:10]}")
    return list(dict.fromkeys(images))


class SegmentationBatchInfer(BatchInferTask):
    """Run the app's infer over a selection of datastore images, saving ``original`` labels."""

    def __init__(self, infers: Mapping[str, SegmentationInfer]) -> None:
        self.infers = infers

    def __call__(
        self, request: dict[str, Any], datastore: Datastore, infer: Callable[..., dict[str, Any]]
    ) -> dict[str, Any]:
        model = request.get("model")
        if model not in self.infers:
            raise ValueError(f"model: unknown model {model!r}; available: {sorted(self.infers)}")
        version = self.infers[model].info()["model_version"]
        image_ids = selected_images(request.get("images", BatchInferImageType.IMAGES_ALL), datastore)
        labelled, skipped, failed = [], [], {}
        start = time.perf_counter()
        logger.info("batch infer %s (model version %s): %d image(s)", model, version, len(image_ids))
        for n, image_id in enumerate(image_ids, start=1):
            t0 = time.perf_counter()
            if self._done(datastore, image_id, model, version):
                skipped.append(image_id)
                outcome = "already labelled by this model version, skipped"
            else:
                try:
                    result = infer(
                        {
                            "model": model,
                            "image": image_id,
                            "save_label": True,
                            "label_tag": DefaultLabelTag.ORIGINAL,
                        },
                        datastore,
                    )
                    if result.get("file") and os.path.exists(result["file"]):
                        os.remove(result["file"])
                    labelled.append(image_id)
                    outcome = "labelled"
                except Exception as e:  # one bad image must not end the batch: report it and go on
                    failed[image_id] = str(getattr(e, "detail", "") or root_cause(e))
                    outcome = f"failed: {failed[image_id]}"
            logger.info(
                "batch infer %s: %d/%d %s %s (%.1f s)",
                model,
                n,
                len(image_ids),
                image_id,
                outcome,
                time.perf_counter() - t0,
            )
        summary = {
            "model": model,
            "model_version": version,
            "total": len(image_ids),
            "labelled": labelled,
            "skipped": skipped,
            "failed": failed,
            "seconds": round(time.perf_counter() - start, 2),
        }
        logger.info(
            "batch infer %s done: %d labelled, %d skipped, %d failed",
            model,
            len(labelled),
            len(skipped),
            len(failed),
        )
        return summary

    @staticmethod
    def _done(datastore: Datastore, image_id: str, model: str, version: int | str) -> bool:
        """True when the image's ``original`` label was written by ``model`` at ``version``."""
        label_id = datastore.get_label_by_image_id(image_id, DefaultLabelTag.ORIGINAL)
        if not label_id:
            return False
        info = datastore.get_label_info(label_id, DefaultLabelTag.ORIGINAL)
        return info.get("model") == model and info.get("params", {}).get("model_version") == version
