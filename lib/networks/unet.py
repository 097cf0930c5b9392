"""U-Net factory: MONAI ``UNet`` or ``DynUNet``, 2-D or 3-D, with optional dropout and Kaiming init."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.networks.nets import DynUNet, UNet

from lib.networks.init import init_weights

ARCHITECTURES = ("unet", "dynunet")


def build_unet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    arch: str = "unet",
    channels: Sequence[int] = (16, 32, 64, 128, 256),
    strides: Sequence[int | Sequence[int]] | None = None,
    num_res_units: int = 2,
    norm: str = "instance",
    dropout: float = 0.0,
    kaiming_init: bool = True,
) -> torch.nn.Module:
    """Build a segmentation U-Net.

    ``channels`` gives the feature width per level. ``strides`` (one per level below the first, an int
    or one entry per axis) is how each level downsamples; by default every level halves every axis,
    so inputs should be divisible by the product of the strides along each axis. Per-axis strides let
    a planned network pool thick-slice axes less often (nnU-Net's anisotropic pooling).
    ``dropout`` > 0 keeps dropout layers in the network so they can be re-enabled for MC-dropout.
    ``"dynunet"`` (nnU-Net's blocks) has the same levels as ``"unet"`` and needs a full-resolution first
    level.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    strides = list(strides) if strides is not None else [2] * (len(channels) - 1)
    if len(strides) != len(channels) - 1:
        raise ValueError(f"need {len(channels) - 1} strides for {len(channels)} levels, got {len(strides)}")
    if arch == "unet":
        net: torch.nn.Module = UNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            channels=tuple(channels),
            strides=tuple(strides),
            num_res_units=num_res_units,
            norm=norm,
            dropout=dropout,
        )
    elif arch == "dynunet":
        if any(int(s) != 1 for s in np.atleast_1d(strides[0])):
            raise ValueError("dynunet answers on its first level's grid: its first stride must be 1")
        net = DynUNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=[3] * len(channels),
            strides=[*strides, 1],  # MONAI UNet's layout: level i at strides[:i + 1], a bottom level
            upsample_kernel_size=[*strides[1:], 1],
            filters=list(channels),
            norm_name=norm,
            dropout=dropout or None,
            res_block=num_res_units > 0,
        )
    else:
        raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    if kaiming_init:
        init_weights(net)
    return net
