"""Fixes to MONAI Label 0.8.5's DICOM code, installed into the running server.

``/infer?output=dicom_seg`` writes its SEG with ``lib.io.dicom_seg`` (named, coded, coloured segments on
the series grid), and the ``/proxy/dicom`` routes OHIF goes through never block the event loop or hang
(:mod:`monailabel_app.dicom_proxy`).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from functools import partial
from typing import Any

from monailabel_app.dicom_labels import checked_label, write_seg
from monailabel_app.dicom_proxy import forward


def label_to_dicom_seg(
    series_dir: str, label_path: str, *_: Any, labels: Mapping[str, int], **__: Any
) -> str:
    """Drop-in for MONAI Label's ``nifti_to_dicom_seg`` behind ``/infer?output=dicom_seg``: the model's
    ``labels`` name the segments (the request's ``label_info`` and MONAI's options are not needed).
    Returns the SEG's path."""
    label, _ = checked_label(series_dir, label_path, labels.values())
    fd, out = tempfile.mkstemp(suffix=".dcm", prefix="seg-")
    os.close(fd)
    return write_seg(label, series_dir, labels, out, "MONAI Label inference")


def install_dicom_fixes(labels: Mapping[str, int]) -> None:
    """In the running server only: ``output=dicom_seg`` via ``lib.io.dicom_seg``, and the proxy routes
    answered by :func:`monailabel_app.dicom_proxy.forward` (MONAI Label's route functions look
    ``proxy_dicom`` up in their module at each call)."""
    infer = sys.modules.get("monailabel.endpoints.infer")
    if infer is not None:
        infer.nifti_to_dicom_seg = partial(label_to_dicom_seg, labels=dict(labels))
    proxy = sys.modules.get("monailabel.endpoints.proxy")
    if proxy is not None:
        proxy.proxy_dicom = forward
