"""MONAI Label app: auto-segmentation and active learning backed by the ``lib`` U-Net toolkit.

Start from the repository root:
    monailabel start_server --app monailabel_app --studies sample-data/ct
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from functools import partial
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

from lib.hardware import bf16_supported  # noqa: E402
from lib.inference.predictor import BACKENDS, ImageReadError, ImageTooLarge  # noqa: E402
from lib.io.model_store import ModelStore  # noqa: E402
from lib.planning.definitions import ModelDefinition, resolve_definitions  # noqa: E402
from lib.planning.plan_store import PlanStore  # noqa: E402
from lib.planning.presets import PRESETS, TWIN_SUFFIX, shipped_checkpoint  # noqa: E402
from monailabel_app.auth import access_token, install_auth_fix  # noqa: E402
from monailabel_app.config import AppConfig  # noqa: E402
from monailabel_app.datastore import CheckedLocalDatastore, check_name  # noqa: E402
from monailabel_app.dicom_fixes import install_dicom_fixes  # noqa: E402
from monailabel_app.dicomweb import dicomweb_datastore  # noqa: E402
from monailabel_app.local_dicom import LocalDicomDatastore, is_dicom_studies_folder  # noqa: E402
from monailabel_app.model_upload import model_upload_endpoint  # noqa: E402
from monailabel_app.ohif import install_ohif  # noqa: E402
from monailabel_app.server_wiring import wire_running_server  # noqa: E402
from monailabel_app.tasks.activelearning import Epistemic, EpistemicScorer, EpistemicScoring  # noqa: E402
from monailabel_app.tasks.batch_infer import SegmentationBatchInfer, selected_images  # noqa: E402
from monailabel_app.tasks.infer import ModelNotTrained, SegmentationInfer  # noqa: E402
from monailabel_app.tasks.interactive import InteractiveInfer  # noqa: E402
from monailabel_app.tasks.options import check_infer_request  # noqa: E402
from monailabel_app.tasks.scoring import ModelMetrics  # noqa: E402
from monailabel_app.tasks.train import SegmentationTrain, parse_options  # noqa: E402

logger = logging.getLogger(__name__)


def resolve_backend(conf_value: str) -> str:
    """``auto`` (fastest backend passing the parity guard) or an explicit, runnable backend name."""
    if conf_value != "auto" and conf_value not in BACKENDS:
        raise ValueError(f"unknown backend {conf_value!r}; valid: auto, {', '.join(BACKENDS)}")
    if conf_value == "bf16" and not bf16_supported():
        raise ValueError("backend bf16 requested but this CPU has no native bf16 support")
    return conf_value


class SegmentationApp(MONAILabelApp):
    """Auto-segmentation and active learning for built-in and user-declared models, built on ``lib``.

    ``--conf`` options: the fields of :class:`monailabel_app.config.AppConfig`.
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.options = AppConfig.from_conf(conf, os.path.join(app_dir, "model"))
        self.definitions: dict[str, ModelDefinition] = {
            d.name: d for d in resolve_definitions(self.options.model_conf())
        }
        self.model_names = list(self.definitions)
        # (model name, interactive): every model, then its click-guided twin unless --conf interactive false
        self.served = [(n, False) for n in self.model_names]
        if self.options.interactive:
            self.served += [(n, True) for n in self.model_names]
        self.model_dir = self.options.model_dir
        self.keep_versions = self.options.keep_versions
        self.backend = resolve_backend(self.options.backend)
        self.max_voxels = int(self.options.max_working_voxels)
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
        self._auto_update_scoring = self.options.auto_update_scoring
        uploads = {self._plans(*m).name: (self._plans(*m), self._store(*m)) for m in self.served}
        wire_running_server(
            max_body_size=int(self.options.max_upload_mb * 2**20),
            replacements={
                ("PUT", "/model/{model}"): model_upload_endpoint(uploads),
                ("POST", "/auth/token"): access_token,
            },
            guards={
                ("POST", "/train/{model}"): self._check_train,
                ("POST", "/infer/{model}"): partial(check_infer_request, sessions=self.sessions),
                ("POST", "/batch/infer/{model}"): self._check_batch_infer,
            },
        )
        install_dicom_fixes(self.definitions[self.model_names[0]].labels)
        install_auth_fix()
        install_ohif()

    def init_datastore(self) -> Datastore:
        """Local folders (of images, or of DICOM series folders) get the validating, atomic datastore;
        DICOMweb URLs the DICOMweb datastore that stores labels as DICOM SEG."""
        if self.studies.startswith(("http://", "https://")):
            return dicomweb_datastore(self.studies, self.definitions[self.model_names[0]].labels)
        plans = [self._plans(n).current() for n in self.model_names]
        local = LocalDicomDatastore if is_dicom_studies_folder(self.studies) else CheckedLocalDatastore
        return local(
            self.studies,
            label_values={v for d in self.definitions.values() for v in d.labels.values()},
            spatial_dims={2, 3} if None in plans else {p.spatial_dims for p in plans},
            extensions=settings.MONAI_LABEL_DATASTORE_FILE_EXT,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def _store(self, name: str, interactive: bool = False) -> ModelStore:
        return ModelStore(
            os.path.join(self.model_dir, self._plans(name, interactive).name), keep=self.keep_versions
        )

    def _plans(self, name: str, interactive: bool = False) -> PlanStore:
        return PlanStore(self.definitions[name], os.path.join(self.model_dir, name), interactive)

    def _default_checkpoint(self, name: str, interactive: bool = False) -> str | None:
        """The shipped checkpoint of a built-in preset (or of its twin); user models have none."""
        path = shipped_checkpoint(name + (TWIN_SUFFIX if interactive else ""))
        return str(path) if path else None

    def init_infers(self) -> dict[str, Any]:
        images = sorted(self._datastore.list_images())
        parity = (
            self._datastore.get_image_uri(images[0])
            if images and not self.studies.startswith("http")
            else None
        )
        return {
            self._plans(name, interactive).name: (InteractiveInfer if interactive else SegmentationInfer)(
                self._plans(name, interactive),
                self._store(name, interactive),
                self._default_checkpoint(name, interactive),
                self.backend,
                parity,
                self.max_voxels,
            )
            for name, interactive in self.served
        }

    def init_batch_infer(self) -> SegmentationBatchInfer:
        return SegmentationBatchInfer(self._infers)

    def _check_batch_infer(
        self, model: str, images: str = "all", params: dict | None = None, **_: Any
    ) -> None:
        """Refuse unknown models and image selections before a batch process is started."""
        if model not in self._infers:
            raise HTTPException(404, f"model: unknown model {model!r}; available: {sorted(self._infers)}")
        if not self._infers[model].trained:
            raise HTTPException(409, f"{model}: no trained version yet: submit labels and train")
        try:
            selected_images((params or {}).get("images", images), self.datastore())
        except LookupError as e:
            raise HTTPException(404, str(e)) from None
        except ValueError as e:
            raise HTTPException(400, str(e)) from None

    def init_trainers(self) -> dict[str, Any]:
        # a user model's first training may warm-start from a shipped model of the same modality
        shipped = [(p, self._default_checkpoint(p.name)) for p in PRESETS.values()]
        return {
            self._plans(name, interactive).name: SegmentationTrain(
                self._plans(name, interactive),
                self._store(name, interactive),
                self._default_checkpoint(name, interactive),
                shipped,
                base=(self._store(name), self._default_checkpoint(name)) if interactive else None,
            )
            for name, interactive in self.served
        }

    def _scorer(self) -> EpistemicScorer:
        """MC-dropout scorer for the first selected model (shared by strategy and scoring)."""
        if not hasattr(self, "_epistemic"):
            self._epistemic = EpistemicScorer(
                self._infers[self.model_names[0]], samples=self.options.epistemic_samples
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
        if not self.datastore().get_labeled_images():
            raise HTTPException(409, "train: no image has a final label yet; submit labels first")

    def next_sample(self, request: dict[str, Any]) -> dict[str, Any]:
        strategy = request.get("strategy") or "random"
        if strategy not in self._strategies:
            raise HTTPException(
                404, f"strategy: unknown strategy {strategy!r}; available: {sorted(self._strategies)}"
            )
        try:
            sample = super().next_sample(request)
        except ModelNotTrained as e:
            raise HTTPException(409, f"strategy {strategy}: {e}") from None
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
        """Accept a datastore id, the file ``/infer`` just stored from an upload, or the image of a
        live session of MONAI Label's session store; anything else is HTTP 400 (404 for unknown ids)."""
        if not isinstance(image, str) or not image:
            raise HTTPException(400, "image: a datastore image id is required")
        if os.path.isabs(image):
            real = os.path.realpath(image)
            if os.path.dirname(real) == os.path.realpath(tempfile.gettempdir()):  # an upload to /infer
                return
            if self._session_image(real):
                return
            raise HTTPException(400, "image: must be a datastore image id, not a path")
        check_name("image", image)
        if not self.datastore().get_image_uri(image):
            raise HTTPException(404, f"image: unknown image id {image!r}")

    def cleanup_sessions(self) -> None:
        """Remove expired sessions (MONAI Label runs this at start-up and every 5 minutes; its own
        version skips the store while no session is in memory, so sessions of earlier runs stayed)."""
        if self._sessions is not None:
            logger.debug("expired sessions removed: %d", self._sessions.remove_expired())

    def _session_image(self, real_path: str) -> bool:
        """True when ``real_path`` is the image of a session in the session store (the file or folder
        ``PUT /session/`` stored, found again through its session's record)."""
        sessions = self.sessions()
        if sessions is None:
            return False
        store = os.path.realpath(sessions.store_path)
        if os.path.commonpath([store, real_path]) != store or real_path == store:
            return False
        session_id = os.path.relpath(real_path, store).split(os.sep)[0]
        info = sessions.get_session(session_id, update_ts=False)
        return info is not None and os.path.realpath(info.image) == real_path

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """Validate the request (4xx for caller mistakes), then run the model's infer task."""
        model = request.get("model")
        if model not in self._infers:
            raise HTTPException(404, f"model: unknown model {model!r}; available: {sorted(self._infers)}")
        self._check_image(request.get("image"))
        try:
            return super().infer(request, datastore)
        except ModelNotTrained as e:
            raise HTTPException(409, str(e)) from None
        except ImageTooLarge as e:
            raise HTTPException(413, str(e)) from None
        except ImageReadError as e:
            raise HTTPException(422, str(e)) from None
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
