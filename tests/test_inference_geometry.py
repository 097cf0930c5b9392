"""Restoring scores to the input grid, and writing labels with the input's geometry."""

import nibabel as nib
import nrrd
import numpy as np
import pytest
import torch

from lib.inference.geometry import centre_patch, restore_labels
from lib.inference.writer import write_label
from lib.metrics import dice


def world(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def sphere_logits(affine, shape, centre, radius):
    r = np.linalg.norm(world(affine, shape) - centre, axis=-1)
    return torch.tensor(np.stack([r - radius, radius - r]), dtype=torch.float32)


SRC = np.array([[2.0, 0, 0, -40], [0, 2.0, 0, -40], [0, 0, 3.0, -45], [0, 0, 0, 1]])


@pytest.mark.parametrize(
    "dst",
    [
        np.array([[-0.8, 0, 0, 38], [0, -0.8, 0, 38], [0, 0, 1.5, -40], [0, 0, 0, 1]]),  # LPS, finer
        np.array(
            [[0, 0.9, 0, -38], [0.9, 0, 0, -38], [0, 0, -2.5, 40], [0, 0, 0, 1]]
        ),  # swapped axes, flipped z
    ],
)
def test_restored_sphere_matches_analytic_sphere_on_any_grid(dst):
    shape = (90, 90, 50)
    label = restore_labels(sphere_logits(SRC, (41, 41, 31), [3, -2, 5], 20.0), SRC, dst, shape, slab=7)
    truth = np.linalg.norm(world(dst, shape) - [3, -2, 5], axis=-1) < 20.0
    assert label.shape == shape and label.dtype == np.uint8
    assert dice(label == 1, truth) > 0.98


def test_restore_rejects_wrong_dimensionality():
    with pytest.raises(ValueError):
        restore_labels(torch.zeros(2, 4, 4), SRC, SRC, (4, 4, 4))


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd"])
def test_written_label_keeps_geometry_and_values(tmp_path, ext):
    affine = np.array([[-0.7, 0, 0, 120.0], [0, -0.7, 0, 90.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])
    label = np.random.default_rng(0).integers(0, 5, (20, 16, 8)).astype(np.uint8)
    path = write_label(label, affine, str(tmp_path / f"out{ext}"), dtype="uint8")
    if ext == ".nrrd":
        data, header = nrrd.read(path)
        lps = np.diag([-1.0, -1.0, 1.0])
        np.testing.assert_allclose(lps @ header["space directions"].T, affine[:3, :3])
        np.testing.assert_allclose(lps @ header["space origin"], affine[:3, 3])
        assert header["space"] == "left-posterior-superior"
    else:
        img = nib.load(path)
        data = np.asarray(img.dataobj)
        np.testing.assert_allclose(img.affine, affine)
    assert data.dtype == np.uint8
    np.testing.assert_array_equal(data, label)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{ext}"]  # no temp file left


def test_writer_rejects_unknown_extension_and_dtype(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        write_label(np.zeros((2, 2, 2)), np.eye(4), str(tmp_path / "x.jpg"))
    with pytest.raises(ValueError, match="dtype"):
        write_label(np.zeros((2, 2, 2)), np.eye(4), str(tmp_path / "x.nii.gz"), dtype="complex64")
    assert list(tmp_path.iterdir()) == []


def test_png_label_round_trips_in_monai_layout(tmp_path):
    from monai.transforms import LoadImage

    label = np.zeros((30, 20), np.uint8)  # (X, Y) as MONAI reads PNGs
    label[3:10, 12:18] = 2
    path = write_label(label, np.eye(4), str(tmp_path / "l.png"))
    back = np.asarray(LoadImage(image_only=True)(path))
    np.testing.assert_array_equal(back, label)
    with pytest.raises(ValueError, match="2-D"):
        write_label(np.zeros((4, 4, 4), np.uint8), np.eye(4), str(tmp_path / "v.png"))


def test_restore_2d_scores_onto_a_resized_grid():
    src = np.diag([2.0, 2.0, 1.0, 1.0])  # 2x coarser working grid
    logits = torch.zeros(2, 16, 16)
    logits[1, 4:8, 2:6] = 5.0
    label = restore_labels(logits, src, np.eye(4), (32, 32))
    assert label.shape == (32, 32)
    assert label[8:15, 4:11].all() and not label[20:, 20:].any()


def reference_restore(logits: torch.Tensor, src: np.ndarray, dst: np.ndarray, shape) -> np.ndarray:
    """Every target voxel interpolated (scipy, clamped border): what the box restriction must equal."""
    from scipy import ndimage

    voxels = np.vstack([world(np.eye(4), shape).reshape(-1, 3).T, np.ones(np.prod(shape))])
    coords = np.linalg.inv(src) @ dst @ voxels
    scores = [ndimage.map_coordinates(ch.numpy(), coords[:3], order=1, mode="nearest") for ch in logits]
    return np.argmax(np.stack(scores), axis=0).reshape(shape).astype(np.uint8)


@pytest.mark.parametrize("theta", [0.3, 0.0])  # oblique (all interpolated) and axis-aligned (mixed cells)
@pytest.mark.parametrize("touch_border", [False, True])
def test_foreground_box_restore_equals_full_restore(touch_border, theta):
    rng = np.random.default_rng(3)
    logits = torch.tensor(rng.normal(size=(3, 12, 10, 8)), dtype=torch.float32)
    logits[0] += 6.0  # background wins everywhere ...
    logits[1, 5:7, 4:6, 3:5] += 12.0  # ... except a small blob
    if touch_border:
        logits[2, 0, 9, 7] += 12.0  # and a voxel in a corner, whose clamped score extends outward
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    dst = np.eye(4)
    dst[:3, :3] = rot @ np.diag([0.7, 0.9, 1.3])
    dst[:3, 3] = [-6.0, 1.0, -4.0]
    src = np.diag([2.0, 2.0, 3.0, 1.0])
    shape = (40, 36, 30)
    label = restore_labels(logits, src, dst, shape, slab=5)
    np.testing.assert_array_equal(label, reference_restore(logits, src, dst, shape))
    assert (label == 1).any() and (label == 2).any() == touch_border


def test_class_argmax_matches_torch_argmax_including_ties():
    from lib.inference.geometry import class_argmax

    scores = torch.tensor(np.random.default_rng(5).integers(0, 3, (4, 6, 5, 3)), dtype=torch.float32)
    result = class_argmax(scores)  # integer scores: many ties, the first maximum wins
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, scores.argmax(dim=0).numpy())


def test_keep_largest_components_returns_the_label_of_the_suppressed_scores():
    from lib.inference.geometry import class_argmax
    from lib.inference.predictor import keep_largest_components

    logits = torch.zeros(3, 20, 20, 10)
    logits[1, 2:10, 2:10, 2:8] = 5.0  # large class-1 blob
    logits[1, 14:16, 14:16, 2:4] = 5.0  # small class-1 island ...
    logits[2, 14:16, 14:16, 2:4] = 3.0  # ... where class 2 is the runner-up
    label = keep_largest_components(logits)
    np.testing.assert_array_equal(label, class_argmax(logits))  # consistent with the changed scores
    assert (label == 1).sum() == 8 * 8 * 6 and (label[14:16, 14:16, 2:4] == 2).all()
    src = np.diag([2.0, 2.0, 2.0, 1.0])
    dst_shape = (40, 40, 20)
    np.testing.assert_array_equal(
        restore_labels(logits, src, np.eye(4), dst_shape, label=label),
        restore_labels(logits, src, np.eye(4), dst_shape),
    )


def test_keep_largest_components_leaves_no_stray_runner_up():
    from lib.inference.predictor import keep_largest_components

    logits = torch.zeros(3, 24, 24, 8)
    logits[1, 2:8, 2:8, 2:6] = 5.0  # class 1: one blob
    logits[2, 12:20, 12:20, 2:6] = 5.0  # class 2: a larger blob ...
    logits[2, 2:4, 20:22, 2:4] = 5.0  # ... and an island far from both
    logits[1, 2:4, 20:22, 2:4] = 3.0  # whose runner-up is class 1, already filtered
    label = keep_largest_components(logits)
    assert (label == 1).sum() == 6 * 6 * 4 and (label == 2).sum() == 8 * 8 * 4
    assert (label[2:4, 20:22, 2:4] == 0).all()


def test_centre_patch_is_centred_and_cut_short_on_small_axes():
    image = torch.arange(2 * 10 * 3).reshape(2, 10, 3)
    patch = centre_patch(image, (4, 5))
    assert patch.shape == (2, 4, 3)  # axis 2 is shorter than the patch: whole axis
    assert torch.equal(patch, image[:, 3:7, :])
