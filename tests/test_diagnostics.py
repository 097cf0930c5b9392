"""Synthetic-history tests for lib.training.diagnostics."""

import math

import numpy as np
import pytest

from lib.training.diagnostics import REMEDIES, Diagnostic, diagnose

T = np.arange(60)


def _noise(scale: float, n: int = 60, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, n)


def _codes(found: list[Diagnostic]) -> set[str]:
    return {d.code for d in found}


def _healthy(seed: int = 0) -> dict[str, list[float]]:
    decay = np.exp(-T / 10)
    return {
        "train_loss": list(0.2 + 1.3 * decay + _noise(0.003, seed=seed)),
        "val_loss": list(0.25 + 1.2 * decay + _noise(0.005, seed=seed + 1)),
        "val_dice": list(0.85 - 0.75 * decay + _noise(0.01, seed=seed + 2)),
    }


def test_healthy_run_has_no_findings():
    grad_norms = list(
        np.r_[np.linspace(8.0, 1.0, 20), 1.0 + _noise(0.1, 200)]
    )  # large early norms are normal
    assert diagnose(_healthy(), grad_norms=grad_norms) == []


def test_short_or_missing_history_has_no_findings():
    assert diagnose({}) == []
    assert diagnose({"train_loss": [1.0, 1.0, 1.0], "val_dice": [0.1, 0.1]}) == []


def test_loss_not_decreasing():
    found = diagnose({"train_loss": list(1.0 + _noise(0.01, 20)), "val_dice": [0.05] * 20})
    assert _codes(found) == {"loss_not_decreasing"}  # under-fitting is not reported on top
    assert found[0].severity == "warning" and "learning rate" in found[0].remedy


def test_loss_oscillating():
    t = T[:30]
    swinging = list(np.exp(-t / 20) * (1 + 0.15 * (-1.0) ** t))
    found = diagnose({"train_loss": swinging})
    assert _codes(found) == {"loss_oscillating"}
    assert "Lower the learning rate" in found[0].remedy
    # the same swings while validation keeps reaching new bests: sampling noise, not reported
    rising = list(np.linspace(0.3, 0.75, 6))
    assert diagnose({"train_loss": swinging, "val_dice": rising}) == []
    # ... and reported again once validation falls back from its best
    assert _codes(diagnose({"train_loss": swinging, "val_dice": [*rising, 0.7]})) == {"loss_oscillating"}


def test_overfitting():
    history = _healthy()
    history["val_loss"] = list(0.3 + np.exp(-T / 10) + 0.02 * np.maximum(0, T - 30))
    found = diagnose(history)
    assert _codes(found) == {"overfitting"}
    assert "augmentation" in found[0].remedy and "early stopping" in found[0].remedy


def test_underfitting_from_low_flat_dice():
    t = T[:30]
    found = diagnose(
        {"train_loss": list(0.6 + 0.4 * np.exp(-t / 5)), "val_dice": list(0.3 + _noise(0.01, 30))}
    )
    assert _codes(found) == {"underfitting"}
    assert "larger model" in found[0].remedy


def test_underfitting_from_high_flat_losses():
    t = T[:30]
    history = {"train_loss": list(0.7 + 0.3 * np.exp(-t / 3)), "val_loss": list(0.75 + 0.3 * np.exp(-t / 3))}
    assert _codes(diagnose(history)) == {"underfitting"}
    history["train_loss"] = list(0.2 + 0.8 * np.exp(-t / 3))  # converged low: not under-fitting
    assert diagnose(history) == []


def test_exploding_gradient_spike_and_non_finite():
    history = _healthy()
    norms = [1.0] * 100
    norms[-3] = 50.0
    spike = diagnose(history, grad_norms=norms)
    assert _codes(spike) == {"exploding_gradients"} and spike[0].severity == "warning"
    assert "clipping" in spike[0].remedy

    norms[-3] = math.inf
    assert [d.severity for d in diagnose(history, grad_norms=norms)] == ["error"]
    history["train_loss"][-1] = math.nan
    assert [(d.code, d.severity) for d in diagnose(history)] == [("exploding_gradients", "error")]


def test_out_of_memory_flag():
    found = diagnose(_healthy(), oom=True)
    assert [(d.code, d.severity) for d in found] == [("out_of_memory", "error")]
    assert "AMP" in found[0].remedy and "patch" in found[0].remedy


def test_every_code_has_a_remedy_and_window_is_validated():
    assert set(REMEDIES) == {
        "loss_not_decreasing",
        "loss_oscillating",
        "overfitting",
        "underfitting",
        "exploding_gradients",
        "out_of_memory",
    }
    with pytest.raises(ValueError, match="window"):
        diagnose({}, window=2)


def _issue_run(last_epoch: int) -> dict[str, list[float]]:
    """The from-scratch run of issue 15: validation every 5 epochs, val Dice 0.94 at epoch 10, then down
    to 0.78 by epoch 180 while the training loss keeps falling."""
    epochs = np.arange(last_epoch + 1)
    val_epochs = [-1, *range(4, last_epoch + 1, 5)]
    rise = [0.05 + 0.89 * min(max(e, 0) / 10, 1.0) for e in val_epochs]
    fall = [0.94 - 0.16 * max(e - 10, 0) / 170 for e in val_epochs]
    noise = _noise(0.01, len(val_epochs), seed=3)
    return {
        "train_loss": list(0.1 + 0.9 * np.exp(-epochs / 30) + _noise(0.003, len(epochs), seed=4)),
        "val_dice": [float(min(r, f) + n) for r, f, n in zip(rise, fall, noise, strict=True)],
        "val_epoch": val_epochs,
    }


def test_overfitting_from_validation_dice_falling_while_the_train_loss_falls():
    found = diagnose(_issue_run(180))
    assert _codes(found) == {"overfitting"}
    assert "from 0.9" in found[0].message and "at epoch" in found[0].message
    assert "augmentation" in found[0].remedy and "early stopping" in found[0].remedy
    # early in the same run the drop is still within the noise: nothing is reported
    assert diagnose(_issue_run(40)) == []
    # the same validation curve with a training loss that rose since the best is not over-fitting
    rising = _issue_run(180)
    rising["train_loss"] = list(np.linspace(0.2, 0.6, 181))
    assert "overfitting" not in _codes(diagnose(rising))


def test_a_starting_model_that_training_makes_worse_is_reported():
    history = {"train_loss": list(np.linspace(1.0, 0.5, 20)), "val_dice": [0.9, 0.8, 0.78, 0.79, 0.8]}
    history["val_epoch"] = [-1, 4, 9, 14, 19]
    (found,) = diagnose(history)
    assert found.code == "overfitting" and "the starting weights" in found.message
