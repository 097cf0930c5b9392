"""A local folder of DICOM series (one series per sub-folder) as a MONAI Label datastore."""

from __future__ import annotations

import fnmatch
import os
import threading
from typing import Any

from fastapi import HTTPException
from monailabel.config import settings
from pydicom.misc import is_dicom

from monailabel_app.datastore import CheckedLocalDatastore
from monailabel_app.dicom_labels import LABEL_EXTENSIONS, convert_series, label_file


def _holds_dicom(folder: str) -> bool:
    return any(entry.is_file() and is_dicom(entry.path) for entry in os.scandir(folder))


def series_folders(path: str) -> list[str]:
    """Names of the (non-hidden) sub-folders of ``path`` that hold DICOM files."""
    return sorted(
        entry.name
        for entry in os.scandir(path)
        if entry.is_dir() and not entry.name.startswith(".") and _holds_dicom(entry.path)
    )


def is_dicom_studies_folder(path: str) -> bool:
    """True for a folder of DICOM series folders without image files of its own (MONAI Label's
    ``MONAI_LABEL_DATASTORE_FILE_EXT``)."""
    if not os.path.isdir(path):
        return False
    names = [entry.name for entry in os.scandir(path) if entry.is_file()]
    if any(fnmatch.filter(names, pattern) for pattern in settings.MONAI_LABEL_DATASTORE_FILE_EXT):
        return False
    return bool(series_folders(path))


class LocalDicomDatastore(CheckedLocalDatastore):
    """A folder of DICOM series, one series per sub-folder, used like a NIfTI folder.

    Image ids are the folder names; labels live in ``labels/<tag>/<id>.nii.gz`` (or ``.nrrd``) on the
    series' grid. Each series is read through a NIfTI conversion cached in ``.nifti/`` (remade when the
    folder changes), so infer, training, OHIF's ``.bin`` labels and 3D Slicer's image download all see
    one file on one grid.
    """

    def __init__(self, datastore_path: str, **kwargs: Any) -> None:
        self._lock = threading.Lock()
        kwargs["extensions"] = [f"*{ext}" for ext in LABEL_EXTENSIONS]  # of the labels; images are folders
        super().__init__(datastore_path, **kwargs)

    def _list_files(self, path: str, patterns: list[str]) -> dict[str, str]:
        if os.path.realpath(path) == os.path.realpath(self._datastore.image_path()):
            return {name: name for name in series_folders(path)}
        return super()._list_files(path, patterns)

    def _to_id(self, file: str) -> tuple[str, str]:
        ext = next((e for e in LABEL_EXTENSIONS if file.endswith(e)), "")
        return file[: len(file) - len(ext)], ext

    def _nifti_path(self, image_id: str) -> str:
        return os.path.join(self._datastore_path, ".nifti", f"{image_id}.nii.gz")

    def get_image_uri(self, image_id: str) -> str:
        """The series' NIfTI conversion (made on first use, remade when the folder is newer)."""
        folder = super().get_image_uri(image_id)
        if not folder or not os.path.isdir(folder):
            return ""
        nifti = self._nifti_path(image_id)
        with self._lock:
            if not os.path.exists(nifti) or os.path.getmtime(nifti) < os.path.getmtime(folder):
                os.makedirs(os.path.dirname(nifti), exist_ok=True)
                convert_series(folder, nifti)
        return nifti

    def get_image_info(self, image_id: str) -> dict[str, Any]:
        info = super().get_image_info(image_id)
        if info:  # what 3D Slicer loads or downloads: the NIfTI, not the folder
            info.update({"path": self._nifti_path(image_id), "name": f"{image_id}.nii.gz"})
        return info

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        raise HTTPException(
            409, "this datastore is a folder of DICOM series: add a series by copying its folder"
        )

    def save_label(
        self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]
    ) -> str:
        """Check and store a NIfTI/NRRD label, or OHIF's ``.bin`` blob converted onto the series grid."""
        image_uri = self.get_image_uri(image_id)
        if not image_uri:
            raise HTTPException(404, f"image: unknown image id {image_id!r}")
        with label_file(image_uri, label_filename) as path:
            return super().save_label(image_id, path, label_tag, label_info)
