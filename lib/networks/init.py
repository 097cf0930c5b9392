"""Kaiming weight initialisation for segmentation networks."""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

_NORMS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)


def _init_module(module: nn.Module) -> None:
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    if isinstance(module, _ConvNd):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, _NORMS) and weight is not None:
        nn.init.ones_(weight)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.01)
    else:
        return
    if bias is not None:
        nn.init.zeros_(bias)


def init_weights(module: nn.Module) -> nn.Module:
    """Initialise ``module`` and all its children in place; returns ``module``.

    * Conv / ConvTranspose (1/2/3-D): ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``, so
      std = sqrt(2 / fan_out) with fan_out as torch computes it from the weight tensor
      (``weight.size(0) * kernel volume``); bias 0.
    * BatchNorm / InstanceNorm / GroupNorm / LayerNorm with affine parameters: weight 1, bias 0.
    * Linear: weight ~ N(0, 0.01), bias 0.

    Other modules (and norm layers without affine parameters) are left untouched.
    """
    module.apply(_init_module)
    return module
