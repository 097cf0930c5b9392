"""Training augmentation: foreground-aware patches, then spatial and intensity changes of the size that
separates one scanner (or patient) from another, so a model trained on a few scans holds on the next.

Applied to each patch after cropping (cheap on a CPU: every transform works on the patch, never on the
whole volume), in nnU-Net's order and with probabilities close to its defaults:

* spatial (image and label together): rotation (up to 15 degrees in the axial plane, 5 degrees about
  the other axes in 3-D), scaling (0.85-1.15), a coarse elastic grid distortion (10 % of patches);
* intensity (image only): Gaussian noise, Gaussian blur, brightness (multiplicative), contrast (about
  the mean, range kept), simulated low resolution (down to half, nearest, then back up), a smooth bias
  field, gamma (0.7-1.5, also on the inverted image), all on their own probabilities;
* mirroring: left-right only, and only where the plan found the labelled anatomy symmetric
  (``ModelPreset.mirror``); a mirrored patch's paired labels are swapped (left parotid <-> right);
* optionally (train option ``synthesis``), before all of these, an image synthesised from the patch's
  labels in place of the real one (SynthSeg-style domain randomisation, :mod:`lib.data.synthesis`);
* for an interactive plan, after all of these, the first clicks' guidance channels drawn from the
  augmented patch's label (:class:`lib.interactive.simulation.RandClickGuidanced`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.transforms import (
    DeleteItemsd,
    MapTransform,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandCropByLabelClassesd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandGridDistortiond,
    RandomizableTransform,
    RandScaleIntensityd,
    RandScaleIntensityFixedMeand,
    RandSimulateLowResolutiond,
)

from lib.data.synthesis import synthesis
from lib.interactive.simulation import RandClickGuidanced
from lib.planning.presets import ModelPreset

KEYS = ("image", "label")
INDEX_KEY = "label_cls_indices"


class RandLateralMirrord(RandomizableTransform, MapTransform):
    """With probability ``prob``, mirror a patch's image and label left-right (the first spatial axis of
    the RAS working grid) and give each label voxel of class c the class ``classes[c]`` (a paired
    organ's mirror image is its counterpart, ``ModelPreset.mirror``).

    >>> t = RandLateralMirrord((0, 2, 1), prob=1.0)
    >>> out = t({"image": torch.tensor([[0.0, 1.0, 2.0]]), "label": torch.tensor([[1, 0, 0]])})
    >>> out["image"].tolist(), out["label"].tolist()
    ([[2.0, 1.0, 0.0]], [[0, 0, 2]])
    """

    def __init__(self, classes: Sequence[int], prob: float = 0.5, keys: tuple[str, ...] = KEYS) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob=prob)
        self.table = torch.as_tensor(list(classes))

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = torch.flip(torch.as_tensor(d[key]), dims=(1,))
        label = d["label"]
        d["label"] = self.table.to(label.dtype)[label.long()]
        return d


def patch_sampling(preset: ModelPreset, num_samples: int) -> list:
    """``num_samples`` patches per image, centred on each class (background included) with equal
    probability, so small organs are seen as often as large ones; centres come from the cached class
    index (``INDEX_KEY``), which is dropped from the patches."""
    return [
        RandCropByLabelClassesd(
            keys=KEYS,
            label_key="label",
            spatial_size=preset.patch_size,
            num_classes=preset.out_channels,
            num_samples=num_samples,
            indices_key=INDEX_KEY,
        ),
        DeleteItemsd(keys=INDEX_KEY),
    ]


def spatial_augmentation(preset: ModelPreset) -> list:
    """Rotation and scaling (one resampling, half the patches) and a coarse elastic distortion."""
    n = preset.spatial_dims
    return [
        RandAffined(
            keys=KEYS,
            prob=0.5,
            rotate_range=0.26 if n == 2 else (0.09, 0.09, 0.26),
            scale_range=[0.15] * n,
            mode=("bilinear", "nearest"),
            padding_mode="border",
            spatial_size=preset.patch_size,
            cache_grid=True,
        ),
        RandGridDistortiond(
            keys=KEYS,
            num_cells=4,
            distort_limit=0.1,
            prob=0.1,
            mode=("bilinear", "nearest"),
            padding_mode="border",
        ),
    ]


def intensity_augmentation(preset: ModelPreset) -> list:
    """Noise, blur, brightness, contrast, low resolution, bias field and gamma (see the module doc)."""
    return [
        RandGaussianNoised(keys="image", prob=0.15, std=0.1, sample_std=True),
        RandGaussianSmoothd(
            keys="image", prob=0.15, sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), sigma_z=(0.5, 1.0)
        ),
        RandScaleIntensityd(keys="image", factors=0.25, prob=0.15),
        RandScaleIntensityFixedMeand(keys="image", factors=0.25, preserve_range=True, prob=0.15),
        RandSimulateLowResolutiond(
            keys="image",
            prob=0.15,
            zoom_range=(0.5, 1.0),
            upsample_mode="trilinear" if preset.spatial_dims == 3 else "bilinear",
        ),
        RandBiasFieldd(keys="image", prob=0.1, degree=3, coeff_range=(0.0, 0.1)),
        RandAdjustContrastd(keys="image", prob=0.1, gamma=(0.7, 1.5), invert_image=True, retain_stats=True),
        RandAdjustContrastd(keys="image", prob=0.3, gamma=(0.7, 1.5), retain_stats=True),
    ]


def mirroring(preset: ModelPreset) -> list:
    """Left-right mirroring of half the patches where the plan says the anatomy is symmetric
    (``preset.mirror``, sided classes swapped); none elsewhere."""
    if preset.mirror is None or preset.spatial_dims != 3:
        return []
    return [RandLateralMirrord(preset.mirror)]


def augmentation(preset: ModelPreset, num_samples: int, synthesis_prob: float = 0.0) -> list:
    """The whole random part of the training chain, from patch sampling on; with ``synthesis_prob`` > 0
    that share of the patches first gets an image synthesised from its labels
    (:mod:`lib.data.synthesis`), deformed and augmented like a real one. An interactive plan's
    patches end with their click guidance (image (1 + N + 1, *patch))."""
    return [
        *patch_sampling(preset, num_samples),
        *(synthesis(synthesis_prob) if synthesis_prob > 0 else []),
        *spatial_augmentation(preset),
        *intensity_augmentation(preset),
        *mirroring(preset),
        *([RandClickGuidanced(preset.labels)] if preset.interactive else []),
    ]
