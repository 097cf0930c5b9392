"""What this machine can run, detected once per call and never assumed."""

from __future__ import annotations

import torch


def bf16_supported() -> bool:
    """True when this CPU has native bf16 matmul support (detected, not assumed)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
