"""Per-epoch learning-rate schedulers keyed by name, with optional linear warm-up.

Defaults (``SCHEDULER_DEFAULTS``), all stepped once per epoch:

* ``cosine``: :class:`ProgressCosine`, eta_min 1e-6: the cosine of ``CosineAnnealingLR`` with
  ``T_max = epochs - warmup_epochs``, or, when the caller passes the run's progress (e.g. the share of a
  time budget spent), the same curve over that progress, so it ends where the run ends
* ``cosine_restarts``: ``CosineAnnealingWarmRestarts`` with T_0 10, T_mult 2, eta_min 1e-6
* ``plateau``: ``ReduceLROnPlateau`` on validation Dice (mode "max"), factor 0.5, patience 10,
  threshold 1e-4, threshold_mode "abs"

Warm-up ramps the LR linearly from ``warmup_start_factor * base_lr`` (epoch 0) to ``base_lr``
(epoch ``warmup_epochs``), after which the named schedule starts from ``base_lr``. For ``plateau``
the metrics seen during warm-up are ignored. Call ``scheduler_step(scheduler, metric)`` after each
epoch (and ``progress``, the fraction of the run done, where the run has a time budget) so the
training loop need not know which kind it holds.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import (
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


class ProgressCosine:
    """Linear warm-up for ``warmup_epochs`` steps, then a cosine from ``base_lr`` to ``eta_min`` over the
    run's progress.

    ``step(progress)`` advances one epoch; ``progress`` is the fraction of the run done after it (the
    larger of the epoch share and the time-budget share, as the caller measures it), by default
    ``epoch / epochs``. After warm-up the cosine runs over the progress left when warm-up ended, so with
    the default it is exactly ``CosineAnnealingLR(T_max=epochs - warmup_epochs)``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        epochs: int,
        warmup_epochs: int,
        start_factor: float,
        eta_min: float,
    ) -> None:
        self.optimizer = optimizer
        self.epochs, self.warmup_epochs, self.start_factor, self.eta_min = (
            epochs,
            warmup_epochs,
            start_factor,
            eta_min,
        )
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.epoch = 0
        self.warm_progress = warmup_epochs / epochs
        self._apply(0.0)

    def _apply(self, cosine_progress: float) -> None:
        if self.epoch < self.warmup_epochs:
            factor = self.start_factor + (1 - self.start_factor) * self.epoch / self.warmup_epochs
            lrs = [base * factor for base in self.base_lrs]
        else:
            c = (1 + math.cos(math.pi * min(max(cosine_progress, 0.0), 1.0))) / 2
            lrs = [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr

    def step(self, progress: float | None = None) -> None:
        """Advance one epoch; ``progress`` in [0, 1] is the fraction of the run done."""
        self.epoch += 1
        done = self.epoch / self.epochs if progress is None else float(progress)
        if self.epoch == self.warmup_epochs:
            self.warm_progress = done
        self._apply((done - self.warm_progress) / max(1 - self.warm_progress, 1e-12))

    def get_last_lr(self) -> list[float]:
        """Current learning rate of each parameter group."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """State for checkpointing."""
        return {"epoch": self.epoch, "warm_progress": self.warm_progress, "base_lrs": self.base_lrs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()``."""
        self.epoch, self.warm_progress, self.base_lrs = (
            state["epoch"],
            state["warm_progress"],
            state["base_lrs"],
        )


Scheduler = LRScheduler | ReduceLROnPlateau | WarmupPlateau | ProgressCosine


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
        return ProgressCosine(optimizer, epochs, warmup_epochs, warmup_start_factor, **kwargs)
    main = CosineAnnealingWarmRestarts(optimizer, **kwargs)
    if warmup_epochs == 0:
        return main
    warmup = LinearLR(optimizer, start_factor=warmup_start_factor, total_iters=warmup_epochs)
    return SequentialLR(optimizer, [warmup, main], milestones=[warmup_epochs])


def needs_metric(scheduler: Scheduler) -> bool:
    """True for the plateau kinds, which step on the validation metric."""
    return isinstance(scheduler, ReduceLROnPlateau | WarmupPlateau)


def scheduler_step(scheduler: Scheduler, metric: float | None = None, progress: float | None = None) -> None:
    """Step ``scheduler`` once per epoch, passing ``metric`` (validation Dice) and ``progress`` (fraction
    of the run done) only where they are used."""
    if needs_metric(scheduler):
        if metric is None:
            raise ValueError("a plateau scheduler needs the validation metric")
        scheduler.step(metric)
    elif isinstance(scheduler, ProgressCosine):
        scheduler.step(progress)
    else:
        scheduler.step()
