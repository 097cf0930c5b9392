"""Training augmentation: foreground-aware patches, then spatial and intensity changes of the size that
separates one scanner (or patient) from another, so a model trained on a few scans holds on the next.

Applied to each patch after cropping (cheap on a CPU: every transform works on the patch, never on the
whole volume), in nnU-Net's order and with probabilities close to its defaults:

* spatial (image and label together): rotation (up to 15 degrees in the axial plane, 5 degrees about
  the other axes in 3-D), scaling (0.85-1.15), a coarse elastic grid distortion (10 % of patches);
* intensity (image only): Gaussian noise, Gaussian blur, brightness (multiplicative), contrast (about
  the mean, range kept), simulated low resolution (down to half, nearest, then back up), a smooth bias
  field, gamma (0.7-1.5, also on the inverted image), all on their own probabilities;
* mirroring: only along axes that cannot swap a left organ for a right one, see :func:`mirror_axes`;
* optionally (train option ``synthesis``), before all of these, an image synthesised from the patch's
  labels in place of the real one (SynthSeg-style domain randomisation, :mod:`lib.data.synthesis`);
* for an interactive plan, after all of these, the first clicks' guidance channels drawn from the
  augmented patch's label (:class:`lib.interactive.simulation.RandClickGuidanced`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from monai.transforms import (
    DeleteItemsd,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandCropByLabelClassesd,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandGridDistortiond,
    RandScaleIntensityd,
    RandScaleIntensityFixedMeand,
    RandSimulateLowResolutiond,
)

from lib.data.synthesis import synthesis
from lib.interactive.simulation import RandClickGuidanced
from lib.planning.presets import ModelPreset

KEYS = ("image", "label")
INDEX_KEY = "label_cls_indices"
_LATERAL = re.compile(r"left|right|(^|[^a-z])(l|r|lt|rt|sin|dx)($|[^a-z])")


def lateral_labels(labels: Mapping[str, int]) -> list[str]:
    """Label names that name a side (``kidney_left``, ``Parotid_R``, ``lt_lung``, ...)."""
    return [name for name in labels if _LATERAL.search(name.lower())]


def mirror_axes(labels: Mapping[str, int], spatial_dims: int) -> tuple[int, ...]:
    """Axes along which mirrored patches are still correct training data.

    Only the left-right axis (the first of the RAS working grid) is a candidate: the body is not
    symmetric head-to-foot or front-to-back, so a patch mirrored along those is anatomy no scanner
    produces. It is used only for 3-D models whose labels name no side (mirroring would turn a left
    organ into a right one that still carries the left label). 2-D images carry no orientation, so
    they are never mirrored.

    >>> mirror_axes({"brain": 1}, 3), mirror_axes({"kidney_left": 1, "kidney_right": 2}, 3)
    ((0,), ())
    """
    return (0,) if spatial_dims == 3 and not lateral_labels(labels) else ()


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
    """Random flips along :func:`mirror_axes` (each with probability 0.5)."""
    return [
        RandFlipd(keys=KEYS, prob=0.5, spatial_axis=axis)
        for axis in mirror_axes(preset.labels, preset.spatial_dims)
    ]


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
