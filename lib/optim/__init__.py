"""Optimizers and learning-rate schedulers keyed by name."""

from lib.optim.optimizers import DEFAULT_OPTIMIZER, OPTIMIZER_DEFAULTS, build_optimizer
from lib.optim.schedulers import SCHEDULER_DEFAULTS, Scheduler, WarmupPlateau, build_scheduler, scheduler_step

__all__ = [
    "DEFAULT_OPTIMIZER",
    "OPTIMIZER_DEFAULTS",
    "SCHEDULER_DEFAULTS",
    "Scheduler",
    "WarmupPlateau",
    "build_optimizer",
    "build_scheduler",
    "scheduler_step",
]
