"""The U-Net factory's two architectures."""

from __future__ import annotations

import pytest
import torch

from lib.networks.unet import build_unet

PLANNED = {"channels": (4, 8, 16, 32), "strides": ((1, 1, 1), (2, 2, 2), (1, 2, 2))}


def _levels(net: torch.nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """The grids of every 3-D convolution's output, in call order."""
    shapes = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
        for m in net.modules()
        if isinstance(m, torch.nn.Conv3d)
    ]
    net(x)
    for hook in hooks:
        hook.remove()
    return shapes


def test_dynunet_has_the_levels_of_the_unet_with_the_same_plan():
    """Both reach the same grids with the same features (MONAI UNet's layout: level i at strides[:i+1],
    the bottom at the last level's grid), and answer on the input grid."""
    x = torch.randn(1, 1, 16, 16, 8)
    nets = {arch: build_unet(3, 1, 3, arch=arch, **PLANNED).eval() for arch in ("unet", "dynunet")}
    with torch.no_grad():
        levels = {arch: set(_levels(net, x)) for arch, net in nets.items()}
        outputs = {arch: net(x).shape for arch, net in nets.items()}
    assert levels["unet"] >= {(4, 16, 16, 8), (8, 8, 8, 4), (16, 8, 4, 2), (32, 8, 4, 2)}
    assert {s for s in levels["dynunet"] if s[0] in (4, 8, 16, 32)} == {
        s for s in levels["unet"] if s[0] in (4, 8, 16, 32)
    }
    assert outputs["unet"] == outputs["dynunet"] == (1, 3, 16, 16, 8)


def test_a_dynunet_must_start_at_full_resolution():
    with pytest.raises(ValueError, match="its first stride must be 1"):
        build_unet(3, 1, 3, arch="dynunet", channels=(4, 8), strides=(2,))
