"""Prediction pictures: PNG panels of input / truth / prediction on the most-foreground slice.

Each tile is at least ``MIN_TILE`` pixels on its shorter side (nearest-neighbour enlargement, so voxels
stay visible as blocks); labels are drawn as translucent colour fills with a solid outline, and a legend
under the tiles names every label with its colour. 3-D volumes (X, Y, Z on a RAS grid) are shown as
axial slices in the radiological convention (anterior up, the patient's right on the image's left);
2-D images (X = columns, Y = rows) as they are stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lib.io.atomic import atomic_path

MIN_TILE = 256  # pixels on the shorter side of each tile
FILL_ALPHA = 0.35
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)
_HEADER, _LEGEND, _GAP = 22, 26, 6

# distinct colours for label values 1..N (0 stays transparent)
PALETTE = np.array(
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


def label_colour(value: int) -> tuple[int, int, int]:
    """The RGB colour label ``value`` (>= 1) is drawn in."""
    r, g, b = PALETTE[1 + (int(value) - 1) % (len(PALETTE) - 1)]
    return int(r), int(g), int(b)


def most_foreground_slice(truth: np.ndarray, pred: np.ndarray | None = None) -> int:
    """Index along the last axis with the most truth foreground; the prediction's when the truth is
    empty; the middle slice when both are."""
    for label in (truth, pred):
        if label is None:
            continue
        counts = np.count_nonzero(label.reshape(-1, label.shape[-1]), axis=0)
        if counts.any():
            return int(counts.argmax())
    return truth.shape[-1] // 2


def _display(plane: np.ndarray, volumetric: bool) -> np.ndarray:
    """(X, Y) plane -> (rows, columns) as shown."""
    return plane[::-1, ::-1].T if volumetric else plane.T


def _enlarge(a: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1)


def _overlay(gray: np.ndarray, label: np.ndarray) -> np.ndarray:
    """RGB of ``gray`` with each label value filled translucently and outlined in its colour."""
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    padded = np.pad(label, 1, mode="edge")
    edge = np.zeros(label.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dy : dy + label.shape[0], dx : dx + label.shape[1]] != label
    for value in np.unique(label[label > 0]):
        colour = np.array(label_colour(value), np.float32)
        inside = label == value
        rgb[inside] = (1 - FILL_ALPHA) * rgb[inside] + FILL_ALPHA * colour
        rgb[inside & edge] = colour
    return rgb.astype(np.uint8)


def prediction_panel(
    image: np.ndarray, truth: np.ndarray, pred: np.ndarray, labels: Mapping[str, int] | None = None
) -> np.ndarray:
    """RGB uint8 picture: [input | truth | prediction] tiles with titles, and a legend of ``labels``
    (name -> value; without it the values present are listed).

    ``image`` (X, Y[, Z]) is min-max scaled to grey; ``truth``/``pred`` are integer maps of its shape.
    3-D inputs show the slice :func:`most_foreground_slice` picks.
    """
    volumetric = image.ndim == 3
    if volumetric:
        z = most_foreground_slice(truth, pred)
        image, truth, pred = image[..., z], truth[..., z], pred[..., z]
    image, truth, pred = (_display(np.asarray(a), volumetric) for a in (image, truth, pred))
    factor = max(1, math.ceil(MIN_TILE / min(image.shape)))
    lo, hi = float(image.min()), float(image.max())
    gray = _enlarge(((image - lo) / (hi - lo + 1e-8) * 255).astype(np.uint8), factor)
    truth, pred = _enlarge(truth.astype(np.int64), factor), _enlarge(pred.astype(np.int64), factor)
    tiles = [np.repeat(gray[..., None], 3, axis=-1), _overlay(gray, truth), _overlay(gray, pred)]
    h, w = gray.shape
    canvas = Image.new("RGB", (3 * w + 4 * _GAP, _HEADER + h + _LEGEND + _GAP), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    for i, (tile, title) in enumerate(zip(tiles, ("input", "truth", "prediction"), strict=True)):
        x = _GAP + i * (w + _GAP)
        canvas.paste(Image.fromarray(tile), (x, _HEADER))
        draw.text((x, 3), title, fill=TEXT, font=font)
    if labels is None:
        present = np.union1d(np.unique(truth), np.unique(pred))
        labels = {str(v): int(v) for v in present if v > 0}
    x, y = _GAP, _HEADER + h + _GAP
    for name, value in sorted(labels.items(), key=lambda kv: kv[1]):
        if value <= 0:
            continue
        draw.rectangle((x, y + 2, x + 14, y + 16), fill=label_colour(value))
        draw.text((x + 20, y + 1), f"{value} {name}", fill=TEXT, font=font)
        x += 20 + int(draw.textlength(f"{value} {name}", font=font)) + 16
    return np.asarray(canvas)


def save_prediction_png(
    path: str,
    image: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    labels: Mapping[str, int] | None = None,
) -> str:
    """Write :func:`prediction_panel` as a PNG (atomically) and return ``path``."""
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(prediction_panel(image, truth, pred, labels)).save(tmp, format="PNG")
    return path
