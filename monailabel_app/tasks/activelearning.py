"""Active learning: the epistemic (MC-dropout) strategy and the scoring pass that feeds it."""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.tasks.scoring import ScoringMethod
from monailabel.interfaces.tasks.strategy import Strategy

from lib.inference.uncertainty import mc_dropout_entropy
from monailabel_app.tasks.infer import SegmentationInfer

logger = logging.getLogger(__name__)


class EpistemicScorer:
    """Computes and caches (in the datastore's image info) each image's MC-dropout uncertainty.

    A cached score is reused while the served model version is unchanged.
    """

    def __init__(self, infer: SegmentationInfer, samples: int = 5, downsample: int = 1) -> None:
        self.infer = infer
        self.samples = samples
        self.downsample = downsample
        self.key = f"epistemic_{infer.name}"
        self._network: tuple[Any, Any] | None = None  # (version, private copy of the network)

    def _mc_network(self):
        predictor, version = self.infer.predictor()
        if self._network is None or self._network[0] != version:
            # a private copy: switching dropout on must never affect concurrent inferences
            self._network = (version, copy.deepcopy(predictor.network))
        return predictor, version, self._network[1]

    def score(self, datastore: Datastore, image_id: str) -> float:
        """The image's uncertainty for the served model (computed once per model version)."""
        predictor, version, network = self._mc_network()
        cached = datastore.get_image_info(image_id).get(self.key)
        if cached and cached.get("version") == version:
            return float(cached["score"])
        image, _, _ = predictor.preprocess(datastore.get_image_uri(image_id))
        value = mc_dropout_entropy(
            network, image, predictor.preset.patch_size, self.samples, self.downsample, predictor.backend
        )
        datastore.update_image_info(
            image_id, {self.key: {"score": value, "version": version, "samples": self.samples}}
        )
        logger.info("epistemic %s: %.4f (model version %s)", image_id, value, version)
        return value


class Epistemic(Strategy):
    """Next sample = the unlabelled image the current model is least certain about."""

    def __init__(self, scorer: EpistemicScorer) -> None:
        super().__init__(f"Most uncertain image under MC dropout ({scorer.samples} samples)")
        self.scorer = scorer

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:
        images = datastore.get_unlabeled_images(DefaultLabelTag.FINAL)
        if not images:
            return None
        scores = {image_id: self.scorer.score(datastore, image_id) for image_id in sorted(images)}
        best = max(scores, key=scores.get)
        return {"id": best, "name": os.path.basename(datastore.get_image_uri(best)), "score": scores[best]}


class EpistemicScoring(ScoringMethod):
    """Score every unlabelled image (the pass the epistemic strategy then reads from the cache)."""

    def __init__(self, scorer: EpistemicScorer) -> None:
        super().__init__("MC-dropout uncertainty of every unlabelled image")
        self.scorer = scorer

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, float]:
        images = sorted(datastore.get_unlabeled_images(DefaultLabelTag.FINAL))
        return {image_id: self.scorer.score(datastore, image_id) for image_id in images}
