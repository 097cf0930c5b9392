"""Per-epoch learning-rate schedulers keyed by name, with optional linear warm-up.

Defaults (``SCHEDULER_DEFAULTS``), all stepped once per epoch:

* ``cosine``: ``CosineAnnealingLR`` with ``T_max = epochs - warmup_epochs``, eta_min 1e-6
* ``cosine_restarts``: ``CosineAnnealingWarmRestarts`` with T_0 10, T_mult 2, eta_min 1e-6
* ``plateau``: ``ReduceLROnPlateau`` on validation Dice (mode "max"), factor 0.5, patience 10,
  threshold 1e-4, threshold_mode "abs"

Warm-up ramps the LR linearly from ``warmup_start_factor * base_lr`` (epoch 0) to ``base_lr``
(epoch ``warmup_epochs``), after which the named schedule starts from ``base_lr``. For ``plateau``
the metrics seen during warm-up are ignored. Call ``scheduler_step(scheduler, metric)`` after each
epoch so the training loop need not know which kind it holds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    LinearLR,
    LRScheduler,
    ReduceLROnPlateau,
    SequentialLR,
)

SCHEDULER_DEFAULTS: dict[str, dict[str, Any]] = {
    "cosine": {"eta_min": 1e-6},
    "cosine_restarts": {"T_0": 10, "T_mult": 2, "eta_min": 1e-6},
    "plateau": {"mode": "max", "factor": 0.5, "patience": 10, "threshold": 1e-4, "threshold_mode": "abs"},
}


class WarmupPlateau:
    """Linear warm-up for ``warmup_epochs`` steps, then ``ReduceLROnPlateau``; same ``step(metric)`` API."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, warmup_epochs: int, start_factor: float, **plateau: Any
    ) -> None:
        self.optimizer = optimizer
        self.plateau = ReduceLROnPlateau(optimizer, **plateau)
        self.warmup = LinearLR(optimizer, start_factor=start_factor, total_iters=warmup_epochs)
        self.warmup_epochs = warmup_epochs
        self.epoch = 0

    def step(self, metric: float) -> None:
        """Advance one epoch; ``metric`` is ignored while warming up."""
        self.epoch += 1
        if self.epoch <= self.warmup_epochs:
            self.warmup.step()
        else:
            self.plateau.step(metric)

    def get_last_lr(self) -> list[float]:
        """Current learning rate of each parameter group."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """State for checkpointing."""
        return {"epoch": self.epoch, "warmup": self.warmup.state_dict(), "plateau": self.plateau.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()``."""
        self.epoch = state["epoch"]
        self.warmup.load_state_dict(state["warmup"])
        self.plateau.load_state_dict(state["plateau"])


Scheduler = LRScheduler | ReduceLROnPlateau | WarmupPlateau


def build_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    warmup_epochs: int = 0,
    warmup_start_factor: float = 0.1,
    **overrides: Any,
) -> Scheduler:
    """Build per-epoch scheduler ``name``; ``overrides`` replace entries of ``SCHEDULER_DEFAULTS[name]``."""
    key = name.lower()
    if key not in SCHEDULER_DEFAULTS:
        raise ValueError(f"unknown scheduler {name!r}; valid: {', '.join(sorted(SCHEDULER_DEFAULTS))}")
    if not 0 <= warmup_epochs < epochs:
        raise ValueError(f"need 0 <= warmup_epochs < epochs, got {warmup_epochs} and {epochs}")
    kwargs = {**SCHEDULER_DEFAULTS[key], **overrides}
    if key == "plateau":
        if warmup_epochs == 0:
            return ReduceLROnPlateau(optimizer, **kwargs)
        return WarmupPlateau(optimizer, warmup_epochs, warmup_start_factor, **kwargs)
    if key == "cosine":
        main: LRScheduler = CosineAnnealingLR(optimizer, T_max=epochs - warmup_epochs, **kwargs)
    else:
        main = CosineAnnealingWarmRestarts(optimizer, **kwargs)
    if warmup_epochs == 0:
        return main
    warmup = LinearLR(optimizer, start_factor=warmup_start_factor, total_iters=warmup_epochs)
    return SequentialLR(optimizer, [warmup, main], milestones=[warmup_epochs])


def needs_metric(scheduler: Scheduler) -> bool:
    """True for the plateau kinds, which step on the validation metric."""
    return isinstance(scheduler, ReduceLROnPlateau | WarmupPlateau)


def scheduler_step(scheduler: Scheduler, metric: float | None = None) -> None:
    """Step ``scheduler`` once per epoch, passing ``metric`` (validation Dice) only where it is used."""
    if needs_metric(scheduler):
        if metric is None:
            raise ValueError("a plateau scheduler needs the validation metric")
        scheduler.step(metric)
    else:
        scheduler.step()
