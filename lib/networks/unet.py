"""U-Net factory: MONAI ``UNet`` or ``DynUNet``, 2-D or 3-D, with optional (channel-wise) dropout and
Kaiming init."""

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
    ``dropout`` > 0 keeps dropout layers in the network so they can be re-enabled for MC-dropout; they
    drop whole feature maps (:func:`channel_dropout`).
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
    channel_dropout(net, spatial_dims)
    if kaiming_init:
        init_weights(net)
    return net


def channel_dropout(network: torch.nn.Module, spatial_dims: int) -> int:
    """Replace every element-wise ``nn.Dropout`` in ``network`` by ``nn.Dropout2d`` / ``nn.Dropout3d``
    with the same ``p`` (whole feature maps dropped: spatial dropout); returns how many were replaced.

    MONAI's ``Convolution`` drops single voxels, and drawing that mask took about a quarter of a CPU
    training step of a planned 3-D U-Net in a one-off profile (8 features at full resolution on a 64^3
    patch); a mask per channel costs next to nothing. Dropout layers hold no weights, so checkpoints
    load unchanged.

    >>> net = torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3), torch.nn.Dropout(0.1))
    >>> channel_dropout(net, 3), type(net[1]).__name__, net[1].p
    (1, 'Dropout3d', 0.1)
    """
    kind = torch.nn.Dropout3d if spatial_dims == 3 else torch.nn.Dropout2d
    replaced = 0
    for module in list(network.modules()):
        for name, child in module.named_children():
            if type(child) is torch.nn.Dropout:
                setattr(module, name, kind(child.p))
                replaced += 1
    return replaced
