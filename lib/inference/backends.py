"""Inference backends (eager fp32, CPU bf16 autocast, ONNX Runtime) and the parity guard that decides
which of them may serve."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from lib.hardware import bf16_supported
from lib.inference.predictor import BACKENDS, predict_logits
from lib.io.atomic import atomic_path

logger = logging.getLogger(__name__)

Runner = Callable[[torch.Tensor], torch.Tensor]


def export_onnx(
    network: torch.nn.Module, path: str, spatial_dims: int, opset: int = 17, in_channels: int = 1
) -> str:
    """Export ``network`` (``in_channels`` inputs) to ONNX with dynamic batch and spatial axes; written
    atomically."""
    network = network.eval()
    example = torch.zeros((1, in_channels) + (32,) * spatial_dims)
    axes = {0: "batch", **{2 + i: f"d{i}" for i in range(spatial_dims)}}
    with atomic_path(path, suffix=".onnx") as tmp:
        torch.onnx.export(
            network,
            example,
            tmp,
            dynamo=False,
            opset_version=opset,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": axes, "logits": axes},
        )
    return path


class OnnxRunner:
    """An ONNX Runtime session called like the network: (B, C, *spatial) tensor -> logits tensor."""

    def __init__(self, path: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"image": x.float().numpy()})[0])


# Fastest first, as measured by ``python -m lib.export`` on one 128 x 128 x 32 ct_organs patch
# (2-core AVX-512 bf16 CPU, 2026-11-30): bf16 autocast 0.053 s, eager fp32 0.095 s, ONNX Runtime 0.178 s.
SPEED_ORDER = ("bf16", "fp32", "onnx")
BACKEND_CHOICES = ("auto", *BACKENDS)  # what a user may ask for


def available_backends() -> list[str]:
    """Backends this machine can run, fastest first by :data:`SPEED_ORDER` (bf16 only on CPUs with
    native bf16). ``auto`` stops at fp32, so it never serves the slower ONNX Runtime."""
    return [b for b in SPEED_ORDER if b != "bf16" or bf16_supported()]


def argmax_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of voxels whose arg-max class is the same in two (C, *spatial) score maps."""
    return float((a.argmax(dim=0) == b.argmax(dim=0)).float().mean())


def choose_backend(
    network: torch.nn.Module,
    requested: str,
    sample: torch.Tensor,
    roi_size: tuple[int, ...],
    onnx_path: str,
    threshold: float = 0.99,
) -> tuple[str, Runner, dict[str, float]]:
    """The backend to serve with, its runner, and the measured argmax agreement with fp32.

    ``requested`` "auto" tries the available backends fastest first (bf16 where native, then fp32,
    which always serves); a named backend is checked too.
    A backend whose agreement on ``sample`` (C, *spatial: the network's input) is below ``threshold``
    is refused (auto moves on; a named one falls back to fp32 with a warning).
    """
    if requested not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {requested!r}; valid: {', '.join(BACKEND_CHOICES)}")
    reference = predict_logits(network, sample, roi_size, "fp32")
    candidates = available_backends() if requested == "auto" else [requested]
    report: dict[str, float] = {}
    for name in candidates:
        if name == "fp32":
            return "fp32", network, report
        if name == "onnx":
            runner: Runner = OnnxRunner(
                export_onnx(network, onnx_path, sample.ndim - 1, in_channels=sample.shape[0])
            )
            logits = predict_logits(runner, sample, roi_size, "onnx")
        else:
            runner, logits = network, predict_logits(network, sample, roi_size, name)
        report[name] = argmax_agreement(reference, logits)
        if report[name] >= threshold:
            return name, runner, report
        logger.warning("backend %s refused: argmax agreement %.4f < %.2f", name, report[name], threshold)
    return "fp32", network, report
