"""Rule-based training diagnostics: spot common failure patterns in a run's history and suggest remedies.

``history`` maps ``train_loss`` to per-epoch values, ``val_loss`` and ``val_dice`` to per-validation
values and ``val_epoch`` to the epoch of each validation (-1: the starting weights; without it the
validations are taken to be the epochs); any may be missing or short (a rule needs ``window`` finite
values of the series it reads unless stated). Rules, with the thresholds below, each tried on the last
``window`` epochs unless stated:

* ``loss_not_decreasing``: over the whole run (>= ``window`` epochs) the train loss never fell
  more than ``MIN_PROGRESS`` (relative) below its first value.
* ``loss_oscillating``: the train-loss differences change sign in at least
  ``OSCILLATION_SIGN_CHANGES`` of the possible places and their mean size is at least
  ``OSCILLATION_AMPLITUDE`` of the mean loss, unless the latest validation is the run's best (then
  the swings are the sampling noise of a few patches per epoch in a run that is still improving).
* ``overfitting``: the mean val Dice of the last ``RECENT_VALIDATIONS`` validations is more than
  ``OVERFIT_DICE_DROP`` below the best one before them while the train loss fell since that best
  (its least-squares trend; needs only ``RECENT_VALIDATIONS`` + 1 validations, so it fires with
  validation every few epochs); or, along least-squares lines over the window, the train loss falls
  while the val loss rises by more than ``OVERFIT_RISE`` of its window mean.
* ``underfitting``: the train loss did make progress (else ``loss_not_decreasing`` applies) but
  either val Dice is low (mean < ``LOW_DICE``) and its trend gains less than ``FLAT`` over the
  window, or, without val Dice, the losses are flat (relative trend change < ``FLAT``) while the
  train loss is still above ``HIGH_LOSS`` of its first value.
* ``exploding_gradients``: a non-finite train loss or gradient norm (error), or a gradient norm
  among the last ``window`` above ``GRAD_SPIKE`` times the median of all norms (warning).
* ``out_of_memory``: the caller (the engine, which catches the error) says the run ran out of memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

WINDOW = 10
MIN_PROGRESS = 0.05
OSCILLATION_SIGN_CHANGES = 0.7
OSCILLATION_AMPLITUDE = 0.1
OVERFIT_RISE = 0.15
OVERFIT_DICE_DROP = 0.05
RECENT_VALIDATIONS = 3
LOW_DICE = 0.5
FLAT = 0.02
HIGH_LOSS = 0.5
GRAD_SPIKE = 10.0

REMEDIES: dict[str, str] = {
    "loss_not_decreasing": (
        "Lower the learning rate (or raise it if it is tiny), and check the data and labels: image/label "
        "pairing, orientation, intensity normalisation, label values matching the output channels."
    ),
    "loss_oscillating": (
        "Lower the learning rate (e.g. halve it), use a larger batch or gradient accumulation, and check "
        "for noisy or inconsistent labels."
    ),
    "overfitting": (
        "Add data augmentation and regularisation (weight decay, dropout), rely on early stopping on "
        "validation Dice (the best validated version is the one published), or add training cases."
    ),
    "underfitting": (
        "Use a larger model (more channels or levels) or train longer; check that the learning rate is "
        "not too low and the augmentation not too strong."
    ),
    "exploding_gradients": (
        "Enable gradient clipping (e.g. max norm 1.0), lower the learning rate or add a warm-up, and "
        "check inputs for NaN or extreme intensities."
    ),
    "out_of_memory": (
        "Use a smaller patch (ROI) or batch size, enable mixed precision (AMP), and use gradient "
        "accumulation to keep the effective batch size."
    ),
}

Severity = Literal["warning", "error"]
History = Mapping[str, Sequence[float]]


@dataclass(frozen=True)
class Diagnostic:
    """One detected problem: machine-readable ``code``, ``severity``, what was seen, and what to try."""

    code: str
    severity: Severity
    message: str
    remedy: str


def _finding(code: str, message: str, severity: Severity = "warning") -> Diagnostic:
    return Diagnostic(code, severity, message, REMEDIES[code])


def _series(history: History, key: str, window: int) -> np.ndarray | None:
    """The whole series as floats if it has at least ``window`` values, all finite."""
    values = np.asarray(history.get(key, ()), dtype=float)
    return values if len(values) >= window and np.all(np.isfinite(values)) else None


def _trend(values: np.ndarray) -> float:
    """Change over ``values`` along their least-squares line."""
    return float(np.polyfit(np.arange(len(values)), values, 1)[0] * (len(values) - 1))


def _flat(values: np.ndarray) -> bool:
    """Trend change below ``FLAT`` relative to the mean."""
    return abs(_trend(values)) < FLAT * abs(values.mean())


def _progress(train: np.ndarray) -> float:
    """Relative drop of the best train loss below the first one."""
    return float((train[0] - train.min()) / max(abs(train[0]), 1e-12))


def _not_decreasing(history: History, window: int) -> Diagnostic | None:
    train = _series(history, "train_loss", window)
    if train is None or _progress(train) >= MIN_PROGRESS:
        return None
    return _finding(
        "loss_not_decreasing", f"train loss fell only {_progress(train):.1%} in {len(train)} epochs"
    )


def _oscillating(history: History, window: int) -> Diagnostic | None:
    train = _series(history, "train_loss", window)
    if train is None:
        return None
    recent = train[-window:]
    signs = np.sign(np.diff(recent))
    changes = np.count_nonzero(signs[1:] * signs[:-1] < 0) / (len(signs) - 1)
    amplitude = np.abs(np.diff(recent)).mean() / max(np.abs(recent).mean(), 1e-12)
    if changes < OSCILLATION_SIGN_CHANGES or amplitude < OSCILLATION_AMPLITUDE:
        return None
    dice = np.asarray(history.get("val_dice", ()), dtype=float)
    if len(dice) > 1 and np.all(np.isfinite(dice)) and dice[-1] >= dice.max():
        return None
    return _finding(
        "loss_oscillating",
        f"train loss changed direction in {changes:.0%} of the last {window} epochs, "
        f"by {amplitude:.0%} of its value on average",
    )


def _dice_overfitting(history: History) -> Diagnostic | None:
    dice = np.asarray(history.get("val_dice", ()), dtype=float)
    train = np.asarray(history.get("train_loss", ()), dtype=float)
    if len(dice) <= RECENT_VALIDATIONS or not np.all(np.isfinite(dice)) or not np.all(np.isfinite(train)):
        return None
    epochs = list(history.get("val_epoch", ())) or list(range(len(dice)))
    best = int(np.argmax(dice[:-RECENT_VALIDATIONS]))
    recent = float(dice[-RECENT_VALIDATIONS:].mean())
    since = train[max(int(epochs[best]), 0) :]
    if dice[best] - recent <= OVERFIT_DICE_DROP or len(since) < 3 or _trend(since) >= 0:
        return None
    at = "the starting weights" if epochs[best] < 0 else f"epoch {epochs[best]}"
    return _finding(
        "overfitting",
        f"val Dice fell to {recent:.2f} (mean of the last {RECENT_VALIDATIONS} validations) from "
        f"{dice[best]:.2f} at {at} while the train loss kept falling ({since[0]:.3g} -> {since[-1]:.3g})",
    )


def _overfitting(history: History, window: int) -> Diagnostic | None:
    found = _dice_overfitting(history)
    train, val = _series(history, "train_loss", window), _series(history, "val_loss", window)
    if found is not None or train is None or val is None:
        return found
    recent = val[-window:]
    rise = _trend(recent) / max(abs(recent.mean()), 1e-12)
    if _trend(train[-window:]) >= 0 or rise <= OVERFIT_RISE:
        return None
    return _finding(
        "overfitting", f"val loss rose {rise:.0%} in the last {window} epochs while train loss kept falling"
    )


def _underfitting(history: History, window: int) -> Diagnostic | None:
    train = _series(history, "train_loss", window)
    if train is not None and _progress(train) < MIN_PROGRESS:
        return None
    dice = _series(history, "val_dice", window)
    if dice is not None:
        recent = dice[-window:]
        if recent.mean() < LOW_DICE and _trend(recent) < FLAT:
            return _finding(
                "underfitting",
                f"val Dice is low ({recent.mean():.2f}) and has not improved in {window} epochs",
            )
        return None
    if train is None or train.min() <= HIGH_LOSS * train[0]:
        return None
    val = _series(history, "val_loss", window)
    if not all(_flat(s[-window:]) for s in (train, val) if s is not None):
        return None
    return _finding(
        "underfitting", f"loss flat for {window} epochs at {train[-1] / train[0]:.0%} of its initial value"
    )


def _exploding(history: History, grad_norms: Sequence[float] | None, window: int) -> Diagnostic | None:
    losses = np.asarray(history.get("train_loss", ()), dtype=float)
    norms = np.asarray(grad_norms if grad_norms is not None else (), dtype=float)
    if not np.all(np.isfinite(losses)) or not np.all(np.isfinite(norms)):
        return _finding("exploding_gradients", "train loss or gradient norm became NaN/inf", "error")
    if len(norms) < window:
        return None
    median, peak = float(np.median(norms)), float(norms[-window:].max())
    if peak <= GRAD_SPIKE * median:
        return None
    return _finding(
        "exploding_gradients", f"gradient norm {peak:.3g} is {peak / max(median, 1e-12):.0f}x the median"
    )


_RULES: tuple[Callable[[History, int], Diagnostic | None], ...] = (
    _not_decreasing,
    _oscillating,
    _overfitting,
    _underfitting,
)


def diagnose(
    history: History, grad_norms: Sequence[float] | None = None, oom: bool = False, window: int = WINDOW
) -> list[Diagnostic]:
    """Problems visible in ``history`` (per-epoch lists), ``grad_norms`` and the ``oom`` flag; [] if none."""
    if window < 3:
        raise ValueError(f"window must be >= 3, got {window}")
    found = [rule(history, window) for rule in _RULES]
    found.append(_exploding(history, grad_norms, window))
    if oom:
        found.append(_finding("out_of_memory", "training ran out of GPU memory", "error"))
    return [d for d in found if d is not None]
