"""The one transform chain per model preset, shared by training and inference.

``loading`` reads files into channel-first MetaTensors; ``preprocessing`` brings them to the preset's
working grid (RAS orientation, working spacing) and applies the modality's intensity preprocessing.
Training appends patch sampling and augmentation (``lib.data.augmentation``); inference runs exactly
the same two stages and maps its output back with the affine recorded at load time.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import (
    Compose,
    EnsureTyped,
    Lambdad,
    LoadImaged,
    MapTransform,
    Orientationd,
    Resized,
    Spacingd,
)

from lib.planning.presets import ModelPreset
from lib.preprocessing.normalization import normalization


def intensity_transform(preset: ModelPreset, key: str = "image") -> MapTransform | Compose:
    """The plan's intensity normalisation for ``key`` (its scheme in
    :data:`lib.preprocessing.normalization.NORMALIZATION`)."""
    return normalization(preset.intensity, key)


def _one_channel(image):
    return image.mean(dim=0, keepdim=True) if image.shape[0] > 1 else image


def loading(keys: Sequence[str]) -> Compose:
    """Read image/label files (NIfTI, NRRD, DICOM series folder) as channel-first MetaTensors."""
    return Compose([LoadImaged(keys=list(keys), ensure_channel_first=True, image_only=True)])


def preprocessing(preset: ModelPreset, image_key: str = "image", label_key: str | None = None) -> Compose:
    """Reorient to RAS and resample to the working spacing (3-D), or resize to the working size
    (2-D), then normalise intensities.

    Images are resampled linearly, labels with nearest neighbour; colour radiographs are averaged to
    one channel. Output: image float32 (1, *spatial), label uint8 (1, *spatial) on the same grid.
    """
    keys = [image_key] + ([label_key] if label_key else [])
    modes = ["bilinear"] + (["nearest"] if label_key else [])
    if preset.spatial_dims == 2:
        geometry = [
            Lambdad(keys=image_key, func=_one_channel),
            Resized(keys=keys, spatial_size=preset.working_size, mode=modes),
        ]
    else:
        geometry = [
            Orientationd(keys=keys, axcodes="RAS"),
            Spacingd(keys=keys, pixdim=preset.spacing, mode=modes),
        ]
    steps = [
        *geometry,
        intensity_transform(preset, image_key),
        EnsureTyped(keys=image_key, dtype="float32"),
    ]
    if label_key:
        steps.append(EnsureTyped(keys=label_key, dtype="uint8"))
    return Compose(steps)
