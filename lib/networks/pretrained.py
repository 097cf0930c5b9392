"""Load pretrained weights by name and shape, reporting what was skipped and why."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
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
    new_labels: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        line = f"loaded {len(self.loaded)}/{self.total} tensors"
        if self.new_labels:
            line += f"; output channels of new labels start fresh: {', '.join(self.new_labels)}"
        if self.widened:
            line += f"; added input channels start at zero in {', '.join(self.widened)}"
        if self.skipped:
            line += "; skipped " + ", ".join(f"{name} ({why})" for name, why in self.skipped.items())
        return line


def _unwrap(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
    """The state dict inside (possibly nested) checkpoint wrappers keyed by ``CHECKPOINT_KEYS``."""
    for key in CHECKPOINT_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            return _unwrap(checkpoint[key])
    return checkpoint


def _state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Tensors of a raw state dict or a checkpoint wrapping one, without a DDP ``module.`` prefix."""
    state = {name: value for name, value in _unwrap(checkpoint).items() if isinstance(value, torch.Tensor)}
    consume_prefix_in_state_dict_if_present(state, "module.")
    return state


def _label_channels(
    source: torch.Tensor, target: torch.Tensor, old: Mapping[str, int], new: Mapping[str, int]
) -> torch.Tensor | None:
    """``target`` with the output channels of labels both label sets share copied from ``source``
    (background included), or None when the tensors differ in anything but label-channel axes."""
    if source.ndim != target.ndim:
        return None
    axes = [d for d in range(target.ndim) if source.shape[d] != target.shape[d]]
    if any(source.shape[d] != len(old) + 1 or target.shape[d] != len(new) + 1 for d in axes):
        return None
    shared = [(0, 0)] + [(new[name], old[name]) for name in new if name in old]

    def grid(pick: int) -> tuple[torch.Tensor, ...]:  # every combination of shared channels
        ranges = [
            [p[pick] for p in shared] if d in axes else range(target.shape[d]) for d in range(target.ndim)
        ]
        return tuple(torch.as_tensor(i) for i in np.ix_(*ranges))

    out = target.clone()
    out[grid(0)] = source[grid(1)].to(target.dtype)
    return out


def _widened_inputs(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """``target``-shaped weights whose first input channel is ``source``'s and whose added ones are
    zero, when ``source`` reads one channel (the image) and ``target`` more, and nothing else differs;
    else None (e.g. an output layer's label axis).
    A network given extra inputs this way (e.g. click guidance beside the image) computes exactly what
    the source network did while those inputs are zero.

    >>> _widened_inputs(torch.ones(2, 1, 3), torch.empty(2, 3, 3))[0].tolist()
    [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    >>> _widened_inputs(torch.ones(2, 3, 3), torch.empty(2, 4, 3)) is None
    True
    """
    if source.ndim != target.ndim or source.ndim < 2 or source.shape[1] != 1 or target.shape[1] == 1:
        return None
    if source.shape[:1] + source.shape[2:] != target.shape[:1] + target.shape[2:]:
        return None
    out = torch.zeros_like(target)
    out[:, : source.shape[1]] = source.to(target.dtype)
    return out


def load_pretrained(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, Any],
    strict_shapes: bool = False,
    labels: Mapping[str, int] | None = None,
) -> LoadReport:
    """Copy every tensor of ``source`` whose name and shape match ``model``'s; skip the rest.

    ``source`` is a checkpoint path (loaded with ``weights_only=True``) or an in-memory dict: a
    raw state dict, or a checkpoint holding one under "state_dict", "model_state_dict", "model"
    or "network", optionally with a DDP ``module.`` prefix. Skipped names are reported as
    "missing in checkpoint", "unexpected in checkpoint" or "shape mismatch (ckpt) vs (model)".
    By default mismatched tensors are skipped and reported (e.g. fine-tuning with a different
    number of output channels); ``strict_shapes=True`` raises ``ValueError`` on any shape mismatch
    before anything is loaded (guarding against a wrong checkpoint, e.g. a model upload).

    ``labels`` (the model's label names -> output channels) with a checkpoint that records its own
    (``labels`` or ``plan["labels"]``): output-layer tensors that differ only in their label axes
    keep the channels of the labels both share (matched by name) and new labels start fresh, e.g.
    after a label was added to a model. Without it, a label-set change just skips those tensors.
    Input-layer tensors of a model with more input channels than the checkpoint's (an interactive
    twin started from its segmentation model) keep the checkpoint's channels and start the added ones
    at zero (reported as widened), so the model starts out computing what the checkpoint did.
    """
    raw = source if isinstance(source, Mapping) else torch.load(source, map_location="cpu", weights_only=True)
    checkpoint = _state_dict(raw)
    old_labels = raw.get("labels") or (raw.get("plan") or {}).get("labels")
    remap = labels is not None and old_labels is not None and dict(old_labels) != dict(labels)
    target = model.state_dict()
    loadable, skipped, mismatched, widened = {}, {}, [], []
    for name, tensor in target.items():
        differs = name in checkpoint and checkpoint[name].shape != tensor.shape
        merged = _label_channels(checkpoint[name], tensor, old_labels, labels) if remap and differs else None
        wide = _widened_inputs(checkpoint[name], tensor) if differs and merged is None else None
        if merged is not None:
            loadable[name] = merged
        elif wide is not None and not strict_shapes:
            loadable[name] = wide
            widened.append(name)
        elif name not in checkpoint:
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
    new = [name for name in labels if name not in old_labels] if remap else []
    return LoadReport(
        loaded=list(loadable), total=len(target), skipped=skipped, new_labels=new, widened=widened
    )
