"""lib.networks.onednn: which convolutions go to oneDNN, and that the results do not change."""

import pytest
import torch

from lib.inference.predictor import predict_logits
from lib.networks.onednn import onednn_convolutions
from lib.networks.unet import build_unet
from lib.training.config import TrainConfig
from lib.training.engine import Trainer
from tests.toy_data import toy_box_cases


def _ops(fn) -> set[str]:
    with torch.autograd.profiler.profile() as prof:
        fn()
    return {event.name for event in prof.function_events}


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_unet(3, 1, 3, channels=(4, 8), strides=((1, 1, 1),), num_res_units=1).eval()


SLOW = "aten::slow_conv3d_forward"  # PyTorch's native kernel

# (batch, dtype, gradients) -> whether the block still runs the native kernel
CASES = [
    ((1, torch.float32, False), False),
    ((2, torch.float32, False), False),  # PyTorch's own rule picks oneDNN for two
    ((1, torch.float64, False), True),  # oneDNN has no float64: untouched
    ((1, torch.float32, True), False),  # training too (the gradients: the next test)
]


@pytest.mark.parametrize(("case", "slow"), CASES)
def test_only_one_fp32_sample_is_rerouted_and_results_agree(case, slow):
    batch, dtype, grad = case
    net = _net().to(dtype)
    x = torch.randn(batch, 1, 8, 8, 8, dtype=dtype)
    with torch.set_grad_enabled(grad):
        reference = net(x)
        with onednn_convolutions(net):
            ops = _ops(lambda: net(x))
            fast = net(x)
    assert (SLOW in ops) == slow
    assert torch.allclose(reference, fast, atol=1e-5)
    assert not any("forward" in vars(m) for m in net.modules())  # restored on leaving


def test_gradients_through_onednn_match_pytorchs_own():
    net = _net().train()
    x = torch.randn(1, 1, 8, 8, 8, requires_grad=True)
    grads = []
    for fast in (False, True):
        net.zero_grad()
        x.grad = None
        with onednn_convolutions(net) if fast else torch.enable_grad():
            ops = _ops(lambda: net(x).square().mean().backward())
        assert (SLOW in ops) != fast
        grads.append([x.grad.clone(), *(p.grad.clone() for p in net.parameters())])
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(*grads, strict=True))


def test_a_nested_block_leaves_the_outer_one_in_force():
    net = _net()
    x = torch.randn(1, 1, 8, 8, 8)
    with torch.no_grad(), onednn_convolutions(net):
        with onednn_convolutions(net):
            pass
        assert SLOW not in _ops(lambda: net(x))
    assert not any("forward" in vars(m) for m in net.modules())


def test_bf16_autocast_is_left_to_pytorch():
    net = _net()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), onednn_convolutions(net):
        ops = _ops(lambda: net(torch.randn(1, 1, 8, 8, 8)))
    assert "aten::conv3d" in ops  # PyTorch's own entry point (a rerouted convolution skips it)
    assert not any("forward" in vars(m) for m in net.modules())


def test_predict_logits_runs_a_lone_window_on_onednn_and_restores_the_network():
    net = _net()
    image = torch.randn(1, 16, 16, 8)
    with torch.no_grad():
        assert SLOW in _ops(lambda: net(image[None]))
    assert SLOW not in _ops(lambda: predict_logits(net, image, (16, 16, 8), "fp32"))
    with torch.no_grad():
        expected = net(image[None])[0]
    assert torch.allclose(predict_logits(net, image, (16, 16, 8), "fp32"), expected, atol=1e-5)
    assert not any("forward" in vars(m) for m in net.modules())


def test_training_and_validation_in_the_engine_never_use_the_slow_kernel(tmp_path):
    # validation (predict_logits, a nested block) between epochs must not undo the engine's block
    net = _net()
    batches = [{"image": torch.randn(1, 1, 16, 16, 8), "label": torch.randint(0, 3, (1, 1, 16, 16, 8))}] * 2
    config = TrainConfig(max_epochs=2, val_interval=1, amp=False, early_stop_patience=0)
    trainer = Trainer(
        net, config, batches, toy_box_cases(1, seed=0), {"a": 1, "b": 2}, (16, 16, 8), str(tmp_path)
    )
    ops = _ops(trainer.fit)
    assert "_OneSampleConvolution" in ops and SLOW not in ops
    assert not any("forward" in vars(m) for m in net.modules())
