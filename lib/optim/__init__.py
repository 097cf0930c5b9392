"""Optimizers and learning-rate schedulers keyed by name."""

from lib.optim.optimizers import OPTIMIZER_DEFAULTS, build_optimizer
from lib.optim.schedulers import (
    SCHEDULER_DEFAULTS,
    ProgressCosine,
    Scheduler,
    WarmupPlateau,
    build_scheduler,
    scheduler_step,
)

__all__ = [
    "OPTIMIZER_DEFAULTS",
    "SCHEDULER_DEFAULTS",
    "ProgressCosine",
    "Scheduler",
    "WarmupPlateau",
    "build_optimizer",
    "build_scheduler",
    "scheduler_step",
]
