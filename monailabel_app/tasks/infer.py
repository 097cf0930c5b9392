"""Segmentation infer task: serves the newest published model version through ``lib.inference``."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from typing import Any

import torch
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from lib.inference.backends import choose_backend
from lib.inference.geometry import centre_patch
from lib.inference.predictor import ImageReadError, Predictor
from lib.inference.writer import LABEL_DTYPES, WRITABLE_EXTENSIONS, write_label
from lib.io.model_store import ModelStore
from lib.planning.presets import ModelPreset, build_network, preset_for_checkpoint

logger = logging.getLogger(__name__)


class SegmentationInfer(InferTask):
    """Auto-segmentation for one preset.

    Weights: the newest version in ``store`` when one exists, else the shipped ``default_checkpoint``.
    The served version is re-checked on every request and swapped in when a training publishes a new
    one; the result params say which version and backend ran.
    """

    def __init__(
        self,
        preset: ModelPreset,
        store: ModelStore,
        default_checkpoint: str,
        backend: str,
        parity_image: str | None = None,
        max_voxels: int | None = None,
    ) -> None:
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=dict(preset.labels),
            dimension=preset.spatial_dims,
            description=preset.description,
            config={"largest_component": True},
        )
        self.preset = preset
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

    def info(self) -> dict[str, Any]:
        info = super().info()
        served = self._predictor.backend if self._predictor else f"{self.backend} (chosen at first use)"
        grid = self._predictor.preset if self._predictor else self.preset
        info.update(
            {
                "backend": served,
                "backend_agreement": self._parity,
                "model_version": self._checkpoint()[1],
                "spacing": list(grid.spacing),
                "patch_size": list(grid.patch_size),
            }
        )
        return info

    def _checkpoint(self) -> tuple[str | None, int | str]:
        latest = self.store.latest()
        if latest:
            return str(latest[1]), latest[0]
        if os.path.exists(self.default_checkpoint):
            return self.default_checkpoint, "default"
        return None, "none"

    def get_path(self, validate: bool = True) -> str | None:
        """The checkpoint served now (what ``GET /model/<name>`` downloads)."""
        return self._checkpoint()[0]

    def is_valid(self) -> bool:
        return self._checkpoint()[0] is not None

    def predictor(self) -> tuple[Predictor, int | str]:
        """The loaded predictor for the newest checkpoint (loaded once, reloaded when it changes)."""
        path, version = self._checkpoint()
        if path is None:
            raise FileNotFoundError(f"no model checkpoint for {self.preset.name}")
        key = (path, os.path.getmtime(path))
        with self._lock:
            if self._served != key:
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
                preset = preset_for_checkpoint(self.preset, checkpoint)
                network = build_network(preset)
                network.load_state_dict(checkpoint["state_dict"])
                cache = self.store.root / "onnx-cache"  # never beside the shipped checkpoint
                cache.mkdir(parents=True, exist_ok=True)
                backend, runner = self._guarded_backend(
                    preset, network, str(cache / f"{os.path.basename(path)}.onnx")
                )
                self._predictor = Predictor(
                    preset, network, backend=backend, runner=runner, max_voxels=self.max_voxels
                )
                self._served, self._version = key, version
                logger.info("%s: serving model version %s from %s", self.preset.name, version, path)
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
            logger.warning("%s: parity check impossible (%s); serving fp32", self.preset.name, e)
            return "fp32", network
        backend, runner, self._parity = choose_backend(
            network, self.backend, centre_patch(image, preset.patch_size), preset.patch_size, onnx_path
        )
        logger.info(
            "%s: backend %s (argmax agreement with fp32: %s)", self.preset.name, backend, self._parity
        )
        return backend, runner

    def __call__(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        start = time.perf_counter()
        ext = request.get("result_extension") or (".png" if self.preset.spatial_dims == 2 else ".nii.gz")
        dtype = request.get("result_dtype") or "uint8"
        if ext not in WRITABLE_EXTENSIONS:
            raise ValueError(f"result_extension must be one of {WRITABLE_EXTENSIONS}, got {ext!r}")
        if dtype not in LABEL_DTYPES:
            raise ValueError(f"result_dtype must be one of {LABEL_DTYPES}, got {dtype!r}")
        predictor, version = self.predictor()
        prediction = predictor(request["image"])
        t_write = time.perf_counter()
        fd, out = tempfile.mkstemp(suffix=ext, prefix="label-")
        os.close(fd)
        write_label(prediction.label, prediction.affine, out, dtype)
        latencies = dict(prediction.timings)
        latencies["write"] = time.perf_counter() - t_write
        latencies["total"] = time.perf_counter() - start
        params = {
            "label_names": dict(self.preset.labels),
            "latencies": {k: round(v, 3) for k, v in latencies.items()},
            "model": self.preset.name,
            "model_version": version,
            "backend": predictor.backend,
        }
        logger.info(
            "%s v%s on %s: %s",
            self.preset.name,
            version,
            os.path.basename(request["image"]),
            params["latencies"],
        )
        return out, params
