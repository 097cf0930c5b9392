"""Optimizer factory keyed by name, with documented defaults.

Defaults (``OPTIMIZER_DEFAULTS``):

* ``adamw`` (recommended): lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01
* ``adam``: lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-5
* ``sgd``: lr 0.01, momentum 0.9, weight_decay 1e-4, nesterov True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

DEFAULT_OPTIMIZER = "adamw"

OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adamw": {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
    "adam": {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-5},
    "sgd": {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": True},
}

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}


def build_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
    lr: float | None = None,
    weight_decay: float | None = None,
    **overrides: Any,
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``params``; ``None`` keeps a default, ``overrides`` replace others.

    Raises ``ValueError`` for an unknown name (the message lists the valid ones).
    """
    key = name.lower()
    if key not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(sorted(_OPTIMIZERS))}")
    kwargs = {**OPTIMIZER_DEFAULTS[key], **overrides}
    if lr is not None:
        kwargs["lr"] = lr
    if weight_decay is not None:
        kwargs["weight_decay"] = weight_decay
    return _OPTIMIZERS[key](params, **kwargs)
