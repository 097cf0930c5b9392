"""Training augmentation: what each part changes, what it keeps, and where mirroring is safe."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from monai.transforms import ClassesToIndicesd, Compose

from lib.data.augmentation import (
    RandLateralMirrord,
    augmentation,
    intensity_augmentation,
    mirroring,
    spatial_augmentation,
)
from lib.planning.presets import CT_ORGANS, MRI_BRAIN, XRAY_LUNGS


def test_presets_get_the_mirroring_their_plans_allow():
    assert [type(t) for t in mirroring(MRI_BRAIN)] == [RandLateralMirrord]
    assert mirroring(CT_ORGANS) == [] and mirroring(XRAY_LUNGS) == []


def test_a_mirrored_patch_swaps_paired_labels_and_keeps_midline_ones():
    label = torch.zeros(1, 6, 4, 2, dtype=torch.uint8)
    label[0, 0, 1] = 2  # a left structure at the low end of the left-right axis
    label[0, 5, 1] = 3  # its counterpart at the other end
    label[0, 2:4, 2] = 1  # a midline structure
    image = torch.rand(1, 6, 4, 2)
    out = RandLateralMirrord((0, 1, 3, 2), prob=1.0)({"image": image, "label": label})
    assert torch.equal(out["image"], image.flip(1))
    assert out["label"][0, 0, 1].unique().tolist() == [2] and out["label"][0, 5, 1].unique().tolist() == [3]
    assert torch.equal(out["label"] == 1, label == 1)  # symmetric about the mirror plane: unchanged
    assert out["label"].dtype == label.dtype


def _patch(shape=(48, 48, 16), seed=0):
    rng = np.random.default_rng(seed)
    label = np.zeros((1, *shape), np.uint8)
    label[0, 10:30, 12:34, 4:12] = 1
    label[0, 32:42, 8:20, 6:14] = 2
    image = 0.2 + 0.3 * label + rng.normal(0, 0.02, label.shape)
    return {"image": torch.from_numpy(image.astype(np.float32)), "label": torch.from_numpy(label)}


def _always(transform):
    transform.prob = 1.0
    return transform


def _preset_like(preset, shape):
    return replace(preset, patch_size=shape)


@pytest.mark.parametrize("index", range(len(intensity_augmentation(CT_ORGANS))))
def test_each_intensity_augmentation_changes_the_image_only(index):
    transform = _always(intensity_augmentation(CT_ORGANS)[index])
    transform.set_random_state(seed=1)
    data = _patch()
    out = transform(dict(data))
    assert not torch.allclose(torch.as_tensor(out["image"]), data["image"], atol=1e-4), type(
        transform
    ).__name__
    assert torch.equal(torch.as_tensor(out["label"]), data["label"])
    assert out["image"].shape == data["image"].shape and torch.isfinite(torch.as_tensor(out["image"])).all()


@pytest.mark.parametrize("index", range(len(spatial_augmentation(CT_ORGANS))))
def test_each_spatial_augmentation_moves_image_and_label_together(index):
    shape = (48, 48, 16)
    transform = _always(spatial_augmentation(_preset_like(CT_ORGANS, shape))[index])
    transform.set_random_state(seed=2)
    data = _patch(shape)
    out = transform(dict(data))
    image, label = np.asarray(out["image"]), np.asarray(out["label"])
    assert not np.array_equal(label, data["label"].numpy()), type(transform).__name__
    assert set(np.unique(label)) <= {0, 1, 2} and label.shape == (1, *shape)
    # the label still sits on its structure: image intensity by label value, as in the input
    for value, level in ((0, 0.2), (1, 0.5), (2, 0.8)):
        assert abs(float(np.median(image[label == value])) - level) < 0.05


def test_the_whole_chain_runs_for_2d_and_3d_presets():
    for preset, shape in ((CT_ORGANS, (40, 40, 16)), (MRI_BRAIN, (24, 24, 24)), (XRAY_LUNGS, (64, 64))):
        preset = _preset_like(preset, shape)
        label = np.zeros((1, *shape), np.uint8)
        label[(0, *(slice(4, 12),) * len(shape))] = 1
        data = ClassesToIndicesd(keys="label", num_classes=preset.out_channels)(
            {"image": torch.rand(1, *shape), "label": torch.from_numpy(label)}
        )
        patches = Compose(augmentation(preset, num_samples=2)).set_random_state(seed=0)(data)
        assert len(patches) == 2 and all(p["image"].shape == (1, *shape) for p in patches)
        assert all("label_cls_indices" not in p for p in patches)
