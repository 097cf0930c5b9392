"""A model's current plan: fixed for a built-in preset, ``<model dir>/plan.json`` for a user model.

A user model has no plan until its first training fingerprints the labelled images
(:func:`lib.planning.planner.plan_model`). The stored plan keeps its grid and network when the
definition's labels change later (a label added on restart): its labels follow the definition, so
the next training has the new output channel and warm-starts the rest from the served version.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from lib.io.atomic import write_json_atomic
from lib.planning.definitions import ModelDefinition
from lib.planning.presets import ModelPreset


class PlanStore:
    """The plan of one model (``definition``) kept under ``root``."""

    def __init__(self, definition: ModelDefinition, root: str | os.PathLike) -> None:
        self.definition = definition
        self.path = Path(root) / "plan.json"

    def current(self) -> ModelPreset | None:
        """The plan to train with next: the preset, the stored plan with the definition's labels, or
        None when a user model has not been planned yet."""
        if self.definition.preset is not None:
            return self.definition.preset
        try:
            plan = ModelPreset.from_dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None
        if plan.labels != self.definition.labels:
            plan = replace(plan, labels=dict(self.definition.labels))
        return plan

    def save(self, plan: ModelPreset) -> None:
        """Persist ``plan`` atomically as ``plan.json``."""
        write_json_atomic(self.path, plan.to_dict())
