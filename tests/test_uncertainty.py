"""MC-dropout uncertainty: stochastic passes, foreground-normalised entropy, network left in eval."""

import pytest
import torch

from lib.inference.uncertainty import enable_mc_dropout, mc_dropout_entropy
from lib.networks.unet import build_unet


def test_enable_mc_dropout_switches_only_dropout_layers():
    net = build_unet(3, 1, 3, channels=(4, 8), num_res_units=1, dropout=0.2)
    n = enable_mc_dropout(net)
    assert n > 0
    for m in net.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0:
            assert m.training
        elif list(m.children()) == []:
            assert not m.training


def test_entropy_is_positive_bounded_and_leaves_eval_mode():
    torch.manual_seed(0)
    net = build_unet(3, 1, 3, channels=(4, 8), num_res_units=1, dropout=0.5)
    image = torch.rand(1, 16, 16, 8)
    value = mc_dropout_entropy(net, image, (16, 16, 8), samples=4)
    assert 0.0 <= value <= torch.log(torch.tensor(3.0)).item() + 1e-6
    assert not any(m.training for m in net.modules())
    # without dropout there is nothing to sample
    with pytest.raises(ValueError, match="dropout"):
        mc_dropout_entropy(build_unet(3, 1, 3, channels=(4, 8)), image, (16, 16, 8))


def test_more_dropout_means_more_uncertainty():
    torch.manual_seed(0)
    image = torch.rand(1, 16, 16, 8)
    low = build_unet(3, 1, 2, channels=(4, 8), num_res_units=1, dropout=0.01)
    high = build_unet(3, 1, 2, channels=(4, 8), num_res_units=1, dropout=0.01)
    high.load_state_dict(low.state_dict())
    for m in high.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = 0.6
    # make every voxel foreground so both scores average over the same voxels
    with torch.no_grad():
        for net in (low, high):
            last = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d | torch.nn.ConvTranspose3d)][-1]
            last.bias[1] += 100.0
    assert mc_dropout_entropy(high, image, (16, 16, 8), 8) >= mc_dropout_entropy(low, image, (16, 16, 8), 8)
