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
    LoadImaged,
    MapTransform,
    Orientationd,
    Spacingd,
)

from lib.planning.presets import ModelPreset
from lib.preprocessing.ct_window import CTWindowd


def intensity_transform(preset: ModelPreset, key: str = "image") -> MapTransform:
    """The modality's intensity preprocessing for ``key``, selected by ``preset.intensity``."""
    if preset.modality == "CT":
        return CTWindowd(keys=key, preset=preset.intensity.get("ct_window", "abdomen"))
    raise ValueError(f"{preset.name}: no intensity preprocessing for modality {preset.modality!r}")


def loading(keys: Sequence[str]) -> Compose:
    """Read image/label files (NIfTI, NRRD, DICOM series folder) as channel-first MetaTensors."""
    return Compose([LoadImaged(keys=list(keys), ensure_channel_first=True, image_only=True)])


def preprocessing(preset: ModelPreset, image_key: str = "image", label_key: str | None = None) -> Compose:
    """Reorient to RAS, resample to the working spacing, normalise intensities.

    Images are resampled linearly, labels with nearest neighbour. Output: image float32 (1, *spatial),
    label uint8 (1, *spatial) on the same grid.
    """
    keys = [image_key] + ([label_key] if label_key else [])
    modes = ["bilinear"] + (["nearest"] if label_key else [])
    steps = [
        Orientationd(keys=keys, axcodes="RAS"),
        Spacingd(keys=keys, pixdim=preset.spacing, mode=modes),
        intensity_transform(preset, image_key),
        EnsureTyped(keys=image_key, dtype="float32"),
    ]
    if label_key:
        steps.append(EnsureTyped(keys=label_key, dtype="uint8"))
    return Compose(steps)
