"""What a training run produced: per-epoch statistics, the selected weights and notes in words."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lib.training.config import TrainConfig


@dataclass
class EpochStats:
    """What one epoch produced (validation fields are None on epochs without validation)."""

    epoch: int
    train_loss: float
    lr: float
    grad_norm: float
    seconds: float
    patches: int = 0
    val_loss: float | None = None
    val_dice: dict[str, float] | None = None
    val_iou: dict[str, float] | None = None
    val_mean_dice: float | None = None


@dataclass
class TrainResult:
    """The history, the best epoch and the best weights of a finished (or stopped) training.

    ``best_epoch`` is -1 when no trained epoch beat the starting weights on validation (then
    ``best_state`` is the starting weights); ``baseline_dice`` is the starting weights' mean val Dice.
    ``last_state``: the weights after the last trained epoch (None when none finished, or out of memory).
    ``stop_reason``: "max_epochs", "early_stop", "time_budget", "cancelled" or "out_of_memory".
    ``notes`` say in words what was published and why, for ``train_stats``.
    """

    epochs: list[EpochStats] = field(default_factory=list)
    best_epoch: int = -1
    best_dice: float = float("nan")
    baseline_dice: float = float("nan")
    best_state: dict[str, torch.Tensor] | None = None
    last_state: dict[str, torch.Tensor] | None = None
    stop_reason: str = "max_epochs"
    planned_epochs: int = 0
    val_interval: int = 0
    diagnostics: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def cancelled(self) -> bool:
        """True when the caller asked the run to stop."""
        return self.stop_reason == "cancelled"

    @property
    def stopped_early(self) -> bool:
        """True when early stopping ended the run."""
        return self.stop_reason == "early_stop"

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable view (without weights)."""
        return {
            "epochs": [asdict(e) for e in self.epochs],
            "best_epoch": self.best_epoch,
            "best_dice": self.best_dice,
            "baseline_dice": self.baseline_dice,
            "stop_reason": self.stop_reason,
            "stopped_early": self.stopped_early,
            "cancelled": self.cancelled,
            "planned_epochs": self.planned_epochs,
            "val_interval": self.val_interval,
            "diagnostics": self.diagnostics,
            "notes": self.notes,
        }


def run_notes(result: TrainResult, cfg: TrainConfig, validated: bool) -> list[str]:
    """What the run kept and why, in words for train_stats."""
    notes = []
    if result.stop_reason == "time_budget":
        notes.append(
            f"stopped at the time budget (max_minutes {cfg.max_minutes:g}) after {len(result.epochs)} "
            f"of {result.planned_epochs} planned epochs; the learning rate had decayed to its end"
        )
    if result.stop_reason == "out_of_memory":
        notes.append(
            "out of memory: see the out_of_memory diagnostic"
            + (
                "; nothing is published"
                if result.best_state is None
                else "; the best epoch before it is kept"
            )
        )
    elif not validated and result.best_state is not None:
        notes.append(
            "no validation case (label one more image to get one): the last epoch's weights are "
            "kept unvalidated"
        )
    elif result.best_epoch < 0 and result.best_state is not None:
        notes.append(
            f"no trained epoch beat the starting weights on validation (mean Dice "
            f"{result.baseline_dice:.4f}): the starting weights are kept unchanged"
        )
    elif result.best_state is not None:
        notes.append(
            f"kept epoch {result.best_epoch}: mean val Dice {result.best_dice:.4f} (starting "
            f"weights {result.baseline_dice:.4f})"
        )
    return notes
