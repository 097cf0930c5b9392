"""Mixed precision that really runs: CUDA fp16 + GradScaler, CPU bf16 autocast where supported; and the
batch size that suits the compute dtype on a CPU."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from lib.hardware import bf16_supported


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype used on ``device``: fp16 on CUDA, bf16 on a bf16-capable CPU, else None (off)."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if bf16_supported() else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """Autocast context for ``dtype`` (a no-op context when ``dtype`` is None)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16 (bf16 has fp32's range and needs no scaling)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def cpu_batch_size(spatial_dims: int, dtype: torch.dtype | None) -> int:
    """Images per training batch on a CPU, for the automatic ``train_batch_size`` (0).

    PyTorch sends an fp32 3-D convolution of a batch of one small patch (batch x channels x two
    spatial sizes at most 20480) to its slow native kernel, and every larger batch to oneDNN, so in
    fp32 a step of two patches costs less than a step of one (``bench/train_speed.py``); under bf16
    autocast oneDNN runs every batch, and one patch per step buys the most steps in a time budget.

    >>> cpu_batch_size(3, None), cpu_batch_size(3, torch.bfloat16), cpu_batch_size(2, None)
    (2, 1, 1)
    """
    return 2 if spatial_dims == 3 and dtype is None else 1
