"""MONAI Label app: auto-segmentation and active learning backed by the ``lib`` U-Net toolkit.

Start from the repository root:
    monailabel start_server --app monailabel_app --studies sample-data/ct
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import Any

# MONAI Label loads this file with the app folder first on sys.path and unloads every `lib` module;
# put the repository root first so `lib` is always this project's domain core.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[0] != _REPO_ROOT:
    sys.path.insert(0, _REPO_ROOT)

from fastapi import HTTPException  # noqa: E402
from monailabel.config import settings  # noqa: E402
from monailabel.interfaces.app import MONAILabelApp  # noqa: E402
from monailabel.interfaces.datastore import Datastore  # noqa: E402
from monailabel.tasks.activelearning.first import First  # noqa: E402
from monailabel.tasks.activelearning.random import Random  # noqa: E402

from lib.inference.predictor import BACKENDS, ImageReadError, ImageTooLarge, bf16_supported  # noqa: E402
from lib.planning.presets import PRESETS, get_preset  # noqa: E402
from lib.training.model_store import ModelStore  # noqa: E402
from monailabel_app.auth import access_token, install_auth_fix  # noqa: E402
from monailabel_app.datastore import CheckedLocalDatastore, check_name  # noqa: E402
from monailabel_app.dicom import (  # noqa: E402
    LocalDicomDatastore,
    dicomweb_datastore,
    install_dicom_fixes,
    is_dicom_studies_folder,
)
from monailabel_app.model_upload import model_upload_endpoint  # noqa: E402
from monailabel_app.server_wiring import wire_running_server  # noqa: E402
from monailabel_app.tasks.activelearning import Epistemic, EpistemicScorer, EpistemicScoring  # noqa: E402
from monailabel_app.tasks.batch_infer import SegmentationBatchInfer, selected_images  # noqa: E402
from monailabel_app.tasks.infer import SegmentationInfer  # noqa: E402
from monailabel_app.tasks.options import check_infer_request  # noqa: E402
from monailabel_app.tasks.scoring import ModelMetrics  # noqa: E402
from monailabel_app.tasks.train import SegmentationTrain, parse_options  # noqa: E402

logger = logging.getLogger(__name__)

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")


def selected_models(conf_value: str) -> list[str]:
    """Model names from ``--conf models a,b`` (or ``all``); unknown names raise listing the valid ones."""
    names = (
        list(PRESETS)
        if conf_value.strip() == "all"
        else [n.strip() for n in conf_value.split(",") if n.strip()]
    )
    unknown = [n for n in names if n not in PRESETS]
    if unknown or not names:
        raise ValueError(f"unknown model(s) {unknown or conf_value!r}; valid: {', '.join(PRESETS)} or all")
    return names


def resolve_backend(conf_value: str) -> str:
    """``auto`` (fastest backend passing the parity guard) or an explicit, runnable backend name."""
    if conf_value != "auto" and conf_value not in BACKENDS:
        raise ValueError(f"unknown backend {conf_value!r}; valid: auto, {', '.join(BACKENDS)}")
    if conf_value == "bf16" and not bf16_supported():
        raise ValueError("backend bf16 requested but this CPU has no native bf16 support")
    return conf_value


class SegmentationApp(MONAILabelApp):
    """Multi-organ auto-segmentation with a training loop built on ``lib``.

    ``--conf`` options: ``models`` (comma list or ``all``; default ``ct_organs``), ``model_dir``
    (published model versions; default ``<app>/model``), ``keep_versions`` (default 5), ``backend``
    (``auto``|``fp32``|``bf16``; default ``auto``), ``epistemic_samples`` (MC-dropout passes; default 5),
    ``auto_update_scoring`` (re-score after every next-sample/training; default false), ``max_upload_mb``
    (request body limit, HTTP 413 above it; default 1024), ``max_working_voxels`` (per-inference
    memory bound: images larger than this on the model's working grid get HTTP 413; default 100e6,
    about 3.2 GB of scores and buffers).
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.model_names = selected_models(conf.get("models", "ct_organs"))
        self.model_dir = conf.get("model_dir", os.path.join(app_dir, "model"))
        self.keep_versions = int(conf.get("keep_versions", "5"))
        self.backend = resolve_backend(conf.get("backend", "auto"))
        self.max_voxels = int(float(conf.get("max_working_voxels", "100e6")))
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="U-Net segmentation (lib toolkit)",
            description="Auto-segmentation and active learning with documented U-Net training practice",
            version="0.1.0",
        )
        # MONAI Label re-runs every scoring method after each next-sample and training by default;
        # a full metrics pass per click is too heavy for a CPU server, so it is opt-in here.
        self._auto_update_scoring = conf.get("auto_update_scoring", "false").lower() == "true"
        uploads = {n: (get_preset(n), self._store(n)) for n in self.model_names}
        wire_running_server(
            max_body_size=int(float(conf.get("max_upload_mb", "1024")) * 2**20),
            replacements={
                ("PUT", "/model/{model}"): model_upload_endpoint(uploads),
                ("POST", "/auth/token"): access_token,
            },
            guards={
                ("POST", "/train/{model}"): self._check_train,
                ("POST", "/infer/{model}"): check_infer_request,
                ("POST", "/batch/infer/{model}"): self._check_batch_infer,
            },
        )
        install_dicom_fixes(get_preset(self.model_names[0]).labels)
        install_auth_fix()

    def init_datastore(self) -> Datastore:
        """Local folders (of images, or of DICOM series folders) get the validating, atomic datastore;
        DICOMweb URLs the DICOMweb datastore that stores labels as DICOM SEG."""
        if self.studies.startswith(("http://", "https://")):
            return dicomweb_datastore(self.studies, get_preset(self.model_names[0]).labels)
        presets = [get_preset(n) for n in self.model_names]
        local = LocalDicomDatastore if is_dicom_studies_folder(self.studies) else CheckedLocalDatastore
        return local(
            self.studies,
            label_values={v for p in presets for v in p.labels.values()},
            spatial_dims={p.spatial_dims for p in presets},
            extensions=settings.MONAI_LABEL_DATASTORE_FILE_EXT,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def _store(self, name: str) -> ModelStore:
        return ModelStore(os.path.join(self.model_dir, name), keep=self.keep_versions)

    def _default_checkpoint(self, name: str) -> str:
        return os.path.join(PRETRAINED_DIR, f"{name}.pt")

    def init_infers(self) -> dict[str, Any]:
        images = sorted(self._datastore.list_images())
        parity = (
            self._datastore.get_image_uri(images[0])
            if images and not self.studies.startswith("http")
            else None
        )
        return {
            name: SegmentationInfer(
                get_preset(name),
                self._store(name),
                self._default_checkpoint(name),
                self.backend,
                parity,
                self.max_voxels,
            )
            for name in self.model_names
        }

    def init_batch_infer(self) -> SegmentationBatchInfer:
        return SegmentationBatchInfer(self._infers)

    def _check_batch_infer(
        self, model: str, images: str = "all", params: dict | None = None, **_: Any
    ) -> None:
        """Refuse unknown models and image selections before a batch process is started."""
        if model not in self._infers:
            raise HTTPException(404, f"model: unknown model {model!r}; available: {sorted(self._infers)}")
        try:
            selected_images((params or {}).get("images", images), self.datastore())
        except LookupError as e:
            raise HTTPException(404, str(e)) from None
        except ValueError as e:
            raise HTTPException(400, str(e)) from None

    def init_trainers(self) -> dict[str, Any]:
        return {
            name: SegmentationTrain(get_preset(name), self._store(name), self._default_checkpoint(name))
            for name in self.model_names
        }

    def _scorer(self) -> EpistemicScorer:
        """MC-dropout scorer for the first selected model (shared by strategy and scoring)."""
        if not hasattr(self, "_epistemic"):
            self._epistemic = EpistemicScorer(
                self._infers[self.model_names[0]], samples=int(self.conf.get("epistemic_samples", "5"))
            )
        return self._epistemic

    def init_strategies(self) -> dict[str, Any]:
        return {"random": Random(), "first": First(), "epistemic": Epistemic(self._scorer())}

    def init_scoring_methods(self) -> dict[str, Any]:
        return {
            "epistemic": EpistemicScoring(self._scorer()),
            "metrics": ModelMetrics(self._infers[self.model_names[0]]),
        }

    def _check_train(self, model: str, params: dict | None = None, **_: Any) -> None:
        """Refuse unknown trainers and invalid options before a training process is started."""
        if model not in self._trainers:
            raise HTTPException(404, f"trainer: unknown model {model!r}; available: {sorted(self._trainers)}")
        try:
            parse_options(params or {})
        except ValueError as e:
            raise HTTPException(400, str(e)) from None

    def next_sample(self, request: dict[str, Any]) -> dict[str, Any]:
        strategy = request.get("strategy") or "random"
        if strategy not in self._strategies:
            raise HTTPException(
                404, f"strategy: unknown strategy {strategy!r}; available: {sorted(self._strategies)}"
            )
        sample = super().next_sample(request)
        if not sample:
            raise HTTPException(404, self._no_sample_reason(strategy))
        return sample

    def _no_sample_reason(self, strategy: str) -> str:
        """Why ``strategy`` found no image to label, in words a viewer can show."""
        datastore = self.datastore()
        total, labelled = len(datastore.list_images()), len(datastore.get_labeled_images())
        if not total:
            return "next sample: the datastore has no images; add images to the studies folder"
        if labelled == total:
            return (
                f"next sample: every image is labelled ({labelled} of {total} have a final label); "
                "add new images to the studies folder or DICOM archive to label more"
            )
        return f"next sample: strategy {strategy!r} chose no image ({labelled} of {total} labelled)"

    def _check_image(self, image: Any) -> None:
        if not isinstance(image, str) or not image:
            raise HTTPException(400, "image: a datastore image id is required")
        if os.path.isabs(image):  # a file the /infer endpoint itself just stored from an upload
            if os.path.dirname(os.path.realpath(image)) != os.path.realpath(tempfile.gettempdir()):
                raise HTTPException(400, "image: must be a datastore image id, not a path")
            return
        check_name("image", image)
        if not self.datastore().get_image_uri(image):
            raise HTTPException(404, f"image: unknown image id {image!r}")

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """Validate the request (4xx for caller mistakes), then run the model's infer task."""
        model = request.get("model")
        if model not in self._infers:
            raise HTTPException(404, f"model: unknown model {model!r}; available: {sorted(self._infers)}")
        self._check_image(request.get("image"))
        try:
            return super().infer(request, datastore)
        except ImageTooLarge as e:
            raise HTTPException(413, str(e)) from None
        except ImageReadError as e:
            raise HTTPException(422, str(e)) from None
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
