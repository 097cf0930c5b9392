"""OHIF v3 at ``/ohif/``: the bundle shipped in the monailabel wheel, with this app's configuration.

MONAI Label 0.8.5's MONAI Label mode shows only the MONAI Label panel, which can run a model but not
store the result. ``ohif_config/app-config.js`` adds OHIF's segmentation panel (to correct the result)
and a *Save Label* button to that mode; saving uploads the label to ``PUT /datastore/label``, which
stores it as a DICOM SEG in the archive, so the series counts as labelled. Files in ``ohif_config/``
take the place of the bundle's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import FileResponse
from monailabel.utils.others.generic import get_mime_type

CONFIG_DIR = Path(__file__).resolve().with_name("ohif_config")


def bundle_dir() -> Path:
    """The prebuilt OHIF v3 of the installed monailabel wheel."""
    import monailabel.endpoints

    return Path(monailabel.endpoints.__file__).resolve().parent / "static" / "ohif"


def ohif_file(path: str, roots: tuple[Path, ...] | None = None) -> FileResponse:
    """The file ``path`` names in the first of ``roots`` (default: ``ohif_config/``, then the bundle)
    that holds it; any other path is a viewer route and gets the bundle's ``index.html``. Paths that
    leave a root are not served from it."""
    roots = roots or (CONFIG_DIR, bundle_dir())
    for root in roots:
        candidate = (root / path).resolve()
        if path and candidate.is_relative_to(root) and candidate.is_file():
            return FileResponse(candidate, media_type=get_mime_type(str(candidate)))
    index = roots[-1] / "index.html"
    if not index.is_file():
        raise HTTPException(404, f"OHIF is not installed: no {index}")
    return FileResponse(index, media_type="text/html")


def install_ohif() -> None:
    """In the running server only: ``GET /ohif/...`` answers with :func:`ohif_file` (MONAI Label's own
    handler serves only the bundle's top folder and knows no configuration of the app's)."""
    endpoint = sys.modules.get("monailabel.endpoints.ohif")
    if endpoint is not None:
        endpoint.get_ohif = ohif_file
