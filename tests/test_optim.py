"""Known-answer tests for lib.optim: optimizer defaults and per-epoch LR curves."""

import math

import pytest
import torch

from lib.optim import (
    OPTIMIZER_DEFAULTS,
    WarmupPlateau,
    build_optimizer,
    build_scheduler,
    scheduler_step,
)

BASE_LR = 1e-3
ETA_MIN = 1e-6


def _optimizer(lr: float = BASE_LR) -> torch.optim.Optimizer:
    return build_optimizer("adamw", [torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _lr(optimizer: torch.optim.Optimizer) -> float:
    return optimizer.param_groups[0]["lr"]


def _curve(name: str, epochs: int, metrics=None, **kwargs) -> list[float]:
    """LR used in each epoch 0..epochs-1 (the scheduler steps at the end of every epoch)."""
    optimizer = _optimizer()
    scheduler = build_scheduler(name, optimizer, epochs, **kwargs)
    lrs = []
    for epoch in range(epochs):
        lrs.append(_lr(optimizer))
        optimizer.step()
        scheduler_step(scheduler, None if metrics is None else metrics[epoch])
    return lrs


def _cosine(t: float, period: float) -> float:
    return ETA_MIN + (BASE_LR - ETA_MIN) * (1 + math.cos(math.pi * t / period)) / 2


@pytest.mark.parametrize(
    ("name", "cls", "expected"),
    [
        ("adamw", torch.optim.AdamW, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}),
        ("adam", torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-5}),
        ("sgd", torch.optim.SGD, {"momentum": 0.9, "weight_decay": 1e-4, "nesterov": True}),
    ],
)
def test_optimizer_defaults(name, cls, expected):
    optimizer = build_optimizer(name, [torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    assert isinstance(optimizer, cls)
    assert OPTIMIZER_DEFAULTS[name] == expected
    group = optimizer.param_groups[0]
    assert {k: group[k] for k in expected} == expected and group["lr"] == 0.02


def test_optimizer_overrides_and_unknown_name():
    optimizer = build_optimizer(
        "SGD", [torch.nn.Parameter(torch.zeros(1))], lr=0.1, weight_decay=0.0, nesterov=False
    )
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["nesterov"], group["momentum"]) == (
        0.1,
        0.0,
        False,
        0.9,
    )
    with pytest.raises(ValueError, match="adam, adamw, sgd"):
        build_optimizer("rmsprop", [torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="cosine, cosine_restarts, plateau"):
        build_scheduler("step", _optimizer(), 10)


def test_cosine_closed_form():
    lrs = _curve("cosine", 50)
    assert lrs == pytest.approx([_cosine(t, 50) for t in range(50)], rel=1e-9, abs=1e-12)


def test_cosine_over_progress_ends_where_the_run_ends():
    # a time budget: after each epoch the run reports its progress (here 30 % per epoch), so the cosine
    # reaches eta_min when the budget is spent, long before the 100 planned epochs
    optimizer = _optimizer()
    scheduler = build_scheduler("cosine", optimizer, 100)
    lrs = [_lr(optimizer)]
    for progress in (0.3, 0.6, 0.9, 1.0):
        scheduler_step(scheduler, progress=progress)
        lrs.append(_lr(optimizer))
    assert lrs == pytest.approx([_cosine(t, 1.0) for t in (0, 0.3, 0.6, 0.9, 1.0)], rel=1e-9, abs=1e-12)
    assert lrs[-1] == pytest.approx(ETA_MIN)
    # with warm-up the cosine runs over the progress left after it
    optimizer = _optimizer()
    scheduler = build_scheduler("cosine", optimizer, 100, warmup_epochs=2, warmup_start_factor=0.5)
    lrs = [_lr(optimizer)]
    for progress in (0.1, 0.2, 0.6, 1.0):
        scheduler_step(scheduler, progress=progress)
        lrs.append(_lr(optimizer))
    assert lrs == pytest.approx([5e-4, 7.5e-4, BASE_LR, _cosine(0.5, 1.0), ETA_MIN], rel=1e-9, abs=1e-12)


def test_cosine_restarts_periods_10_20_40():
    lrs = _curve("cosine_restarts", 70)
    expected = [_cosine(t, 10) for t in range(10)]
    expected += [_cosine(t, 20) for t in range(20)]
    expected += [_cosine(t, 40) for t in range(40)]
    assert lrs == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert [e for e in range(1, 70) if lrs[e] > lrs[e - 1]] == [10, 30]  # restarts


@pytest.mark.parametrize("name", ["cosine", "cosine_restarts"])
def test_warmup_then_closed_form(name):
    warmup, epochs = 5, 40
    lrs = _curve(name, epochs, warmup_epochs=warmup, warmup_start_factor=0.2)
    ramp = [BASE_LR * (0.2 + 0.8 * t / warmup) for t in range(warmup)]
    assert lrs[:warmup] == pytest.approx(ramp, rel=1e-9)
    if name == "cosine":
        tail = [_cosine(t, epochs - warmup) for t in range(epochs - warmup)]
    else:
        tail = [_cosine(t, 10) for t in range(10)] + [_cosine(t, 20) for t in range(20)] + [BASE_LR]
        tail += [_cosine(t, 40) for t in range(1, 5)]
    assert lrs[warmup:] == pytest.approx(tail, rel=1e-9, abs=1e-12)


def test_plateau_halves_after_patience_plus_one_bad_epochs():
    # Best 0.5, then gains of 0.5e-4 < abs threshold 1e-4: 11 bad epochs (patience 10 + 1) halve the LR.
    metrics = [0.5] + [0.5 + 0.5e-4] * 11 + [0.6] * 11
    lrs = _curve("plateau", len(metrics), metrics=metrics)
    assert lrs[:12] == [BASE_LR] * 12
    assert lrs[12:] == pytest.approx([BASE_LR / 2] * 11)  # 0.6 is a new best: the bad-epoch count restarts


def test_plateau_warmup_wrapper_ramps_then_reduces():
    optimizer = _optimizer()
    scheduler = build_scheduler("plateau", optimizer, 50, warmup_epochs=4, warmup_start_factor=0.25)
    assert isinstance(scheduler, WarmupPlateau)
    lrs = []
    for metric in [0.0] * 4 + [0.5] + [0.5] * 11:
        lrs.append(_lr(optimizer))
        optimizer.step()
        scheduler_step(scheduler, metric)
    lrs.append(_lr(optimizer))
    assert lrs[:5] == pytest.approx([0.25e-3, 0.4375e-3, 0.625e-3, 0.8125e-3, 1e-3])
    assert lrs[5:16] == pytest.approx([BASE_LR] * 11)  # warm-up metrics did not count as bad epochs
    assert lrs[16] == pytest.approx(BASE_LR / 2)
    assert scheduler.get_last_lr() == [lrs[16]]

    restored = WarmupPlateau(_optimizer(), 4, 0.25, mode="max", patience=10)
    restored.load_state_dict(scheduler.state_dict())
    assert restored.epoch == 16
    assert restored.plateau.num_bad_epochs == scheduler.plateau.num_bad_epochs


def test_scheduler_step_requires_metric_for_plateau():
    with pytest.raises(ValueError, match="metric"):
        scheduler_step(build_scheduler("plateau", _optimizer(), 10))


def test_warmup_must_be_shorter_than_training():
    with pytest.raises(ValueError, match="warmup_epochs"):
        build_scheduler("cosine", _optimizer(), 10, warmup_epochs=10)
