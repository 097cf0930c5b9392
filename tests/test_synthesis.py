"""Images synthesised from label maps: shape and scale, randomised contrast, reproducibility, known answers
with the degradations off, background pseudo-tissues, lower resolution, and deformation with the label."""

import doctest
from dataclasses import replace

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from scipy.ndimage import binary_dilation, binary_erosion

import lib.data.synthesis as synthesis_module
from lib.data.augmentation import spatial_augmentation
from lib.data.synthesis import (
    RandSynthesizeFromLabelsd,
    SynthesisRanges,
    generation_labels,
    intensity_classes,
    synthesis,
    synthesize,
)
from lib.planning.presets import MRI_BRAIN

# every degradation off: each generation label one constant intensity
FLAT = SynthesisRanges(
    std=(0, 0),
    partial_volume=(0, 0),
    bias=(0, 0),
    thick_slice_prob=0,
    low_res_prob=0,
    log_gamma=(0, 0),
    noise=(0, 0),
)


def _labels(shape=(32, 32, 32)):
    """Background and three blobs (1, 2, 3), channel first."""
    label = np.zeros((1, *shape), np.int64)
    label[0, 4:16, 4:20, 6:26] = 1
    label[0, 18:28, 8:24, 4:14] = 2
    label[0, 18:28, 8:24, 18:28] = 3
    return label


def _label_means(image, label):
    return np.array([image[label == v].mean() for v in range(int(label.max()) + 1)])


def test_the_module_examples_hold():
    result = doctest.testmod(synthesis_module)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize("label", [_labels(), _labels()[:, :24, :, 10]], ids=["3d", "2d"])
def test_synthetic_image_has_the_label_shape_float32_and_unit_scale(label):
    out = synthesize(label, np.random.default_rng(0))
    assert out.shape == label.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert abs(out.mean()) < 1e-4 and abs(out.std() - 1) < 1e-3


def test_contrast_is_random_per_draw_and_reproducible_per_seed():
    label = _labels()
    draws = [_label_means(synthesize(label, np.random.default_rng(seed)), label) for seed in range(12)]
    again = synthesize(label, np.random.default_rng(3))
    assert np.array_equal(again, synthesize(label, np.random.default_rng(3)))
    assert np.allclose(_label_means(again, label), draws[3])
    assert all(not np.allclose(a, b, atol=0.05) for a, b in zip(draws, draws[1:], strict=False))
    orders = {tuple(np.argsort(m)) for m in draws}
    assert len(orders) >= 4  # which tissue is brightest is not fixed
    assert {m[1] > m[2] for m in draws} == {True, False}


def test_flat_ranges_give_one_constant_intensity_per_label():
    label = _labels()
    out = synthesize(label, np.random.default_rng(5), FLAT)
    levels = []
    for v in range(4):
        region = out[label == v]
        assert region.std() < 1e-5, v
        levels.append(region.mean())
    assert min(np.diff(np.sort(levels))) > 0.01  # the labels differ
    # known answer: two labels of equal volume z-score to exactly -1 and +1
    halves = np.zeros((1, 16, 16, 8), np.int64)
    halves[0, :8] = 1
    out = synthesize(halves, np.random.default_rng(1), FLAT)
    assert np.allclose(sorted({round(float(v), 5) for v in out.ravel()}), [-1.0, 1.0])


def test_generation_labels_keep_targets_and_split_the_background_by_intensity():
    k, shape = 4, (32, 12, 12)
    image = np.repeat(np.arange(k, dtype=np.float32) * 100, 8)[:, None, None] * np.ones(shape, np.float32)
    label = np.zeros((1, *shape), np.int64)
    label[0, 2:6, 3:9, 3:9] = 1  # foreground inside the darkest band, and one across two bands
    label[0, 12:20, 2:10, 2:10] = 2
    kept = label.copy()
    background = label[0] == 0
    expected = np.repeat(np.arange(k), 8)[:, None, None] * np.ones(shape, np.int64) + 3  # N + 1 + band
    expected = np.where(background, expected, label[0])
    exact = generation_labels(image[None], label, k, smooth=0.0)
    assert exact.dtype == np.int64 and np.array_equal(exact[0], expected)
    assert np.array_equal(label, kept)
    smoothed = generation_labels(torch.from_numpy(image[None]), torch.from_numpy(label), k)
    assert np.array_equal(smoothed[0][~background], label[0][~background])
    # away from the band edges and the foreground, smoothing does not move the bands
    far = np.ones(shape, bool)
    for edge in (8, 16, 24):
        far[edge - 2 : edge + 2] = False
    far &= ~binary_dilation(label[0] > 0, iterations=3)
    assert np.array_equal(smoothed[0][far], expected[far])


def test_a_tissue_filling_most_of_the_background_stays_one_class():
    rng = np.random.default_rng(0)
    air, fat, bone = (rng.normal(level, 0.05, n) for level, n in ((0, 7000), (1, 2000), (3, 1000)))
    classes = intensity_classes(np.concatenate([air, fat, bone]), 3)
    assert np.array_equal(classes, np.repeat([0, 1, 2], [7000, 2000, 1000]))


def test_a_flat_padded_background_stays_one_pseudo_tissue():
    image = np.zeros((1, 20, 10, 10), np.float32)
    image[0, 14:] = np.linspace(1, 2, 6)[:, None, None]  # 70 % padding at exactly 0, then a ramp
    out = generation_labels(image, np.zeros_like(image, dtype=np.int64), 3, smooth=0.0)
    assert set(np.unique(out[0, :14])) == {1} and 1 not in np.unique(out[0, 14:])


@pytest.mark.parametrize(("thick", "low_res", "dropped"), [(1.0, 0.0, 1), (0.0, 1.0, 3), (0.0, 0.0, 0)])
def test_thick_slices_lower_the_resolution_along_one_axis(thick, low_res, dropped):
    """White noise (one label, within-label noise only) has difference energy 2 along every axis after
    the z-score; slices 4 voxels thick remove almost all of it along their axis and none along the others."""
    ranges = replace(
        FLAT,
        mean=(0.5, 0.5),
        std=(0.1, 0.1),
        thick_slice=(4, 4),
        thick_slice_prob=thick,
        low_res=(4, 4),
        low_res_prob=low_res,
    )
    label = np.ones((1, 32, 32, 32), np.int64)
    chosen = set()
    for seed in range(6):
        out = synthesize(label, np.random.default_rng(seed), ranges)[0]
        energy = np.array([np.mean(np.diff(out, axis=a) ** 2) for a in range(3)])
        low = energy < 0.25
        assert low.sum() == dropped and np.all(np.abs(energy[~low] - 2) < 0.15), energy
        chosen |= set(np.flatnonzero(low))
    if dropped == 1:
        assert len(chosen) >= 2  # the thick axis is drawn, not fixed


def _data(label):
    affine = torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0]))
    image = MetaTensor(torch.from_numpy(label * 10.0 + 5.0).float(), affine=affine)
    return {"image": image, "label": MetaTensor(torch.from_numpy(label), affine=affine)}


def test_the_transform_replaces_the_image_only_and_keeps_its_scale_and_meta():
    data = _data(_labels())
    image, label = data["image"], data["label"]
    kept = label.clone()
    out = RandSynthesizeFromLabelsd(prob=1.0).set_random_state(seed=0)(data)
    new = out["image"]
    assert isinstance(new, MetaTensor) and new.shape == image.shape and new.dtype == torch.float32
    assert torch.equal(new.affine, image.affine) and torch.isfinite(new).all()
    assert not torch.allclose(new, image)
    assert abs(float(new.mean() - image.mean())) < 1e-3 and abs(float(new.std() / image.std()) - 1) < 1e-3
    assert out["label"] is label and torch.equal(label, kept)
    # prob 0: the real image passes unchanged
    out = RandSynthesizeFromLabelsd(prob=0.0).set_random_state(seed=0)(data)
    assert out["image"] is image and torch.equal(image, _data(_labels())["image"])


def test_the_transform_is_reproducible_with_its_random_state_and_draws_per_channel():
    label = _labels((16, 16, 16))
    data = {"image": np.random.default_rng(0).random((2, 16, 16, 16)), "label": label}
    a = RandSynthesizeFromLabelsd(prob=1.0).set_random_state(seed=7)
    b = RandSynthesizeFromLabelsd(prob=1.0).set_random_state(seed=7)
    first, second = a(data)["image"], a(data)["image"]
    assert np.array_equal(first, b(data)["image"]) and not np.allclose(first, second)
    assert first.shape == (2, 16, 16, 16) and first.dtype == np.float32
    assert not np.allclose(_label_means(first[0], label[0]), _label_means(first[1], label[0]), atol=0.02)
    chains = [Compose(synthesis(1.0)).set_random_state(seed=7) for _ in range(2)]
    assert np.array_equal(chains[0](data)["image"], chains[1](data)["image"])


def test_synthesis_builds_one_transform_of_the_given_probability():
    (transform,) = synthesis(0.3)
    assert isinstance(transform, RandSynthesizeFromLabelsd) and transform.prob == 0.3
    assert list(transform.keys) == ["image"] and transform.label_key == "label"


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_the_spatial_augmentation_deforms_image_and_label_alike(prob):
    label = _labels()
    preset = replace(MRI_BRAIN, patch_size=label.shape[1:])
    spatial = spatial_augmentation(preset)
    for transform in spatial:
        transform.prob = 1.0
    data = _data(label)
    data["image"] = data["label"].float()  # intensity encodes the label
    synth = RandSynthesizeFromLabelsd(prob=prob, ranges=FLAT, n_background_classes=1)
    data = synth.set_random_state(seed=1)(data)
    levels = _label_means(data["image"].numpy(), label)
    out = Compose(spatial).set_random_state(seed=6)(data)
    image, moved = out["image"].numpy()[0], out["label"].numpy()[0]
    nearest = np.abs(image[..., None] - levels).argmin(axis=-1)  # the label each intensity encodes
    # away from the borders, where bilinear intensities fall between labels
    inside = np.any([binary_erosion(moved == v, iterations=2, border_value=1) for v in range(4)], axis=0)
    changed = inside & (moved != label[0])  # where the deformation moved the label
    assert inside.mean() > 0.5 and (nearest == moved)[inside].mean() > 0.995
    assert changed.sum() > 300 and (nearest == moved)[changed].mean() > 0.99
