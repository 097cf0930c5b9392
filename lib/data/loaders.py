"""Datasets for training: the preset's chain, cached, then foreground-aware patches and augmentation
(:mod:`lib.data.augmentation`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.data import CacheDataset, DataLoader, Dataset
from monai.transforms import ClassesToIndicesd, Compose, EnsureTyped, SpatialPadd

from lib.data.augmentation import INDEX_KEY, KEYS, augmentation
from lib.interactive.guidance import Clicks
from lib.interactive.training import validation_clicks, with_guidance
from lib.planning.presets import ModelPreset
from lib.preprocessing.chain import loading, preprocessing

MAX_CENTRES_PER_CLASS = 100_000


def sampling_preparation(preset: ModelPreset) -> list:
    """Deterministic (cached) steps before patch sampling: pad to the patch size, and index each
    class's voxels once (``INDEX_KEY``; at most ``MAX_CENTRES_PER_CLASS`` candidate centres per class).

    Without the cached index every draw scans the whole label volume once per class, which dominates
    training time on full-field-of-view CTs (512 x 512 x 200 and up).
    """
    return [
        SpatialPadd(keys=KEYS, spatial_size=preset.patch_size),
        ClassesToIndicesd(
            keys="label",
            indices_postfix=INDEX_KEY.removeprefix("label"),
            num_classes=preset.out_channels,
            max_samples_per_class=MAX_CENTRES_PER_CLASS,
        ),
    ]


def training_loader(
    items: Sequence[dict],
    preset: ModelPreset,
    batch_size: int,
    num_samples: int,
    cache: bool = True,
    synthesis_prob: float = 0.0,
) -> DataLoader:
    """Loader over ``items`` ({"image": path, "label": path}) yielding augmented patch batches.

    The deterministic part of the chain (and the class index) is cached in memory once; each batch holds
    ``batch_size * num_samples`` patches (the train options of the same names).
    """
    # flattened: CacheDataset caches up to the first Randomizable, and a nested Compose is one
    transform = Compose(
        [
            loading(KEYS),
            preprocessing(preset, "image", "label"),
            *sampling_preparation(preset),
            *augmentation(preset, num_samples, synthesis_prob),
            # plain tensors: MetaTensor's metadata handling costs ~9 % of a CPU training step
            EnsureTyped(keys=KEYS, track_meta=False),
        ]
    ).flatten()
    ds = (
        CacheDataset(list(items), transform, progress=False, num_workers=0)
        if cache
        else Dataset(list(items), transform)
    )
    return DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0)


def validation_cases(items: Sequence[dict], preset: ModelPreset) -> list[dict]:
    """Validation cases as the engine scores them: the preprocessed image and label on the working grid
    ("image" float (1, *spatial) MetaTensor carrying its affine, "label" uint8 (1, *spatial)), plus the
    label as annotated ("reference": uint8 array on its own grid, "reference_affine": its 4x4
    voxel->world matrix), against which the served (restored) prediction is scored. An interactive
    plan gets each case twice, its image with the guidance channels of no clicks (the auto mode) and of
    one click per label (:func:`lib.interactive.training.validation_clicks`), so a twin is selected for
    both."""
    load, pre = loading(KEYS), preprocessing(preset, "image", "label")
    cases = []
    for item in items:
        data = load(dict(item))
        reference = np.asarray(data["label"][0], np.uint8)
        reference_affine = np.asarray(data["label"].affine, np.float64)
        case = {**pre(data), "reference": reference, "reference_affine": reference_affine}
        if not preset.interactive:
            cases.append(case)
            continue
        truth = np.asarray(case["label"][0])
        for clicks in (Clicks(), validation_clicks(truth, preset.labels)):
            cases.append({**case, "image": with_guidance(case["image"], clicks, preset.labels)})
    return cases
