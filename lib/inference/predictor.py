"""Whole-image segmentation: load, preprocess (the preset's chain), sliding window, restore to the input
grid. Writing the label file is :mod:`lib.inference.writer`'s job."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from scipy import ndimage

from lib.inference.config import DEFAULTS, InferConfig
from lib.inference.geometry import class_argmax, restore_labels
from lib.inference.mirroring import mirrored_mean
from lib.io.errors import root_cause
from lib.networks.onednn import onednn_convolutions
from lib.planning.presets import ModelPreset
from lib.preprocessing.chain import loading, preprocessing

BACKENDS = ("fp32", "bf16", "onnx")
# an image whose values span at most this fraction of its largest magnitude carries no picture
CONSTANT_RTOL = 1e-3
# preprocessed intensities are of order 1 (windowed to [0, 1], z-scored, percentile-scaled): a network
# input spanning less than this is blank (e.g. a CT entirely outside the window)
BLANK_INPUT_RANGE = 1e-3


def predict_logits(
    network: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    roi_size: tuple[int, ...],
    backend: str = "fp32",
    sw_batch_size: int = DEFAULTS.sw_batch_size,
    overlap: float = DEFAULTS.overlap,
) -> torch.Tensor:
    """Sliding-window class scores for ``image`` (1, *spatial) -> float32 (C, *spatial).

    ``network`` is the torch module or any callable on (B, 1, *roi) tensors (e.g. an ONNX Runtime
    runner, backend "onnx"); ``backend`` "bf16" runs it under CPU bf16 autocast (scores come back as
    float32). A lone fp32 window runs its 3-D convolutions on oneDNN (:mod:`lib.networks.onednn`).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if backend == "bf16" else nullcontext()
    fast = onednn_convolutions(network) if isinstance(network, torch.nn.Module) else nullcontext()
    with torch.no_grad(), autocast, fast:
        out = sliding_window_inference(
            image.unsqueeze(0).as_tensor() if hasattr(image, "as_tensor") else image.unsqueeze(0),
            roi_size=roi_size,
            sw_batch_size=sw_batch_size,
            predictor=network,
            overlap=overlap,
            mode="gaussian",
        )
    return out[0].float()


def keep_largest_components(
    logits: torch.Tensor, keep: Mapping[int, Sequence[Sequence[int]]] | None = None
) -> np.ndarray:
    """Suppress every connected component of each foreground class but its largest (in place) and
    return the argmax label of the suppressed scores (uint8, what :func:`restore_labels` reuses).
    ``keep`` ({class: voxel indices}, e.g. an annotator's clicks) also keeps each component of a class
    that holds one of its points.

    Works on the argmax of ``logits`` (C, *spatial), each class inside its own bounding box; voxels
    of a dropped component get that class's score lowered below every other score, so the restored
    label never shows them, and take the runner-up's label. A runner-up can itself form a new stray
    component (a dropped spleen island whose second choice is liver), so passes repeat until every
    foreground class has one component; this ends, since each pass lowers at least one score for good
    and background's is never lowered.
    """
    label = class_argmax(logits)
    floor = float(logits.min()) - 1.0
    changed = True
    while changed:
        changed = False
        for c, box in enumerate(ndimage.find_objects(label), start=1):
            if box is None:
                continue
            comps, n = ndimage.label(label[box] == c)
            if n <= 1:
                continue
            sizes = np.bincount(comps.ravel())[1:]
            kept = {1 + int(sizes.argmax())} | _components_at(comps, box, (keep or {}).get(c, ()))
            drop = (comps > 0) & ~np.isin(comps, list(kept))
            if not drop.any():
                continue
            scores = logits[(slice(None), *box)]
            scores[c][torch.from_numpy(drop)] = floor
            label[box][drop] = class_argmax(scores[:, torch.from_numpy(drop)])
            changed = True
    return label


def _components_at(comps: np.ndarray, box: tuple[slice, ...], points: Sequence[Sequence[int]]) -> set[int]:
    """Component numbers of ``comps`` (a labelled crop at ``box``) at ``points`` (full-grid indices)."""
    found = set()
    for p in points:
        local = tuple(int(i) - s.start for i, s in zip(p, box, strict=True))
        if all(0 <= i < n for i, n in zip(local, comps.shape, strict=True)) and comps[local]:
            found.add(int(comps[local]))
    return found


@dataclass
class Prediction:
    """A label map on the input image's own grid (same shape and affine as the input)."""

    label: np.ndarray
    affine: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    note: str = ""  # why the label is empty without running the network, if it is


class ImageReadError(ValueError):
    """The input is not a readable image of the expected dimensionality with finite values."""


class ImageTooLarge(ImageReadError):
    """The image would exceed the per-request bound on working-grid voxels."""


def constant_note(values: torch.Tensor | np.ndarray, what: str, atol: float = 0.0) -> str:
    """A note when ``values`` are (near-)constant (range <= ``CONSTANT_RTOL`` x largest magnitude, or
    <= ``atol``), else "". Non-finite values are never constant (they are refused elsewhere)."""
    arr = torch.as_tensor(values)
    lo, hi = float(arr.min()), float(arr.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    if hi - lo <= max(CONSTANT_RTOL * max(abs(lo), abs(hi)), atol):
        return f"{what} is (near-)constant ({lo:g} to {hi:g}): nothing to segment, the label is empty"
    return ""


def working_voxels(shape: tuple[int, ...], affine: np.ndarray, preset: ModelPreset) -> int:
    """Voxels an image of ``shape`` with voxel->world ``affine`` has once resampled to the preset's grid."""
    if preset.working_size is not None:
        return int(np.prod(preset.working_size))
    spacing = np.linalg.norm(np.asarray(affine, np.float64)[:3, :3], axis=0)[: len(shape)]
    return int(np.prod(np.ceil(np.asarray(shape) * spacing / np.asarray(preset.spacing))))


class Predictor:
    """Segment image files with one network and one preset; the network is kept loaded.

    ``max_voxels`` bounds the memory of one request: an image larger than that on the working grid
    is refused with :class:`ImageTooLarge` before any resampling (scores and sliding-window buffers
    take about 32 bytes per working voxel for a 5-class model).
    """

    def __init__(
        self,
        preset: ModelPreset,
        network: torch.nn.Module,
        backend: str = "fp32",
        config: InferConfig = DEFAULTS,
        runner: Callable[[torch.Tensor], torch.Tensor] | None = None,
        max_voxels: int | None = None,
    ) -> None:
        self.preset = preset
        self.network = network.eval()
        self.runner = runner or self.network
        self.backend = backend
        self.config = config
        self.max_voxels = max_voxels
        self._load = loading(["image"])
        self._pre = preprocessing(preset)

    def _read(self, image_path: str) -> dict:
        """The image as loaded (channel-first MetaTensor, input grid); ``ImageReadError`` /
        ``ImageTooLarge`` as :meth:`preprocess` says."""
        try:
            data = self._load({"image": image_path})
        except Exception as e:  # readers raise many types (OSError, RuntimeError, zlib.error, ...)
            name = os.path.basename(str(image_path))
            raise ImageReadError(f"cannot read image {name!r}: {root_cause(e)}") from e
        shape = tuple(int(s) for s in data["image"].shape[1:])
        if len(shape) != self.preset.spatial_dims:
            raise ImageReadError(f"expected a {self.preset.spatial_dims}-D image, got shape {shape}")
        n = working_voxels(shape, np.asarray(data["image"].affine, np.float64), self.preset)
        if self.max_voxels is not None and n > self.max_voxels:
            raise ImageTooLarge(
                f"image too large: {n / 1e6:.1f}M voxels on the model's working grid "
                f"(limit {self.max_voxels / 1e6:.1f}M, conf max_working_voxels)"
            )
        return data

    def _prepare(self, data: dict) -> tuple[torch.Tensor, np.ndarray, tuple[int, ...]]:
        orig_affine = np.asarray(data["image"].affine, np.float64)
        orig_shape = tuple(int(s) for s in data["image"].shape[1:])
        image = self._pre(data)["image"]
        if not torch.isfinite(image).all():
            raise ImageReadError("image contains non-finite values")
        return image, orig_affine, orig_shape

    def preprocess(self, image_path: str) -> tuple[torch.Tensor, np.ndarray, tuple[int, ...]]:
        """Read and preprocess an image: (working-grid image (1, *spatial), input affine, input shape).

        Raises ``ImageReadError`` for unreadable files, wrong dimensionality or non-finite values, and
        ``ImageTooLarge`` above ``max_voxels``.
        """
        return self._prepare(self._read(image_path))

    def logits(
        self, image: torch.Tensor, config: InferConfig | None = None, guidance: np.ndarray | None = None
    ) -> torch.Tensor:
        """Sliding-window scores (C, *spatial) for a preprocessed ``image`` (1, *spatial). An interactive
        plan's network also reads ``guidance`` (its click channels, (C, *spatial)); without it they are
        zero: the auto mode."""
        config = config or self.config
        if self.preset.interactive:
            extra = (self.preset.in_channels - 1, *image.shape[1:])
            clicks = (
                torch.zeros(extra) if guidance is None else torch.as_tensor(guidance, dtype=torch.float32)
            )
            if tuple(clicks.shape) != extra:
                raise ValueError(f"guidance must have shape {extra}, got {tuple(clicks.shape)}")
            image = torch.cat([image, clicks.to(image.dtype)])
        elif guidance is not None:
            raise ValueError(f"{self.preset.name} is not interactive: it reads no click guidance")

        def scores(x: torch.Tensor) -> torch.Tensor:
            return predict_logits(
                self.runner, x, self.preset.patch_size, self.backend, config.sw_batch_size, config.overlap
            )

        if config.mirror and self.preset.mirror is not None:
            return mirrored_mean(scores, image, self.preset.mirror)
        return scores(image)

    def __call__(self, image_path: str, config: InferConfig | None = None) -> Prediction:
        """Segment the image at ``image_path`` (NIfTI, NRRD or a DICOM series folder) with ``config``
        (default: the predictor's). A (near-)constant image, or one that preprocessing leaves blank,
        gets an empty label and a ``note`` without running the network (its output there would be the
        network's bias).
        """
        t0 = time.perf_counter()
        data = self._read(image_path)
        note = constant_note(data["image"], "the image")
        if not note:
            image, orig_affine, orig_shape = self._prepare(data)
            note = constant_note(image, "the model's input", BLANK_INPUT_RANGE)
        if note:
            empty = np.zeros(data["image"].shape[1:], np.uint8)
            affine = np.asarray(data["image"].affine, np.float64)
            return Prediction(empty, affine, {"pre": time.perf_counter() - t0}, note)
        t1 = time.perf_counter()
        config = config or self.config
        logits = self.logits(image, config)
        t2 = time.perf_counter()
        working_label = keep_largest_components(logits) if config.largest_component else None
        t3 = time.perf_counter()
        label = restore_labels(
            logits, np.asarray(image.affine, np.float64), orig_affine, orig_shape, label=working_label
        )
        t4 = time.perf_counter()
        timings = {"pre": t1 - t0, "infer": t2 - t1, "post": t3 - t2, "invert": t4 - t3}
        return Prediction(label=label, affine=orig_affine, timings=timings)
