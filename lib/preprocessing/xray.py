"""X-ray contrast enhancement: global histogram equalisation and CLAHE (scikit-image) for 2-D images."""

import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms.utils import rescale_array
from monai.utils import convert_data_type, convert_to_dst_type
from skimage.exposure import equalize_adapthist, equalize_hist

from lib.preprocessing.intensity import MaskedMapTransform, map_channels, region_mask

_MAX_GREY_LEVELS = 2**16  # integer images with a wider range are binned like float images


def _as_2d(img: NdarrayOrTensor) -> np.ndarray:
    """``img`` as a 2-D numpy array of its own dtype; ValueError otherwise."""
    arr = convert_data_type(img, np.ndarray)[0]
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D (H, W) image, got shape {arr.shape}")
    return arr


def histogram_equalize(
    img: NdarrayOrTensor, nbins: int = 256, mask: NdarrayOrTensor | None = None
) -> NdarrayOrTensor:
    """Global histogram equalisation of a 2-D image to float32 [0, 1] (``skimage.exposure.equalize_hist``).

    Each pixel maps to the CDF of its value, so the output CDF is approximately uniform and the
    mapping is monotonic. Integer images spanning up to 2**16 grey levels get one bin per level
    (``nbins`` is ignored), which makes the result exact and invariant under any strictly increasing
    change of grey levels; other images are binned into ``nbins`` bins over their range. With a
    non-empty ``mask`` the CDF comes from the masked pixels and is applied to all (an empty mask means
    the whole image). A constant image (or masked region) returns zeros.
    """
    arr = _as_2d(img)
    region = region_mask(arr, mask)
    region = region if region is not None and region.any() else None
    values = arr if region is None else arr[region]
    if arr.dtype.kind in "iu" and int(values.max()) - int(values.min()) > _MAX_GREY_LEVELS:
        arr = arr.astype(np.float64)  # bincount over a huge range would not fit in memory: bin instead
    if values.min() == values.max():
        out = np.zeros(arr.shape, dtype=np.float32)
    else:
        out = equalize_hist(arr, nbins=nbins, mask=region)
    return convert_to_dst_type(out, img, dtype=np.float32)[0]


def clahe(
    img: NdarrayOrTensor,
    clip_limit: float = 0.01,
    kernel_size: int | tuple[int, int] | None = None,
    nbins: int = 256,
) -> NdarrayOrTensor:
    """CLAHE of a 2-D image of any dtype/range: min-max to [0, 1], then
    ``skimage.exposure.equalize_adapthist`` (``kernel_size`` None = 1/8 of each side). Returns float32
    [0, 1]; a constant image returns zeros."""
    unit = rescale_array(_as_2d(img), 0.0, 1.0, dtype=np.float32)
    out = unit if unit.max() == 0 else equalize_adapthist(unit, kernel_size, clip_limit, nbins)
    return convert_to_dst_type(out, img, dtype=np.float32)[0]


class HistogramEqualized(MaskedMapTransform):
    """Dictionary :func:`histogram_equalize`, per channel of ``(C, H, W)`` images; optional ``mask_key``."""

    def __init__(
        self,
        keys: KeysCollection,
        nbins: int = 256,
        mask_key: str | None = None,
        allow_missing_keys: bool = False,
    ):
        super().__init__(keys, mask_key, allow_missing_keys)
        self.nbins = nbins

    def transform(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None) -> NdarrayOrTensor:
        return map_channels(lambda ch, region: histogram_equalize(ch, self.nbins, region), img, mask)


class CLAHEd(MaskedMapTransform):
    """Dictionary :func:`clahe`, per channel of ``(C, H, W)`` images."""

    def __init__(
        self,
        keys: KeysCollection,
        clip_limit: float = 0.01,
        kernel_size: int | tuple[int, int] | None = None,
        nbins: int = 256,
        allow_missing_keys: bool = False,
    ):
        super().__init__(keys, allow_missing_keys=allow_missing_keys)
        self.clip_limit, self.kernel_size, self.nbins = clip_limit, kernel_size, nbins

    def transform(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None) -> NdarrayOrTensor:
        return map_channels(
            lambda channel, _: clahe(channel, self.clip_limit, self.kernel_size, self.nbins), img
        )
