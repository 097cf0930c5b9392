"""The app's ``--conf`` options: one typed dataclass holds each option's default and meaning.

``monailabel start_server ... --conf key value`` hands every value over as a string;
:meth:`AppConfig.from_conf` converts and checks them (``ValueError`` naming the option), and the
README's options table lists exactly these fields.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from lib.inference.backends import BACKEND_CHOICES
from lib.io.options import Options
from lib.io.options import option as _option

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppConfig(Options):
    """Server options (see each field's help)."""

    ERROR = "--conf {}"

    models: str = _option("", "models to serve: comma list (built-in and own) or all; default ct_organs")
    labels: str | None = _option(None, 'your own model\'s labels: a,b,c (values 1..N) or JSON {"a": 1, ...}')
    modality: str | None = _option(None, "own model's modality CT|MR|XR; default: DICOM tag, else the data")
    n4: bool = _option(False, "MR own model: N4 bias-field correction before the z-score")
    models_file: str | None = _option(None, "JSON file declaring several own models")
    model_dir: str = _option("", "published versions, plans, splits and logs (default <app>/model)")
    interactive: bool = _option(False, "also serve and train each model's click-guided twin <model>_deepedit")
    keep_versions: int = _option(5, "how many published model versions are kept", low=1, high=10_000)
    backend: str = _option("auto", "inference backend: auto, fp32, bf16, onnx", choices=BACKEND_CHOICES)
    epistemic_samples: int = _option(
        5, "MC-dropout passes per image for the epistemic strategy", low=1, high=1000
    )
    auto_update_scoring: bool = _option(False, "re-run scoring after every next-sample and training")
    max_upload_mb: float = _option(
        1024.0, "request body limit in MiB (HTTP 413 above it)", low=1e-3, high=1e7
    )
    max_working_voxels: float = _option(
        100e6, "per-inference bound on working-grid voxels (HTTP 413 above)", low=1, high=1e12
    )

    @classmethod
    def from_conf(cls, conf: Mapping[str, str], app_dir_model: str) -> AppConfig:
        """Typed options from ``--conf`` strings; ``app_dir_model`` is the default ``model_dir``."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(conf) - set(known))
        if unknown:
            logger.warning("ignoring unknown --conf keys %s; known: %s", unknown, ", ".join(known))
        config = cls.from_mapping({k: str(v) for k, v in conf.items()})
        return config if config.model_dir else replace(config, model_dir=app_dir_model)

    def model_conf(self) -> dict[str, str]:
        """The options :func:`lib.planning.definitions.resolve_definitions` reads."""
        keys = ("models", "labels", "modality", "models_file")
        out = {k: getattr(self, k) for k in keys if getattr(self, k)}
        return {**out, "n4": str(self.n4).lower()}
