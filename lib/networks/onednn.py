"""3-D convolutions of one fp32 sample on oneDNN, forward and backward, on a CPU.

PyTorch picks its convolution kernel by a size rule: an fp32 3-D convolution of a batch of one whose
batch x channels x first two spatial sizes is at most 20480 (every level of a small patch, the first
layer of most) runs on its slow native kernel, several times slower than oneDNN on the same input
(under bf16 autocast, or for a batch of two, PyTorch picks oneDNN itself). Training on one patch per
step and inference on one window at a time both hit the rule, so :func:`onednn_convolutions` sends
those convolutions to oneDNN: the forward directly, the gradients as a batch of two whose second
sample is zeros (PyTorch's rule then picks oneDNN; the zeros add nothing to any gradient). Only the
kernel changes: the same convolution and the same gradients, up to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch


class _OneSampleConvolution(torch.autograd.Function):
    """A 3-D convolution of one sample: forward on oneDNN, backward as a zero-padded pair."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, geometry: tuple
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.has_bias = geometry, bias is not None
        return torch.mkldnn_convolution(x, weight, bias, *geometry)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        x, weight = ctx.saved_tensors
        padding, stride, dilation, groups = ctx.geometry
        wanted = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        grad_x, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            torch.cat([grad, torch.zeros_like(grad)]),
            torch.cat([x, torch.zeros_like(x)]),
            weight,
            [weight.shape[0]] if ctx.has_bias else None,
            stride,
            padding,
            dilation,
            False,
            [0] * len(stride),
            groups,
            wanted,
        )
        return (grad_x[:1] if grad_x is not None else None), grad_weight, grad_bias, None


def _forward(conv: torch.nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``, on oneDNN for one fp32 sample on a CPU outside autocast, else as PyTorch does."""
    one_fp32_sample = x.shape[0] == 1 and x.dtype == torch.float32 and x.device.type == "cpu"
    if one_fp32_sample and not torch.is_autocast_enabled("cpu"):
        geometry = conv.padding, conv.stride, conv.dilation, conv.groups
        return _OneSampleConvolution.apply(x, conv.weight, conv.bias, geometry)
    return torch.nn.Conv3d.forward(conv, x)


def _eligible(module: torch.nn.Module) -> bool:
    """A plain zero-padded ``Conv3d`` with numeric padding (what oneDNN's entry point takes)."""
    return (
        type(module) is torch.nn.Conv3d
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


@contextmanager
def onednn_convolutions(network: torch.nn.Module) -> Iterator[None]:
    """Within the block, ``network``'s 3-D convolutions of one fp32 sample on a CPU run on oneDNN,
    with and without gradients; everything else is untouched (bf16 autocast, GPUs, larger batches).
    Blocks on one network may overlap (two requests at once): the results stay right, and once the
    first block ends the rest run on PyTorch's own kernels.

    >>> conv = torch.nn.Conv3d(1, 2, 3, padding=1)
    >>> x = torch.randn(1, 1, 8, 8, 8)
    >>> reference = conv(x)
    >>> with onednn_convolutions(conv):
    ...     fast = conv(x)
    >>> torch.allclose(reference, fast, atol=1e-5), "forward" in vars(conv)
    (True, False)
    """
    # a nested block patches (and on leaving restores) only what an outer block has not patched
    convs = [m for m in network.modules() if _eligible(m) and "forward" not in vars(m)]
    for conv in convs:
        conv.forward = partial(_forward, conv)
    try:
        yield
    finally:
        for conv in convs:
            vars(conv).pop("forward", None)
