"""Intensity normalisation (percentile clip to [0, 1], masked z-score) and the dictionary-transform plumbing.

Percentile scaling is MONAI's; the z-score stays hand-written only for its mask (see :func:`zscore`).
Functions take numpy arrays or torch tensors / MetaTensors and return the input's type as float32
(MetaTensor meta and affine preserved). Masks are "non-zero = foreground" and must broadcast to the image.
"""

from collections.abc import Callable, Hashable, Mapping

import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, ScaleIntensityRangePercentilesd
from monai.utils import convert_data_type, convert_to_dst_type


def region_mask(img: np.ndarray, mask: NdarrayOrTensor | None) -> np.ndarray | None:
    """Boolean foreground (``mask != 0``) broadcast to ``img.shape``; ``None`` when ``mask`` is ``None``."""
    if mask is None:
        return None
    return np.broadcast_to(convert_data_type(mask, np.ndarray)[0] != 0, img.shape)


def zscore(img: NdarrayOrTensor, mask: NdarrayOrTensor | None = None, eps: float = 1e-8) -> NdarrayOrTensor:
    """``(x - mean) / std`` (population std, floored at ``eps``; a constant image gives zeros).

    Without ``mask`` this is MONAI's ``NormalizeIntensity()``. With ``mask`` the statistics come from the
    mask's voxels, only those are normalised and every voxel outside it is set to 0 (an empty mask gives
    all zeros). Hand-written for that mask: ``NormalizeIntensity`` only knows ``nonzero``, and after N4
    the background of an MR image is not zero while the head may hold zeros.
    """
    arr = convert_data_type(img, np.ndarray, dtype=np.float32)[0]
    region = region_mask(arr, mask)
    if region is None:
        out = (arr - arr.mean(dtype=np.float64)) / max(float(arr.std(dtype=np.float64)), eps)
    else:
        out = np.zeros_like(arr)
        values = arr[region]
        if values.size:
            out[region] = (values - values.mean(dtype=np.float64)) / max(
                float(values.std(dtype=np.float64)), eps
            )
    return convert_to_dst_type(out, img, dtype=np.float32)[0]


def map_channels(
    fn: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    img: NdarrayOrTensor,
    mask: NdarrayOrTensor | None = None,
) -> NdarrayOrTensor:
    """Apply ``fn(channel, channel_mask)`` to each channel of a channel-first ``(C, spatial...)`` image.

    The channel keeps its dtype (numpy); ``mask`` (e.g. ``(1, spatial...)``) is broadcast to the image and
    sliced per channel. Returns float32 of the input's type, MetaTensor meta preserved.
    """
    arr = convert_data_type(img, np.ndarray)[0]
    region = region_mask(arr, mask)
    out = np.stack([fn(arr[c], None if region is None else region[c]) for c in range(arr.shape[0])])
    return convert_to_dst_type(out, img, dtype=np.float32)[0]


class MaskedMapTransform(MapTransform):
    """Base dictionary transform: ``d[key] = self.transform(d[key], d[mask_key] or None)`` for each key."""

    def __init__(self, keys: KeysCollection, mask_key: str | None = None, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key

    def transform(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None) -> NdarrayOrTensor:
        """Transform one channel-first image; ``mask`` is the ``mask_key`` entry or ``None``."""
        raise NotImplementedError

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        mask = None if self.mask_key is None else d[self.mask_key]
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key], mask)
        return d


class PercentileNormalized(ScaleIntensityRangePercentilesd):
    """Clip each image to its ``lower``/``upper`` percentiles and scale that range to [0, 1], as float32
    (MONAI's ``ScaleIntensityRangePercentilesd`` with this project's defaults; a constant image gives 0)."""

    def __init__(
        self, keys: KeysCollection, lower: float = 0.5, upper: float = 99.5, allow_missing_keys: bool = False
    ):
        super().__init__(
            keys,
            lower,
            upper,
            b_min=0.0,
            b_max=1.0,
            clip=True,
            dtype=np.float32,
            allow_missing_keys=allow_missing_keys,
        )
