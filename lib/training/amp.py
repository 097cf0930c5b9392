"""Mixed precision that really runs: CUDA fp16 + GradScaler, CPU bf16 autocast where supported."""

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
