"""DICOM labels on the image grid, shared by both DICOM datastores and ``/infer``'s SEG output.

Labels arrive as NIfTI/NRRD (3D Slicer) or as OHIF's raw ``.bin`` voxel blob: uint8, one byte per voxel
of the image grid (X, Y, Z) with X varying fastest (Fortran order), the layout MONAI Label's
``binary_to_image`` reads. Every label is checked against the image grid and kept as NIfTI on it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager

import numpy as np
from fastapi import HTTPException
from monailabel.datastore.utils.colors import GENERIC_ANATOMY_COLORS
from monailabel.datastore.utils.convert import binary_to_image, dicom_to_nifti

from lib.io.atomic import atomic_path
from lib.io.dicom_seg import write_dicom_seg
from lib.io.errors import root_cause
from lib.io.validate import InvalidUpload, check_label, read_volume

LABEL_EXTENSIONS = (".nii.gz", ".nii", ".nrrd")


@contextmanager
def label_file(image_uri: str, label_path: str) -> Iterator[str]:
    """A submitted label as a file on the image's grid: OHIF's ``.bin`` goes through MONAI Label's
    ``binary_to_image`` (a blob of the wrong size is HTTP 422); other files pass through."""
    if not label_path.endswith(".bin"):
        yield label_path
        return
    try:
        converted = binary_to_image(image_uri, label_path)
    except ValueError as e:  # numpy's reshape: the blob does not fit the grid
        raise HTTPException(422, f"label rejected: label.bin does not fit the image grid ({e})") from None
    try:
        yield converted
    finally:
        os.remove(converted)


def checked_label(image_uri: str, label_path: str, allowed: Collection[int]) -> tuple[np.ndarray, np.ndarray]:
    """(label (X, Y, Z) integers, affine) of a submitted label on the image's grid holding only
    ``allowed`` values; HTTP 422 with the reason otherwise."""
    with label_file(image_uri, label_path) as path:
        try:
            check_label(path, image_uri, allowed)
            label, affine = read_volume(path)
        except InvalidUpload as e:
            raise HTTPException(422, f"label rejected: {e}") from None
    dtype = np.uint8 if label.max(initial=0) < 256 else np.uint16
    return np.rint(label).astype(dtype), affine


def segment_color(name: str, value: int) -> tuple[int, int, int]:
    """MONAI Label's anatomy colour for ``name`` ("kidney_left" finds "left kidney"), else one by value."""
    words = name.lower().split("_")
    for key in (name.lower(), " ".join(words), " ".join(reversed(words))):
        if key in GENERIC_ANATOMY_COLORS:
            return tuple(GENERIC_ANATOMY_COLORS[key])
    palette = list(GENERIC_ANATOMY_COLORS.values())
    return tuple(palette[value % len(palette)])


def write_seg(
    label: np.ndarray, series_dir: str, labels: Mapping[str, int], out_path: str, description: str
) -> str:
    """``label`` (X, Y, Z on the series grid) as a DICOM SEG: one named, coded, coloured segment per
    label of ``labels`` (name -> value; segment numbers follow the values)."""
    colors = {name: segment_color(name, value) for name, value in labels.items()}
    return write_dicom_seg(
        label,
        series_dir,
        labels,
        out_path,
        colors=colors,
        algorithm_name="MONAI Label",
        series_description=description,
    )


def convert_series(series_dir: str, nifti_path: str) -> None:
    """Write the series as NIfTI (ITK's reading of it: the grid every label lives on), atomically.

    An unreadable series is HTTP 422."""
    try:
        tmp = dicom_to_nifti(series_dir)
    except RuntimeError as e:  # SimpleITK's reader
        name = os.path.basename(series_dir)
        raise HTTPException(422, f"cannot read DICOM series {name!r}: {root_cause(e)}") from None
    try:
        with atomic_path(nifti_path, suffix=".nii.gz") as part:
            shutil.move(tmp, part)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
