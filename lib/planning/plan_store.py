"""A model's current plan: fixed for a built-in preset, ``<model dir>/plan.json`` for a user model.

A user model has no plan until its first training fingerprints the labelled images
(:func:`lib.planning.planner.plan_model`). The stored plan keeps its grid and network when the
definition's labels change later (a label added on restart): its labels follow the definition, so
the next training has the new output channel and warm-starts the rest from the served version.
A model's interactive twin reads and writes the same plan (:func:`~lib.planning.presets.interactive_twin`
of it), so the two always share grid, normalisation and network.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from lib.io.atomic import write_json_atomic
from lib.planning.definitions import ModelDefinition
from lib.planning.presets import TWIN_SUFFIX, ModelPreset, interactive_twin


class PlanStore:
    """The plan of one model (``definition``) kept under ``root``; with ``interactive``, the plan of
    its click-guided twin (named ``definition.name + TWIN_SUFFIX``)."""

    def __init__(
        self, definition: ModelDefinition, root: str | os.PathLike, interactive: bool = False
    ) -> None:
        self.definition = definition
        self.path = Path(root) / "plan.json"
        self.interactive = interactive

    @property
    def name(self) -> str:
        """The served model's name: the definition's, or its twin's."""
        return self.definition.name + (TWIN_SUFFIX if self.interactive else "")

    def current(self) -> ModelPreset | None:
        """The plan to train with next: the preset, the stored plan with the definition's labels, or
        None when a user model has not been planned yet."""
        plan = self.definition.preset
        if plan is None:
            try:
                plan = ModelPreset.from_dict(json.loads(self.path.read_text()))
            except FileNotFoundError:
                return None
            if plan.labels != self.definition.labels:
                plan = replace(plan, labels=dict(self.definition.labels))
        return interactive_twin(plan) if self.interactive else plan

    def save(self, plan: ModelPreset) -> None:
        """Persist ``plan`` (a user model's, not its twin's) atomically as ``plan.json``."""
        if plan.interactive:
            raise ValueError("save the segmentation model's plan; its twin is derived from it")
        write_json_atomic(self.path, plan.to_dict())
