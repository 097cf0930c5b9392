"""Validation pictures: tiles of at least 256 px, the most-foreground slice, coloured overlays with a
legend, radiological orientation for volumes and stored orientation for 2-D images."""

from __future__ import annotations

import numpy as np
from PIL import Image

from lib.training.pictures import (
    FILL_ALPHA,
    MIN_TILE,
    label_colour,
    most_foreground_slice,
    save_prediction_png,
)

LABELS = {"liver": 1, "spleen": 2}


def _tinted(panel: np.ndarray, value: int) -> np.ndarray:
    """Pixels filled with ``value``'s translucent colour over a black image (outlines excluded)."""
    colour = np.array(label_colour(value), np.float64)
    return np.abs(panel.astype(np.float64) - FILL_ALPHA * colour).max(axis=-1) <= 1


def _volume():
    image = np.zeros((40, 30, 10), np.float32)  # constant image: grey 0, so a fill is FILL_ALPHA * colour
    image[0, 0, 0] = 1.0  # ... except one voxel, so min-max scaling has a range
    truth = np.zeros(image.shape, np.uint8)
    truth[:, :, 7] = 1  # slice 7: the whole plane (the most foreground)
    truth[30:40, 25:30, 2] = 2  # slice 2: a small spleen at high x (patient's right), high y (anterior)
    pred = truth.copy()
    pred[30:40, 25:30, 7] = 2
    return image, truth, pred


def test_most_foreground_slice_prefers_truth_then_prediction_then_the_middle():
    _, truth, pred = _volume()
    assert most_foreground_slice(truth, pred) == 7
    assert most_foreground_slice(np.zeros_like(truth), truth) == 7
    assert most_foreground_slice(np.zeros_like(truth), np.zeros_like(truth)) == 5


def test_volume_panel_size_slice_colours_legend_and_orientation(tmp_path):
    image, truth, pred = _volume()
    path = save_prediction_png(str(tmp_path / "val.png"), image, truth, pred, LABELS)
    panel = np.asarray(Image.open(path).convert("RGB"))
    liver = _tinted(panel, 1)
    # the truth tile shows slice 7 (the whole plane is liver), enlarged to >= 256 px on each side
    rows, cols = np.nonzero(liver)
    assert rows.max() - rows.min() + 1 >= MIN_TILE and panel.shape[1] >= 3 * MIN_TILE
    truth_cols = cols[cols < panel.shape[1] * 2 // 3]
    assert truth_cols.max() - truth_cols.min() + 1 >= MIN_TILE
    # the prediction tile: the spleen (high x, high y) lies top-left, i.e. anterior up, patient's right left
    spleen = _tinted(panel, 2)
    spleen[:, : panel.shape[1] * 2 // 3] = False
    s_rows, s_cols = np.nonzero(spleen)
    pred_tile = cols[cols > panel.shape[1] * 2 // 3]
    assert s_rows.size and s_rows.max() < rows.min() + (rows.max() - rows.min()) / 3
    assert s_cols.max() < pred_tile.min() + (pred_tile.max() - pred_tile.min()) / 3
    # no spleen in the truth tile: slice 2's spleen is not the slice shown
    assert not _tinted(panel, 2)[:, panel.shape[1] // 3 : panel.shape[1] * 2 // 3].any()
    # the legend under the tiles has a swatch in each label's pure colour
    legend = panel[rows.max() + 1 :]
    for value in LABELS.values():
        assert (legend == np.array(label_colour(value))).all(axis=-1).sum() >= 100, value
    # the input tile has no overlay
    assert not liver[:, : panel.shape[1] // 3].any()


def test_2d_panel_keeps_the_stored_layout_and_enlarges_small_images(tmp_path):
    image = np.zeros((64, 20), np.float32)  # (X, Y): 64 columns, 20 rows as stored
    image[0, 0] = 1.0
    truth = np.zeros(image.shape, np.uint8)
    truth[:8, :] = 1  # the first 8 columns, every row
    path = save_prediction_png(str(tmp_path / "val.png"), image, truth, truth, {"lung_left": 1})
    panel = np.asarray(Image.open(path).convert("RGB"))
    rows, cols = np.nonzero(_tinted(panel, 1))
    truth_cols = cols[cols < panel.shape[1] * 2 // 3]
    height = rows.max() - rows.min() + 1
    assert height >= MIN_TILE  # 20 rows enlarged to >= 256 px
    width = truth_cols.max() - truth_cols.min() + 1
    assert abs(width / height - 8 / 20) < 0.05  # 8 columns x 20 rows, nearest-neighbour enlarged
