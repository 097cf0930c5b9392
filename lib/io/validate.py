"""Checks that an uploaded image or label is what the models need, before anything is stored."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from monai.transforms import LoadImage

from lib.io.errors import root_cause

_load = LoadImage(image_only=True)


class InvalidUpload(ValueError):
    """An image or label that must not enter the datastore; the message says why."""


def read_volume(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(array, voxel->RAS affine) of an image file (NIfTI, NRRD, PNG, DICOM folder)."""
    try:
        img = _load(path)
    except Exception as e:  # readers raise many exception types
        raise InvalidUpload(f"not a readable image: {root_cause(e)}") from e
    return np.asarray(img), np.asarray(img.affine, np.float64)


def check_image(path: str, spatial_dims: Collection[int]) -> tuple[tuple[int, ...], np.ndarray]:
    """A readable image of an accepted dimensionality with finite values; returns (shape, affine)."""
    data, affine = read_volume(path)
    if data.ndim not in spatial_dims:
        raise InvalidUpload(
            f"image has {data.ndim} dimensions {data.shape}; expected {sorted(spatial_dims)}-D"
        )
    if min(data.shape) < 2:
        raise InvalidUpload(f"image shape {data.shape} is degenerate")
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        raise InvalidUpload("image contains NaN or infinite values")
    return data.shape, affine


def check_label(label_path: str, image_path: str, allowed: Collection[int], atol_mm: float = 1e-2) -> None:
    """The label is an integer map on the image's grid (same shape and affine) with declared values only."""
    label, label_affine = read_volume(label_path)
    image, image_affine = read_volume(image_path)
    if label.shape != image.shape:
        raise InvalidUpload(f"label shape {label.shape} does not match image shape {image.shape}")
    if label.ndim >= 3 and not np.allclose(label_affine, image_affine, atol=atol_mm):
        raise InvalidUpload("label geometry (affine) does not match the image")
    if np.issubdtype(label.dtype, np.floating) and not np.array_equal(label, np.rint(label)):
        raise InvalidUpload("label values must be integers")
    undeclared = sorted(set(np.unique(label).astype(np.int64).tolist()) - {0, *allowed})
    if undeclared:
        raise InvalidUpload(
            f"label contains undeclared values {undeclared[:10]}; allowed: 0, {sorted(allowed)}"
        )
