"""Intensity normalisation (percentile clip + min-max, z-score) and the dictionary-transform plumbing.

All functions take numpy arrays or torch tensors / MetaTensors and return the input's type as float32
(MetaTensor meta and affine preserved). Masks are "non-zero = foreground" and must broadcast to the image.
"""

from collections.abc import Callable, Hashable, Mapping

import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform
from monai.utils import convert_data_type, convert_to_dst_type


def region_mask(img: np.ndarray, mask: NdarrayOrTensor | None) -> np.ndarray | None:
    """Boolean foreground (``mask != 0``) broadcast to ``img.shape``; ``None`` when ``mask`` is ``None``."""
    if mask is None:
        return None
    return np.broadcast_to(convert_data_type(mask, np.ndarray)[0] != 0, img.shape)


def percentile_normalize(
    img: NdarrayOrTensor,
    lower: float = 0.5,
    upper: float = 99.5,
    mask: NdarrayOrTensor | None = None,
    eps: float = 1e-8,
) -> NdarrayOrTensor:
    """Clip to the ``lower``/``upper`` percentiles, then scale that range to [0, 1].

    Percentiles are taken over the mask's voxels when ``mask`` is given and non-empty (an empty mask
    falls back to the whole image); every voxel is then clipped and scaled. A constant image (range
    below ``eps``) maps to zeros. ``lower=0, upper=100`` is plain min-max scaling.
    """
    if not 0.0 <= lower <= upper <= 100.0:
        raise ValueError(f"need 0 <= lower <= upper <= 100, got lower={lower}, upper={upper}")
    arr = convert_data_type(img, np.ndarray, dtype=np.float32)[0]
    region = region_mask(arr, mask)
    values = arr[region] if region is not None and region.any() else arr
    lo, hi = np.percentile(values, [lower, upper])
    out = (np.clip(arr, lo, hi) - lo) / max(hi - lo, eps)
    return convert_to_dst_type(out, img, dtype=np.float32)[0]


def zscore(
    img: NdarrayOrTensor,
    nonzero: bool = False,
    mask: NdarrayOrTensor | None = None,
    eps: float = 1e-8,
) -> NdarrayOrTensor:
    """``(x - mean) / std`` (population std, floored at ``eps``; a constant image gives zeros).

    Without ``nonzero``/``mask`` the statistics and the normalisation cover the whole image. Otherwise
    the region is the non-zero voxels (``nonzero=True``) intersected with ``mask``: statistics come from
    the region, only region voxels are normalised and every voxel outside it is set to 0 (so with
    ``nonzero=True`` zeros stay 0). An empty region gives all zeros.
    """
    arr = convert_data_type(img, np.ndarray, dtype=np.float32)[0]
    region = region_mask(arr, mask)
    if nonzero:
        region = arr != 0 if region is None else region & (arr != 0)
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


class PercentileNormalized(MaskedMapTransform):
    """Dictionary :func:`percentile_normalize` over the whole ``(C, spatial...)`` array (optional mask)."""

    def __init__(
        self,
        keys: KeysCollection,
        lower: float = 0.5,
        upper: float = 99.5,
        mask_key: str | None = None,
        allow_missing_keys: bool = False,
    ):
        super().__init__(keys, mask_key, allow_missing_keys)
        self.lower, self.upper = lower, upper

    def transform(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None) -> NdarrayOrTensor:
        return percentile_normalize(img, self.lower, self.upper, mask)


class ZScored(MaskedMapTransform):
    """Dictionary :func:`zscore` over the whole ``(C, spatial...)`` array (optional mask)."""

    def __init__(
        self,
        keys: KeysCollection,
        nonzero: bool = False,
        mask_key: str | None = None,
        allow_missing_keys: bool = False,
    ):
        super().__init__(keys, mask_key, allow_missing_keys)
        self.nonzero = nonzero

    def transform(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None) -> NdarrayOrTensor:
        return zscore(img, self.nonzero, mask)
