"""Early stopping on a validation metric."""

from __future__ import annotations

import math
from typing import Any, Literal


class EarlyStopping:
    """Stop when the metric has not improved for ``patience`` consecutive steps.

    Improvement means ``value > best + min_delta`` (mode "max") or ``value < best - min_delta``
    (mode "min"); the first finite value is always an improvement and NaN never is. An improvement
    resets ``counter`` to 0 and records ``best`` and ``best_epoch`` (0-based index of the ``step``
    call); otherwise ``counter`` grows by one. ``step`` returns True, and ``stopped`` becomes
    (and stays) True, once ``counter >= patience``; with ``patience`` None it only tracks the best.
    """

    def __init__(
        self, patience: int | None = 20, min_delta: float = 0.0, mode: Literal["max", "min"] = "max"
    ) -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.best: float | None = None
        self.best_epoch = -1
        self.counter = 0
        self.stopped = False
        self.epoch = -1

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def step(self, value: float) -> bool:
        """Record this epoch's metric; True means stop training."""
        value = float(value)
        self.epoch += 1
        if self._improves(value):
            self.best, self.best_epoch, self.counter = value, self.epoch, 0
        else:
            self.counter += 1
        self.stopped = self.stopped or (self.patience is not None and self.counter >= self.patience)
        return self.stopped

    def state_dict(self) -> dict[str, Any]:
        """Progress state for checkpointing (the configuration is not included)."""
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "counter": self.counter,
            "stopped": self.stopped,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()``."""
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.counter = state["counter"]
        self.stopped = state["stopped"]
        self.epoch = state["epoch"]
