"""Load pretrained weights by name and shape, reporting what was skipped and why."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "network")


@dataclass
class LoadReport:
    """Outcome of ``load_pretrained``: loaded tensor names, model tensor count, skipped names with reasons."""

    loaded: list[str]
    total: int
    skipped: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        line = f"loaded {len(self.loaded)}/{self.total} tensors"
        if self.skipped:
            line += "; skipped " + ", ".join(f"{name} ({why})" for name, why in self.skipped.items())
        return line


def _unwrap(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
    """The state dict inside (possibly nested) checkpoint wrappers keyed by ``CHECKPOINT_KEYS``."""
    for key in CHECKPOINT_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            return _unwrap(checkpoint[key])
    return checkpoint


def _state_dict(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Tensors of a raw state dict or a checkpoint wrapping one, without a DDP ``module.`` prefix."""
    checkpoint = (
        source if isinstance(source, Mapping) else torch.load(source, map_location="cpu", weights_only=True)
    )
    state = {name: value for name, value in _unwrap(checkpoint).items() if isinstance(value, torch.Tensor)}
    consume_prefix_in_state_dict_if_present(state, "module.")
    return state


def load_pretrained(
    model: nn.Module, source: str | os.PathLike[str] | Mapping[str, Any], strict_shapes: bool = False
) -> LoadReport:
    """Copy every tensor of ``source`` whose name and shape match ``model``'s; skip the rest.

    ``source`` is a checkpoint path (loaded with ``weights_only=True``) or an in-memory dict: a
    raw state dict, or a checkpoint holding one under "state_dict", "model_state_dict", "model"
    or "network", optionally with a DDP ``module.`` prefix. Skipped names are reported as
    "missing in checkpoint", "unexpected in checkpoint" or "shape mismatch (ckpt) vs (model)".
    By default mismatched tensors are skipped and reported (e.g. fine-tuning with a different
    number of output channels); ``strict_shapes=True`` raises ``ValueError`` on any shape mismatch
    before anything is loaded (guarding against a wrong checkpoint, e.g. a model upload).
    """
    checkpoint = _state_dict(source)
    target = model.state_dict()
    loadable, skipped, mismatched = {}, {}, []
    for name, tensor in target.items():
        if name not in checkpoint:
            skipped[name] = "missing in checkpoint"
        elif checkpoint[name].shape != tensor.shape:
            skipped[name] = f"shape mismatch {tuple(checkpoint[name].shape)} vs {tuple(tensor.shape)}"
            mismatched.append(name)
        else:
            loadable[name] = checkpoint[name]
    skipped.update(dict.fromkeys(sorted(checkpoint.keys() - target.keys()), "unexpected in checkpoint"))
    if strict_shapes and mismatched:
        details = ", ".join(f"{name} ({skipped[name]})" for name in mismatched)
        raise ValueError(
            f"checkpoint shapes differ from the model: {details}; pass strict_shapes=False to skip them"
        )
    model.load_state_dict(loadable, strict=False)
    return LoadReport(loaded=list(loadable), total=len(target), skipped=skipped)
