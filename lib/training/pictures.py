"""Prediction pictures: PNG panels of input / truth / prediction on the most-foreground slice."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

# distinct colours for label values 1..N (0 stays transparent)
_PALETTE = np.array(
    [
        [0, 0, 0],
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
    ],
    dtype=np.uint8,
)


def most_foreground_slice(label: np.ndarray) -> int:
    """Index along the last axis of ``label`` (X, Y, Z) with the most non-zero voxels."""
    return int(np.count_nonzero(label.reshape(-1, label.shape[-1]), axis=0).argmax())


def _overlay(gray: np.ndarray, label: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    colours = _PALETTE[np.clip(label, 0, len(_PALETTE) - 1)].astype(np.float32)
    mask = (label > 0)[..., None]
    return np.where(mask, (1 - alpha) * rgb + alpha * colours, rgb).astype(np.uint8)


def prediction_panel(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """RGB uint8 panel [input | truth overlay | prediction overlay] of one slice.

    ``image`` (X, Y[, Z]) in [0, 1] (other ranges are min-max scaled); ``truth``/``pred`` integer maps of
    the same shape. 3-D inputs use the slice with the most truth foreground; rows are shown RAS-up.
    """
    if image.ndim == 3:
        z = most_foreground_slice(truth)
        image, truth, pred = image[..., z], truth[..., z], pred[..., z]
    lo, hi = float(image.min()), float(image.max())
    gray = ((image - lo) / (hi - lo + 1e-8) * 255).astype(np.uint8)
    tiles = [np.repeat(gray[..., None], 3, axis=-1), _overlay(gray, truth), _overlay(gray, pred)]
    return np.rot90(np.concatenate(tiles, axis=0), k=1)


def save_prediction_png(path: str, image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> str:
    """Write :func:`prediction_panel` as a PNG (atomically) and return ``path``."""
    tmp = f"{path}.tmp.png"
    Image.fromarray(np.ascontiguousarray(prediction_panel(image, truth, pred))).save(tmp)
    os.replace(tmp, path)
    return path
