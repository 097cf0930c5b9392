"""PUT /model/{model}: an uploaded checkpoint is published as a new version only if it fits the network."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import torch
from fastapi import Depends, HTTPException, UploadFile
from monailabel.config import settings
from monailabel.endpoints.user.auth import RBAC, User

from lib.io.model_store import ModelStore
from lib.planning.plan_store import PlanStore
from lib.planning.presets import checkpoint_for, load_model


def publish_upload(plans: PlanStore, store: ModelStore, path: str, filename: str) -> dict[str, Any]:
    """Load ``path`` strictly into the network of its plan (stamped in it, else the model's current
    one), with the model's labels, then publish it; HTTP 422 if it does not fit."""
    name = plans.definition.name
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, dict):
            raise ValueError("not a checkpoint dict")
        preset, network, _ = load_model(checkpoint, plans.current())  # strict: every tensor must fit
        if preset.labels != plans.definition.labels:
            raise ValueError(f"labels {preset.labels} differ from the model's {plans.definition.labels}")
    except Exception as e:  # pickle/zip/shape errors: the upload is not a checkpoint of this model
        raise HTTPException(
            422, f"model rejected: not a {name} checkpoint ({type(e).__name__}: {e})"
        ) from None
    tensors = len(network.state_dict())
    meta = {"source": "upload", "filename": os.path.basename(filename or "")}
    version = store.publish(checkpoint_for(preset, network.state_dict(), meta))
    return {"model": name, "version": version, "report": f"loaded {tensors}/{tensors} tensors"}


def model_upload_endpoint(stores: dict[str, tuple[PlanStore, ModelStore]]) -> Callable:
    """The replacement endpoint for ``PUT /model/{model}`` (admin role when auth is enabled)."""

    def api_update_model(
        model: str, file: UploadFile, user: User = Depends(RBAC(settings.MONAI_LABEL_AUTH_ROLE_ADMIN))
    ) -> dict[str, Any]:
        if model not in stores:
            raise HTTPException(404, f"model: unknown model {model!r}; available: {sorted(stores)}")
        fd, tmp = tempfile.mkstemp(suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as fh:
                shutil.copyfileobj(file.file, fh)
            return publish_upload(*stores[model], tmp, file.filename)
        finally:
            os.remove(tmp)

    return api_update_model
