"""Patient-level train/val/test split, persisted so earlier assignments never move.

Each item (a path string, or a dict with an ``"image"`` path) belongs to a patient, identified by,
in order: the item's ``"patient_id"`` key (e.g. a DICOM PatientID the caller read), the
``patient_pattern`` regex searched in the file name (named group ``patient``, else group 1, else
the whole match), or, as a fallback with a warning, the image itself (one patient per image).

Assignments live in a JSON file ``{"patients": {patient_id: subset}, ...}``, written atomically.
On every ``assign`` call only patients absent from that file are placed: they fill what the
subsets lack of their target sizes for the new total, val first, then test, the rest train, in an
order given by a seeded hash of the patient id (deterministic, independent of input order).
Target sizes for ``n`` patients: ``val_fraction * n`` and ``test_fraction * n`` rounded half up,
but at least 1 val when ``n >= 2`` (and ``val_fraction > 0``), and train keeps at least one
patient; so with few patients test may be 0 (n < 5 at the default 0.1), two patients split 1 train /
1 val (model selection needs a case the model never saw), and a single patient trains without
validation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lib.io.atomic import write_json_atomic

logger = logging.getLogger(__name__)

SUBSETS = ("train", "val", "test")
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".dcm", ".npz", ".npy")

Item = str | dict[str, Any]


def image_name(item: Item) -> str:
    """File name of an item (a path, or a dict's ``"image"`` path)."""
    path = item if isinstance(item, str) else str(item["image"])
    return os.path.basename(os.path.normpath(path))


def _strip_suffix(name: str) -> str:
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """Target subset sizes for ``n`` patients (see the module docstring)."""
    val = math.floor(val_fraction * n + 0.5)
    if n >= 2 and val_fraction > 0:
        val = max(val, 1)
    val = min(val, max(n - 1, 0))
    test = min(math.floor(test_fraction * n + 0.5), max(n - 1 - val, 0))
    return {"train": n - val - test, "val": val, "test": test}


class PatientSplit:
    """Persistent, seeded, patient-level train/val/test assignment stored in the JSON file ``path``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        val_fraction: float = 0.2,
        test_fraction: float = 0.1,
        seed: int = 0,
        patient_pattern: str | re.Pattern[str] | None = None,
    ) -> None:
        if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
            raise ValueError(
                f"need fractions >= 0 with a sum below 1, got {val_fraction} and {test_fraction}"
            )
        self.path = Path(path)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.pattern = re.compile(patient_pattern) if isinstance(patient_pattern, str) else patient_pattern

    def patient_of(self, item: Item) -> str | None:
        """Patient id of ``item`` from its ``"patient_id"`` or the filename pattern; None if neither."""
        if isinstance(item, dict) and item.get("patient_id"):
            return str(item["patient_id"])
        match = self.pattern.search(image_name(item)) if self.pattern else None
        if match is None:
            return None
        if "patient" in match.groupdict():
            return match.group("patient")
        return match.group(1) if match.re.groups else match.group(0)

    def load(self) -> dict[str, str]:
        """Stored ``{patient_id: subset}`` (empty when the file does not exist yet)."""
        if not self.path.exists():
            return {}
        return dict(json.loads(self.path.read_text())["patients"])

    def _save(self, patients: dict[str, str]) -> None:
        payload = {
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "patients": dict(sorted(patients.items())),
        }
        write_json_atomic(self.path, payload)

    def _order_key(self, patient: str) -> str:
        return hashlib.sha256(f"{self.seed}:{patient}".encode()).hexdigest()

    def _place(self, known: dict[str, str], new: Sequence[str]) -> dict[str, str]:
        counts = {subset: sum(s == subset for s in known.values()) for subset in SUBSETS}
        targets = split_sizes(len(known) + len(new), self.val_fraction, self.test_fraction)
        placed = {}
        queue = sorted(new, key=self._order_key)
        for subset in ("val", "test"):
            take = max(targets[subset] - counts[subset], 0)
            placed.update(dict.fromkeys(queue[:take], subset))
            queue = queue[take:]
        placed.update(dict.fromkeys(queue, "train"))
        return placed

    def assign(self, items: Sequence[Item]) -> dict[str, list[Item]]:
        """Split ``items`` into "train"/"val"/"test" lists (input order kept), placing new patients."""
        patient_ids = []
        fallbacks = 0
        for item in items:
            patient = self.patient_of(item)
            if patient is None:
                fallbacks += 1
                patient = _strip_suffix(image_name(item))
            patient_ids.append(patient)
        if fallbacks:
            message = (
                f"{fallbacks}/{len(items)} images have no patient id (no 'patient_id', no pattern match): "
                "each counts as its own patient"
            )
            warnings.warn(message, stacklevel=2)
            logger.warning(message)

        known = self.load()
        new = sorted(set(patient_ids) - set(known))
        if new or not self.path.exists():
            known.update(self._place(known, new))
            self._save(known)
        split: dict[str, list[Item]] = {subset: [] for subset in SUBSETS}
        for item, patient in zip(items, patient_ids, strict=True):
            split[known[patient]].append(item)
        return split
