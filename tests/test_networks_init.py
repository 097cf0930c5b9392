"""Known-answer tests for lib.networks.init and lib.networks.pretrained."""

import math

import pytest
import torch
from torch import nn

from lib.networks.init import init_weights
from lib.networks.pretrained import LoadReport, load_pretrained


def test_conv_weights_follow_kaiming_fan_out():
    torch.manual_seed(0)
    conv = nn.Conv3d(32, 64, kernel_size=3)
    init_weights(conv)
    fan_out = 64 * 27
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.03)
    assert conv.weight.mean().item() == pytest.approx(0.0, abs=3e-3)
    assert torch.count_nonzero(conv.bias) == 0


def test_all_layer_kinds_in_a_network():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(16, 32, 3),
        nn.BatchNorm2d(32),
        nn.ConvTranspose2d(32, 16, 2, stride=2),
        nn.InstanceNorm2d(16, affine=True),
        nn.GroupNorm(4, 16),
        nn.Conv1d(16, 8, 1),
        nn.LayerNorm(8),
        nn.Linear(512, 512),
        nn.InstanceNorm3d(4),  # no affine parameters: left alone
    )
    for p in net.parameters():
        nn.init.constant_(p, 0.5)
    assert init_weights(net) is net
    for norm in (net[1], net[3], net[4], net[6]):
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias))
    for layer in (net[0], net[2], net[5], net[7]):
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    # ConvTranspose weight is (in, out, k, k): torch's fan_out is size(0) * kernel volume = 32 * 4.
    assert net[2].weight.std().item() == pytest.approx(math.sqrt(2 / (32 * 4)), rel=0.1)
    assert net[7].weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert net[7].weight.mean().item() == pytest.approx(0.0, abs=1e-3)


def _net(out_channels: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, out_channels, 1))


def _filled(value: float, out_channels: int = 3) -> nn.Sequential:
    net = _net(out_channels)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.fill_(value)
    return net


def test_mismatched_out_channels_skipped_when_not_strict():
    model = _filled(0.0)
    report = load_pretrained(model, _filled(1.0, out_channels=5).state_dict(), strict_shapes=False)
    total = len(model.state_dict())
    assert isinstance(report, LoadReport)
    assert (len(report.loaded), report.total) == (total - 2, total)
    assert report.skipped == {
        "2.weight": "shape mismatch (5, 4, 1, 1) vs (3, 4, 1, 1)",
        "2.bias": "shape mismatch (5,) vs (3,)",
    }
    assert str(report).startswith(f"loaded {total - 2}/{total} tensors; skipped 2.weight (shape mismatch")
    assert torch.all(model[0].weight == 1) and torch.all(model[1].running_var == 1)
    assert torch.all(model[2].weight == 0)


def test_mismatched_out_channels_raise_when_strict():
    model = _filled(0.0)
    with pytest.raises(ValueError, match=r"2\.weight \(shape mismatch \(5, 4, 1, 1\) vs \(3, 4, 1, 1\)\)"):
        load_pretrained(model, _filled(1.0, out_channels=5).state_dict(), strict_shapes=True)
    assert torch.all(model[0].weight == 0)  # nothing loaded


def test_ddp_prefixed_checkpoint_file_in_wrapper(tmp_path):
    state = {f"module.{k}": v for k, v in _filled(2.0).state_dict().items()}
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 7, "optimizer": {"lr": 1e-4}, "model_state_dict": state}, path)
    model = _filled(0.0)
    report = load_pretrained(model, path)
    assert str(report) == f"loaded {report.total}/{report.total} tensors"
    assert all(torch.all(t == 2) for t in model.state_dict().values())


@pytest.mark.parametrize("key", ["model", "state_dict", "network"])
def test_wrapped_dict_with_missing_and_unexpected(key):
    state = _filled(3.0).state_dict()
    del state["0.bias"]
    state["head.extra"] = torch.zeros(1)
    model = _filled(0.0)
    report = load_pretrained(model, {key: state, "meta": {"version": 1}})
    assert report.skipped == {"0.bias": "missing in checkpoint", "head.extra": "unexpected in checkpoint"}
    assert len(report.loaded) == report.total - 1
    assert torch.all(model[0].weight == 3) and torch.all(model[0].bias == 0)
