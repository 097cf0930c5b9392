"""Training engine: accumulation equivalence, AMP, monitoring outputs, early stop and cancel."""

import glob
import math
import os
import time

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lib.hardware import bf16_supported
from lib.networks.unet import build_unet
from lib.training.amp import amp_dtype, autocast
from lib.training.config import TrainConfig
from lib.training.engine import Trainer, accumulate_step
from tests.toy_data import toy_box_cases


def _linear_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)
    net = torch.nn.Linear(3, 1)
    return net, x, y


@pytest.mark.parametrize("n_steps", [2, 4])
def test_accumulation_equals_one_big_batch(n_steps):
    net_a, x, y = _linear_problem()
    net_b = torch.nn.Linear(3, 1)
    net_b.load_state_dict(net_a.state_dict())
    loss_fn = torch.nn.MSELoss()
    opt_a = torch.optim.SGD(net_a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(net_b.parameters(), lr=0.1)
    b = 8 // n_steps
    small = [(x[i : i + b], y[i : i + b]) for i in range(0, 8, b)]
    _, norms = accumulate_step(small, net_a, loss_fn, opt_a, n_steps, torch.device("cpu"))
    accumulate_step([(x, y)], net_b, loss_fn, opt_b, 1, torch.device("cpu"))
    assert len(norms) == 1
    for pa, pb in zip(net_a.parameters(), net_b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_accumulation_flushes_remainder():
    net, x, y = _linear_problem()
    ref = torch.nn.Linear(3, 1)
    ref.load_state_dict(net.state_dict())
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    batches = [(x[i : i + 2], y[i : i + 2]) for i in range(0, 6, 2)]  # 3 batches, N=2 -> steps of 2 and 1
    _, norms = accumulate_step(batches, net, torch.nn.MSELoss(), opt, 2, torch.device("cpu"))
    assert len(norms) == 2
    # replay by hand: step on mean of first two batches, then on the third alone
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1)
    for group in ([0, 1], [2]):
        opt_ref.zero_grad()
        loss = sum(torch.nn.MSELoss()(ref(batches[i][0]), batches[i][1]) for i in group) / len(group)
        loss.backward()
        opt_ref.step()
    for pa, pb in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_gradient_clipping_bounds_the_update():
    net, x, y = _linear_problem()
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    before = [p.detach().clone() for p in net.parameters()]
    _, norms = accumulate_step(
        [(x, y * 1000)], net, torch.nn.MSELoss(), opt, 1, torch.device("cpu"), grad_clip=0.5
    )
    assert norms[0] > 0.5
    step = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(net.parameters(), before, strict=True)))
    assert float(step) == pytest.approx(0.5, rel=1e-4)


def test_amp_dtype_and_autocast_really_run():
    cpu = torch.device("cpu")
    assert amp_dtype(cpu, False) is None
    assert amp_dtype(torch.device("cuda"), True) == torch.float16
    dtype = amp_dtype(cpu, True)
    assert dtype == (torch.bfloat16 if bf16_supported() else None)
    if dtype is not None:
        conv = torch.nn.Conv3d(1, 2, 3)
        with autocast(cpu, dtype):
            assert conv(torch.randn(1, 1, 6, 6, 6)).dtype == torch.bfloat16


def test_trainer_learns_and_writes_monitoring(tmp_path):
    torch.manual_seed(0)
    train = toy_box_cases(4, 0, scale=2)
    loader = [
        {"image": torch.stack([c["image"] for c in train]), "label": torch.stack([c["label"] for c in train])}
    ]
    net = build_unet(3, 1, 2, channels=(8, 16, 32), num_res_units=1)
    seen = []
    trainer = Trainer(
        net,
        TrainConfig(max_epochs=12, lr=3e-3, val_interval=3, early_stop_patience=50),
        loader,
        toy_box_cases(2, 1, scale=2),
        {"box": 1},
        (32, 32, 16),
        str(tmp_path),
        on_epoch=lambda stats, result: seen.append(stats.epoch),
    )
    result = trainer.fit()
    assert seen == list(range(12)) and len(result.epochs) == 12
    validated = [e for e in result.epochs if e.val_dice is not None]
    assert [e.epoch for e in validated] == [2, 5, 8, 11]
    # the starting weights are validated first; an epoch is kept on the mean of its Dice and the previous
    dices = [e.val_mean_dice for e in validated]
    scores = [dices[0]] + [(a + b) / 2 for a, b in zip(dices, dices[1:], strict=False)]
    best = int(np.argmax(scores))
    assert result.baseline_dice < 0.5 < result.best_dice == dices[best]
    assert result.best_epoch == validated[best].epoch and result.notes[0].startswith(
        f"kept epoch {result.best_epoch}"
    )
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss
    assert set(result.epochs[-1].val_iou) == {"box"}
    # cosine schedule from lr towards eta_min
    assert result.epochs[0].lr == pytest.approx(3e-3) and result.epochs[-1].lr < result.epochs[0].lr
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"Loss/train", "Loss/val", "Metrics/dice", "Metrics/iou", "Learning_rate"} <= tags
    assert len(events.Scalars("Loss/train")) == 12 and len(events.Scalars("Metrics/dice")) == 4
    pngs = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "*.png")))
    assert pngs == [
        "val_epoch0002.png",
        "val_epoch0005.png",
        "val_epoch0008.png",
        "val_epoch0011.png",
        "val_start.png",
    ]


def test_trainer_early_stops_and_cancels(tmp_path):
    cases = toy_box_cases(2, 0, scale=2)
    loader = [
        {"image": torch.stack([c["image"] for c in cases]), "label": torch.stack([c["label"] for c in cases])}
    ]
    net = build_unet(3, 1, 2, channels=(4, 8), num_res_units=0)
    cfg = TrainConfig(max_epochs=30, lr=1e-7, val_interval=1, early_stop_patience=2, early_stop_delta=0.5)
    result = Trainer(net, cfg, loader, cases, {"box": 1}, (32, 32, 16), str(tmp_path)).fit()
    # two validations no better than the starting weights: stop, and keep the starting weights
    assert result.stopped_early and len(result.epochs) == 2 and result.best_epoch == -1
    assert "starting weights are kept" in result.notes[0]
    # the last epoch's weights are kept beside them (lib.train writes them as last.pt)
    changed = [k for k, v in result.best_state.items() if not torch.equal(v, result.last_state[k])]
    assert changed and result.last_state.keys() == result.best_state.keys()
    # a start that is no candidate (a twin's widened segmentation model) is validated, never kept
    net = build_unet(3, 1, 2, channels=(4, 8), num_res_units=0)
    result = Trainer(
        net, cfg, loader, cases, {"box": 1}, (32, 32, 16), str(tmp_path), start_is_candidate=False
    ).fit()
    assert result.best_epoch == 0 and result.best_state is not None and not math.isnan(result.baseline_dice)
    assert result.notes[0].startswith("kept epoch 0")
    calls = iter([False, False, True])
    result = Trainer(
        net,
        TrainConfig(max_epochs=30),
        loader,
        cases,
        {"box": 1},
        (32, 32, 16),
        str(tmp_path),
        should_stop=lambda: next(calls),
    ).fit()
    assert result.cancelled and len(result.epochs) == 2


class _Threshold(torch.nn.Module):
    """Two-class scores of a [0, 1] image: foreground where it exceeds 0.5."""

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(20.0))

    def forward(self, x):
        return torch.cat([(0.5 - x) * self.gain, (x - 0.5) * self.gain], dim=1)


def test_validation_scores_what_inference_serves_on_the_annotated_grid(tmp_path):
    # working grid: 2 mm voxels, a 6 x 6 x 4 box plus an 8-voxel island that the served output drops
    image = torch.zeros(1, 16, 16, 8)
    image[0, 4:10, 4:10, 2:6] = 1.0
    image[0, 13:15, 13:15, 6:8] = 1.0
    working = MetaTensor(image, affine=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0])))
    # annotated grid: the same voxels with x running the other way (voxel i at x = 30 - 2i mm)
    flipped = np.array([[-2.0, 0, 0, 30], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]])
    reference = np.zeros((16, 16, 8), np.uint8)
    reference[6:12, 4:10, 2:6] = 1
    case = {"image": working, "label": (image > 0.5).to(torch.uint8), "reference_affine": flipped}
    trainer = Trainer(
        _Threshold(),
        TrainConfig(amp=False),
        [],
        [{**case, "reference": reference}],
        {"box": 1},
        (16, 16, 8),
        str(tmp_path),
    )
    _, val_dice, val_iou = trainer.validate(0)
    assert val_dice["box"] == pytest.approx(1.0) and val_iou["box"] == pytest.approx(1.0)
    # scored against the unflipped array, 4 of the box's 6 columns overlap
    trainer.val_cases = [{**case, "reference": np.flip(reference, 0).copy()}]
    _, val_dice, val_iou = trainer.validate(0)
    assert val_dice["box"] == pytest.approx(2 / 3) and val_iou["box"] == pytest.approx(0.5)


def _box_loader(cases):
    return [
        {"image": torch.stack([c["image"] for c in cases]), "label": torch.stack([c["label"] for c in cases])}
    ]


def test_time_budget_stops_cleanly_validates_and_ends_the_cosine(tmp_path):
    torch.manual_seed(0)
    cases = toy_box_cases(2, 0, scale=2)
    net = build_unet(3, 1, 2, channels=(4, 8), num_res_units=0)

    class Slow(list):
        """One batch that takes about 0.3 s to draw (a slow CPU epoch)."""

        def __iter__(self):
            time.sleep(0.3)
            return super().__iter__()

    config = TrainConfig(max_epochs=1000, max_minutes=0.05, val_interval=100, lr=3e-3)  # a 3-s budget
    started = time.perf_counter()
    result = Trainer(
        net, config, Slow(_box_loader(cases)), cases, {"box": 1}, (32, 32, 16), str(tmp_path)
    ).fit()
    assert time.perf_counter() - started < 3.0 + 1.0  # stopped before overrunning (plus one epoch's slack)
    assert result.stop_reason == "time_budget" and 3 <= len(result.epochs) < 1000
    assert result.epochs[-1].val_mean_dice is not None  # the last epoch is validated before stopping
    assert result.epochs[-1].lr < 0.5 * 3e-3  # the cosine ran over the budget, not over 1000 epochs
    assert "time budget" in result.notes[0] and result.best_state is not None


@pytest.mark.parametrize(
    "val_interval, validated_epochs",
    [(0, [-1, 109]), (50, [-1, 49, 99, 109])],  # automatic: validation waits for 9x its time in training
    ids=["automatic", "fixed"],
)
def test_slow_validation_waits_for_training_under_an_automatic_interval(
    tmp_path, monkeypatch, val_interval, validated_epochs
):
    cases = toy_box_cases(1, 0, scale=2)
    net = build_unet(3, 1, 2, channels=(4, 8), num_res_units=0)
    config = TrainConfig(max_epochs=110, max_minutes=0, val_interval=val_interval, early_stop_patience=0)
    trainer = Trainer(net, config, _box_loader(cases), cases, {"box": 1}, (32, 32, 16), str(tmp_path))
    assert trainer.val_interval == 50  # 1 step per epoch: about 50 steps apart at least
    seen = []

    def slow_validation(epoch):  # dearer than 50 epochs of training / 9 (a toy epoch: 0.02-0.3 s)
        seen.append(epoch)
        time.sleep(2.0)
        return 1.0, {"box": 0.5}, {"box": 0.3}

    monkeypatch.setattr(trainer, "validate", slow_validation)
    trainer.fit()
    assert seen == validated_epochs


def test_without_validation_cases_the_last_epoch_is_kept_with_a_note(tmp_path):
    cases = toy_box_cases(1, 0, scale=2)
    net = build_unet(3, 1, 2, channels=(4, 8), num_res_units=0)
    result = Trainer(
        net, TrainConfig(max_epochs=3), _box_loader(cases), [], {"box": 1}, (32, 32, 16), str(tmp_path)
    ).fit()
    assert result.best_epoch == 2 and math.isnan(result.best_dice) and len(result.epochs) == 3
    assert "no validation case" in result.notes[0]
    for name, value in net.state_dict().items():
        torch.testing.assert_close(result.best_state[name], value)


class _Greedy(torch.nn.Module):
    """A network whose forward pass asks the allocator for far more memory than any machine has."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 2, 1)

    def forward(self, x):
        if self.training:
            torch.empty(2**62, dtype=torch.uint8)
        return self.conv(x)


def test_out_of_memory_is_caught_and_diagnosed(tmp_path):
    cases = toy_box_cases(1, 0, scale=2)
    result = Trainer(
        _Greedy(),
        TrainConfig(max_epochs=3),
        _box_loader(cases),
        cases,
        {"box": 1},
        (32, 32, 16),
        str(tmp_path),
    ).fit()
    assert result.stop_reason == "out_of_memory" and result.epochs == []
    assert [d["code"] for d in result.diagnostics] == ["out_of_memory"]
    assert "smaller patch" in result.diagnostics[0]["remedy"]
    assert result.best_state is None and "nothing is published" in result.notes[0]
