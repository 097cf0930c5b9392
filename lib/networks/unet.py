"""U-Net factory: MONAI ``UNet`` or ``DynUNet``, 2-D or 3-D, with optional dropout and Kaiming init."""

from __future__ import annotations

from collections.abc import Sequence

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
    num_res_units: int = 2,
    norm: str = "instance",
    dropout: float = 0.0,
    kaiming_init: bool = True,
) -> torch.nn.Module:
    """Build a segmentation U-Net.

    ``channels`` gives the feature width per level; every level below the first halves the resolution
    (stride 2), so inputs should be divisible by ``2 ** (len(channels) - 1)`` along each axis.
    ``dropout`` > 0 keeps dropout layers in the network so they can be re-enabled for MC-dropout.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    strides = [2] * (len(channels) - 1)
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
        net = DynUNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=[3] * len(channels),
            strides=[1, *strides],
            upsample_kernel_size=strides,
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
