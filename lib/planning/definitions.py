"""Model definitions: what a user declares (a name, its labels, optionally the modality), before any
plan exists, and how the app's ``--conf`` values and a definitions file turn into them.

>>> parse_labels("parotid_left, parotid_right,mandible")
{'parotid_left': 1, 'parotid_right': 2, 'mandible': 3}
>>> parse_labels('{"liver": 1, "tumour": 2}')
{'liver': 1, 'tumour': 2}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lib.io.options import parse_bool
from lib.planning.presets import MODALITIES, PRESETS, TWIN_SUFFIX, ModelPreset

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ModelDefinition:
    """A model to serve: a built-in ``preset`` (a hand-written plan), or a user's own labels that get
    a plan from the data at the first training (``modality`` None = inferred then)."""

    name: str
    labels: dict[str, int]
    modality: str | None = None
    description: str = ""
    n4: bool = False
    preset: ModelPreset | None = None

    @property
    def planned_from_data(self) -> bool:
        """True for user models (planned at the first training), False for built-in presets."""
        return self.preset is None


def check_model_name(name: str) -> str:
    """``name`` if usable in URLs and folder names (letters, digits, ``_.-``; at most 64) and not a
    twin's name (ending in ``TWIN_SUFFIX``), else ValueError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"model name {name!r}: use letters, digits, '_', '-', '.' (at most 64)")
    if name.endswith(TWIN_SUFFIX):
        raise ValueError(
            f"model name {name!r}: names ending in {TWIN_SUFFIX!r} are its twin's; choose another"
        )
    return name


def parse_labels(value: str | Mapping[str, Any] | list) -> dict[str, int]:
    """Labels from ``a,b,c`` (values 1..N in that order), a JSON object ``{"a": 1, ...}`` (MONAI
    Label's convention) or a list; values must be 1..N, names unique and not ``background``."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"labels: malformed JSON ({e})") from None
        else:
            value = [n.strip() for n in text.split(",")]
    if isinstance(value, list):
        value = {str(n): i for i, n in enumerate(value, start=1)}
    if not isinstance(value, Mapping) or not value:
        raise ValueError('labels: give names as a,b,c or a JSON object {"a": 1, ...}')
    labels: dict[str, int] = {}
    for name, number in value.items():
        name = str(name).strip()
        if not name or name.lower() == "background":
            raise ValueError(f"labels: invalid name {name!r} (empty, or 'background', which is 0)")
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"labels: value of {name!r} must be an integer, got {number!r}")
        labels[name] = number
    if len(labels) != len(value) or sorted(labels.values()) != list(range(1, len(labels) + 1)):
        raise ValueError(f"labels: need unique names with values 1..N, got {dict(value)}")
    return dict(sorted(labels.items(), key=lambda kv: kv[1]))


def parse_modality(value: str | None) -> str | None:
    """``CT``/``MR``/``XR`` (any case), or None for "infer from the data"."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return None
    modality = str(value).strip().upper()
    if modality not in MODALITIES:
        raise ValueError(f"modality {value!r}: valid {', '.join(MODALITIES)} or auto")
    return modality


def user_definition(name: str, spec: Mapping[str, Any]) -> ModelDefinition:
    """A user model from a definitions-file entry or ``--conf`` values (``labels``, optional
    ``modality``, ``description``, ``n4``)."""
    check_model_name(name)
    if name in PRESETS:
        raise ValueError(f"{name!r} is a built-in model; give your own model another name")
    unknown = set(spec) - {"labels", "modality", "description", "n4"}
    if unknown:
        raise ValueError(f"model {name!r}: unknown keys {sorted(unknown)}")
    if "labels" not in spec:
        raise ValueError(f"model {name!r}: declare its labels (e.g. --conf labels a,b,c)")
    try:
        n4 = parse_bool(spec.get("n4", False))
    except ValueError as e:
        raise ValueError(f"model {name!r}: n4: {e}") from None
    return ModelDefinition(
        name=name,
        labels=parse_labels(spec["labels"]),
        modality=parse_modality(spec.get("modality")),
        description=str(spec.get("description", "")),
        n4=n4,
    )


def preset_definition(preset: ModelPreset) -> ModelDefinition:
    """A built-in preset as a definition."""
    return ModelDefinition(
        preset.name, dict(preset.labels), preset.modality, preset.description, preset=preset
    )


def read_definitions_file(path: str) -> dict[str, dict[str, Any]]:
    """A definitions file: JSON ``{"models": {"<name>": {"labels": ..., "modality": ...}, ...}}`` (or the
    inner mapping alone)."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except OSError as e:
        raise ValueError(f"models_file {path!r}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"models_file {path!r}: malformed JSON ({e})") from None
    models = data.get("models", data) if isinstance(data, dict) else None
    if not isinstance(models, dict) or not models or not all(isinstance(v, dict) for v in models.values()):
        raise ValueError(f'models_file {path!r}: expected {{"models": {{name: {{"labels": ...}}}}}}')
    return models


def resolve_definitions(conf: Mapping[str, str]) -> list[ModelDefinition]:
    """The models to serve from the app's ``--conf`` values.

    ``models`` (comma list, or ``all`` for every built-in preset; default: the definitions file's
    models, else ``ct_organs``); ``labels`` (+ ``modality``, ``n4``) declare the one named model that is
    not a built-in preset; ``models_file`` declares several. Raises ``ValueError`` naming the problem.
    """
    declared = read_definitions_file(conf["models_file"]) if conf.get("models_file") else {}
    labels = conf.get("labels")
    default = ",".join(declared) if declared else "ct_organs"
    names_conf = conf.get("models") or default
    if names_conf.strip() == "all":
        names = list(PRESETS) + list(declared)
    else:
        names = [n.strip() for n in names_conf.split(",") if n.strip()]
    if not names:
        raise ValueError("models: name at least one model")
    own = [n for n in names if n not in PRESETS and n not in declared]
    if labels is not None and len(own) != 1:
        raise ValueError(
            "labels: name exactly one model of your own with --conf models NAME "
            f"(got {own or 'none'}; built-in: {', '.join(PRESETS)})"
        )
    if labels is None and own:
        raise ValueError(
            f"unknown model(s) {own}; valid: {', '.join(PRESETS)}, all, or declare your own with "
            "--conf labels a,b,c (or --conf models_file FILE)"
        )
    definitions = []
    for name in dict.fromkeys(names):
        if name in declared:
            definitions.append(user_definition(name, declared[name]))
        elif name in PRESETS:
            definitions.append(preset_definition(PRESETS[name]))
        else:
            spec = {"labels": labels, "modality": conf.get("modality"), "n4": conf.get("n4", False)}
            definitions.append(user_definition(name, spec))
    return definitions
