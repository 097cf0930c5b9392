"""Segmentation infer task: serves the newest published model version through ``lib.inference``."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict
from typing import Any

import torch
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from lib.inference.backends import choose_backend
from lib.inference.config import InferConfig
from lib.inference.geometry import centre_patch
from lib.inference.predictor import ImageReadError, Prediction, Predictor
from lib.inference.writer import LABEL_DTYPES, WRITABLE_EXTENSIONS, write_label
from lib.io.model_store import ModelStore
from lib.planning.plan_store import PlanStore
from lib.planning.presets import ModelPreset, load_model, plan_summary

logger = logging.getLogger(__name__)


class ModelNotTrained(LookupError):
    """A user model has no published version yet (HTTP 409 at /infer)."""


class SegmentationInfer(InferTask):
    """Auto-segmentation for one model (a built-in preset or a user's planned model).

    Weights: the newest version in ``store`` when one exists, else the shipped ``default_checkpoint``
    (built-in presets only); each is run on the plan stamped in it. The served version is re-checked on
    every request and swapped in when a training publishes a new one; the result params say which
    version and backend ran. A user model before its first training is listed as untrained and
    refuses inference with :class:`ModelNotTrained`.
    """

    def __init__(
        self,
        plans: PlanStore,
        store: ModelStore,
        default_checkpoint: str | None,
        backend: str,
        parity_image: str | None = None,
        max_voxels: int | None = None,
    ) -> None:
        definition = plans.definition
        plan = plans.current()
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=dict(definition.labels),
            dimension=plan.spatial_dims if plan else 3,
            description=definition.description or (plan.description if plan else definition.name),
            config=InferConfig.info(),
        )
        self.name = plans.name
        self.plans = plans
        self.store = store
        self.default_checkpoint = default_checkpoint
        self.backend = backend
        self.parity_image = parity_image
        self.max_voxels = max_voxels
        self._parity: dict[str, float] = {}
        self._lock = threading.Lock()
        self._served: tuple[str, float] | None = None
        self._predictor: Predictor | None = None
        self._version: int | str = "none"

    @property
    def preset(self) -> ModelPreset | None:
        """The plan served now (the loaded checkpoint's), else the model's current plan (None for a
        user model not planned yet)."""
        return self._predictor.preset if self._predictor else self.plans.current()

    @property
    def trained(self) -> bool:
        """True when a version (published or shipped) can serve."""
        return self._checkpoint()[0] is not None

    def info(self) -> dict[str, Any]:
        info = super().info()
        served = self._predictor.backend if self._predictor else f"{self.backend} (chosen at first use)"
        grid = self.preset
        path, version = self._checkpoint()  # one look at the store per /info
        trained = path is not None
        info.update(
            {
                "dimension": grid.spatial_dims if grid else info["dimension"],
                "trained": trained,
                "status": "ready" if trained else "untrained: submit labels and train",
                "planned_from_data": self.plans.definition.planned_from_data,
                "modality": grid.modality if grid else self.plans.definition.modality or "auto",
                "backend": served,
                "backend_agreement": self._parity,
                "model_version": version,
                "spacing": list(grid.spacing) if grid else None,
                "patch_size": list(grid.patch_size) if grid else None,
                "plan": plan_summary(grid) if grid else "planned from the labelled images at first training",
            }
        )
        return info

    def _checkpoint(self) -> tuple[str | None, int | str]:
        latest = self.store.latest()
        if latest:
            return str(latest[1]), latest[0]
        if self.default_checkpoint and os.path.exists(self.default_checkpoint):
            return self.default_checkpoint, "default"
        return None, "none"

    def get_path(self, validate: bool = True) -> str | None:
        """The checkpoint served now (what ``GET /model/<name>`` downloads)."""
        return self._checkpoint()[0]

    def is_valid(self) -> bool:
        """Listed in /info: always for user models (as untrained before their first training)."""
        return self.plans.definition.planned_from_data or self._checkpoint()[0] is not None

    def predictor(self) -> tuple[Predictor, int | str]:
        """The loaded predictor for the newest checkpoint (loaded once, reloaded when it changes)."""
        path, version = self._checkpoint()
        if path is None:
            raise ModelNotTrained(f"{self.name}: no trained version yet: submit labels and train")
        key = (path, os.path.getmtime(path))
        with self._lock:
            if self._served != key:
                preset, network, _ = load_model(path, self.plans.current())
                cache = self.store.root / "onnx-cache"  # never beside the shipped checkpoint
                cache.mkdir(parents=True, exist_ok=True)
                backend, runner = self._guarded_backend(
                    preset, network, str(cache / f"{os.path.basename(path)}.onnx")
                )
                self._predictor = Predictor(
                    preset, network, backend=backend, runner=runner, max_voxels=self.max_voxels
                )
                self._served, self._version = key, version
                logger.info("%s: serving model version %s from %s", self.name, version, path)
            return self._predictor, self._version

    def _guarded_backend(
        self, preset: ModelPreset, network: torch.nn.Module, onnx_path: str
    ) -> tuple[str, Any]:
        """Pick the serving backend: fastest passing the fp32 parity check on a sample image's centre."""
        if self.backend == "fp32" or not self.parity_image:
            return "fp32", network
        try:
            image, _, _ = Predictor(preset, network).preprocess(self.parity_image)
        except ImageReadError as e:  # e.g. a datastore of another modality: no basis to compare on
            logger.warning("%s: parity check impossible (%s); serving fp32", self.name, e)
            return "fp32", network
        sample = centre_patch(image, preset.patch_size)
        if preset.in_channels > 1:  # a twin is compared in its auto mode (guidance zero)
            sample = torch.cat([sample, sample.new_zeros((preset.in_channels - 1, *sample.shape[1:]))])
        backend, runner, self._parity = choose_backend(
            network, self.backend, sample, preset.patch_size, onnx_path
        )
        logger.info("%s: backend %s (argmax agreement with fp32: %s)", self.name, backend, self._parity)
        return backend, runner

    def predict(self, predictor: Predictor, request: dict[str, Any], options: InferConfig) -> Prediction:
        """The label map for ``request``'s image (the whole-image segmentation)."""
        return predictor(request["image"], options)

    def __call__(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        start = time.perf_counter()
        predictor, version = self.predictor()
        plan = predictor.preset
        ext = request.get("result_extension") or (".png" if plan.spatial_dims == 2 else ".nii.gz")
        dtype = request.get("result_dtype") or "uint8"
        if ext not in WRITABLE_EXTENSIONS:
            raise ValueError(f"result_extension must be one of {WRITABLE_EXTENSIONS}, got {ext!r}")
        if dtype not in LABEL_DTYPES:
            raise ValueError(f"result_dtype must be one of {LABEL_DTYPES}, got {dtype!r}")
        options = InferConfig.from_mapping(request)  # the defaults are what /info lists
        prediction = self.predict(predictor, request, options)
        t_write = time.perf_counter()
        fd, out = tempfile.mkstemp(suffix=ext, prefix="label-")
        os.close(fd)
        write_label(prediction.label, prediction.affine, out, dtype)
        latencies = dict(prediction.timings)
        latencies["write"] = time.perf_counter() - t_write
        latencies["total"] = time.perf_counter() - start
        params = {
            "label_names": dict(plan.labels),
            "latencies": {k: round(v, 3) for k, v in latencies.items()},
            "model": self.name,
            "model_version": version,
            "backend": predictor.backend,
            **asdict(options),
        }
        if prediction.note:
            params["note"] = prediction.note
        logger.info(
            "%s v%s on %s: %s",
            self.name,
            version,
            os.path.basename(request["image"]),
            params["latencies"],
        )
        return out, params
