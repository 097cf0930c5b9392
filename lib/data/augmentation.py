"""Training augmentation: foreground-aware patches, then spatial and intensity changes of the size that
separates one scanner (or patient) from another, so a model trained on a few scans holds on the next.

Applied to each patch after cropping (cheap on a CPU: every transform works on the patch, never on the
whole volume), in nnU-Net's order and with probabilities close to its defaults:

* spatial (image and label together): rotation (up to 15 degrees in the axial plane, 5 degrees about
  the other axes in 3-D), scaling (0.85-1.15), a coarse elastic grid distortion (10 % of patches);
* intensity (image only): Gaussian noise, Gaussian blur, brightness (multiplicative), contrast (about
  the mean, range kept), simulated low resolution (down to half, nearest, then back up), a smooth bias
  field, gamma (0.7-1.5, also on the inverted image), all on their own probabilities;
* mirroring: left-right only, and where labels name sides only when every side has its counterpart
  label, which a mirrored patch then swaps (``parotid_left`` <-> ``parotid_right``), see
  :func:`mirror_axes`;
* optionally (train option ``synthesis``), before all of these, an image synthesised from the patch's
  labels in place of the real one (SynthSeg-style domain randomisation, :mod:`lib.data.synthesis`);
* for an interactive plan, after all of these, the first clicks' guidance channels drawn from the
  augmented patch's label (:class:`lib.interactive.simulation.RandClickGuidanced`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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
_SIDE = re.compile(r"left|right|(?<![a-z])(?:lt|rt|sin|dx|l|r)(?![a-z])", re.IGNORECASE)
_OTHER_SIDE = {
    "left": "right",
    "right": "left",
    "lt": "rt",
    "rt": "lt",
    "sin": "dx",
    "dx": "sin",
    "l": "r",
    "r": "l",
}


def lateral_labels(labels: Mapping[str, int]) -> list[str]:
    """Label names that name a side (``kidney_left``, ``Parotid_R``, ``lt_lung``, ...)."""
    return [name for name in labels if _SIDE.search(name)]


def other_side(name: str) -> str:
    """``name`` with its side words swapped, in their case.

    >>> other_side("kidney_left"), other_side("Parotid_R"), other_side("Lt_Eye"), other_side("liver")
    ('kidney_right', 'Parotid_L', 'Rt_Eye', 'liver')
    """

    def swap(match: re.Match) -> str:
        word = match.group(0)
        other = _OTHER_SIDE[word.lower()]
        return other.upper() if word.isupper() else other.capitalize() if word[0].isupper() else other

    return _SIDE.sub(swap, name)


def mirror_swaps(labels: Mapping[str, int]) -> dict[int, int] | None:
    """The label values a left-right mirror exchanges ({value: counterpart's value}, empty when no label
    names a side), or None when some side has no counterpart label (a mirror would be wrong there).

    >>> mirror_swaps({"cord": 1, "parotid_left": 2, "parotid_right": 3}), mirror_swaps({"kidney_left": 1})
    ({2: 3, 3: 2}, None)
    """
    swaps = {}
    for name in lateral_labels(labels):
        other = other_side(name)
        if other == name or other not in labels:
            return None
        swaps[labels[name]] = labels[other]
    return swaps


def mirror_axes(labels: Mapping[str, int], spatial_dims: int) -> tuple[int, ...]:
    """Axes along which mirrored patches are still correct training data.

    Only the left-right axis (the first of the RAS working grid) is a candidate: the body is not
    symmetric head-to-foot or front-to-back, so a patch mirrored along those is anatomy no scanner
    produces. It is used only for 3-D models whose sided labels all come in pairs (the mirror swaps
    them, :func:`mirror_swaps`); a left organ without its right one would turn into a right organ
    that still carries the left label. 2-D images carry no orientation, so they are never mirrored.

    >>> mirror_axes({"brain": 1}, 3), mirror_axes({"kidney_left": 1, "kidney_right": 2}, 3)
    ((0,), (0,))
    >>> mirror_axes({"kidney_left": 1, "liver": 2}, 3), mirror_axes({"brain": 1}, 2)
    ((), ())
    """
    return (0,) if spatial_dims == 3 and mirror_swaps(labels) is not None else ()


class RandLateralMirrord(RandomizableTransform, MapTransform):
    """With probability ``prob``, mirror a patch's image and label along the left-right axis (the first
    spatial one) and exchange the ``swaps`` label values ({value: other side's value}).

    >>> t = RandLateralMirrord({1: 2, 2: 1}, prob=1.0)
    >>> out = t({"image": torch.tensor([[0.0, 1.0, 2.0]]), "label": torch.tensor([[1, 0, 2]])})
    >>> out["image"].tolist(), out["label"].tolist()
    ([[2.0, 1.0, 0.0]], [[1, 0, 2]])
    """

    def __init__(self, swaps: Mapping[int, int], prob: float = 0.5, keys: tuple[str, ...] = KEYS) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob=prob)
        self.swaps = dict(swaps)

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = torch.flip(torch.as_tensor(d[key]), dims=(1,))
        if self.swaps:
            label = torch.as_tensor(d["label"])
            table = torch.arange(int(max(int(label.max()), *self.swaps)) + 1, dtype=label.dtype)
            for value, other in self.swaps.items():
                table[value] = other
            d["label"] = table[label.long()]
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
    """Left-right mirroring of half the patches where :func:`mirror_axes` allows it, exchanging the
    sided labels (:func:`mirror_swaps`)."""
    if not mirror_axes(preset.labels, preset.spatial_dims):
        return []
    return [RandLateralMirrord(mirror_swaps(preset.labels) or {})]


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
