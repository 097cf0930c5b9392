"""Optimizer factory keyed by name, with documented defaults.

Defaults (``OPTIMIZER_DEFAULTS``; the learning rate is the caller's, see ``lib.training.config``):

* ``adamw`` (recommended): betas (0.9, 0.999), eps 1e-8, weight_decay 0.01
* ``adam``: betas (0.9, 0.999), eps 1e-8, weight_decay 1e-5
* ``sgd``: momentum 0.9, weight_decay 1e-4, nesterov True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adamw": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-5},
    "sgd": {"momentum": 0.9, "weight_decay": 1e-4, "nesterov": True},
}

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}


def build_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
    lr: float,
    weight_decay: float | None = None,
    **overrides: Any,
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``params`` at learning rate ``lr``; ``weight_decay`` None keeps the
    default, ``overrides`` replace the others.

    Raises ``ValueError`` for an unknown name (the message lists the valid ones).
    """
    key = name.lower()
    if key not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(sorted(_OPTIMIZERS))}")
    kwargs = {**OPTIMIZER_DEFAULTS[key], **overrides, "lr": lr}
    if weight_decay is not None:
        kwargs["weight_decay"] = weight_decay
    return _OPTIMIZERS[key](params, **kwargs)
