"""MRI bias-field correction (ITK N4 on a shrunk grid, field rebuilt at full resolution) and normalisation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import itk
import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.utils import convert_data_type, convert_to_dst_type
from scipy import ndimage
from skimage.filters import threshold_otsu

from lib.preprocessing.intensity import MaskedMapTransform, map_channels, region_mask, zscore

_SPLINE_ORDER = 3  # ITK N4's default B-spline order: the mesh has spans + 3 control points per axis


def otsu_foreground(img: NdarrayOrTensor) -> np.ndarray:
    """Boolean mask of voxels above Otsu's threshold, holes filled; all False for a constant image."""
    arr = convert_data_type(img, np.ndarray)[0]
    if arr.min() == arr.max():
        return np.zeros(arr.shape, dtype=bool)
    return ndimage.binary_fill_holes(arr > threshold_otsu(arr))


def _coarse_axis(size: int, shrink_factor: int) -> np.ndarray:
    """Voxel indices subsampling an axis by ~``shrink_factor`` with both end voxels kept (corner-aligned;
    nearest voxels, no blending, like ITK's ShrinkImageFilter)."""
    return np.round(np.linspace(0, size - 1, math.ceil((size - 1) / shrink_factor) + 1)).astype(int)


def _log_bias_at_full_resolution(n4: itk.ProcessObject, image: np.ndarray) -> np.ndarray:
    """The fitted N4's log-bias B-spline lattice evaluated at every voxel of ``image`` (float64).

    ITK's BSplineControlPointImageFilter (through N4's ``ReconstructBiasField``) spans the lattice over
    whichever grid the filter's input has; an N4 whose input is the full image therefore evaluates it
    there, first and last voxels on the shrunk grid's (equal to a separable scipy B-spline evaluation
    to 2e-5, see tests/test_mri_n4.py).
    """
    full = type(n4).New(Input=itk.image_from_array(np.ascontiguousarray(image)))
    log_bias = full.ReconstructBiasField(n4.GetLogBiasFieldControlPointLattice())
    return itk.array_from_image(log_bias).astype(np.float64)


def n4_bias_correct(
    img: NdarrayOrTensor,
    mask: NdarrayOrTensor | None = None,
    shrink_factor: int = 4,
    max_iterations: Sequence[int] = (50, 50, 30),
    convergence: float = 1e-3,
    spacing: Sequence[float] | None = None,
) -> tuple[NdarrayOrTensor, NdarrayOrTensor]:
    """N4 bias-field correction of one 2-D or 3-D image (no channel axis), any dtype and range.

    N4 (``itk.N4BiasFieldCorrectionImageFilter``) is fitted on a grid subsampled by ``shrink_factor``
    whose first and last voxels coincide with the full image's, so its log-bias B-spline lattice is
    evaluated exactly at full resolution (a 256^3 volume takes seconds). ``len(max_iterations)`` is the
    number of fitting levels. ``spacing`` (numpy axis order, default isotropic) only shapes the initial
    B-spline mesh: one span along the physically shortest axis, proportionally more along longer ones.

    ``mask`` defaults to :func:`otsu_foreground`. N4 needs positive intensities: if the masked minimum is
    <= 0 the image is shifted to put it at 1% of the masked range, corrected, and shifted back.

    Returns ``(corrected, bias_field)``, float32 of the input's type and shape, with
    ``corrected = (img + shift) / bias_field - shift`` and the bias field scaled to geometric mean 1 over
    the mask (so intensities keep their scale). Raises ValueError for other dimensionalities, a
    ``shrink_factor`` < 1 or a mask that is empty on the shrunk grid.
    """
    arr = convert_data_type(img, np.ndarray, dtype=np.float32)[0]
    if arr.ndim not in (2, 3) or min(arr.shape) < 2:
        raise ValueError(f"expected a 2-D or 3-D image with every size >= 2, got shape {arr.shape}")
    if shrink_factor < 1:
        raise ValueError(f"shrink_factor must be >= 1, got {shrink_factor}")
    foreground = otsu_foreground(arr) if mask is None else region_mask(arr, mask)
    spacing = np.ones(arr.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)

    coarse_index = np.ix_(*[_coarse_axis(n, shrink_factor) for n in arr.shape])
    coarse_mask = foreground[coarse_index]
    if not coarse_mask.any():
        raise ValueError("foreground mask is empty (at the shrunk resolution)")
    values = arr[foreground]
    low = float(values.min())
    shift = 0.0 if low > 0 else 0.01 * (float(values.max()) - low or 1.0) - low
    shifted = arr + shift

    extent = (np.asarray(arr.shape) - 1) * spacing
    spans = np.maximum(1, np.round(extent / extent.min())).astype(int)
    image_type = itk.Image[itk.F, arr.ndim]
    n4 = itk.N4BiasFieldCorrectionImageFilter[image_type, itk.Image[itk.UC, arr.ndim], image_type].New(
        Input=itk.image_from_array(np.ascontiguousarray(shifted[coarse_index])),
        MaskImage=itk.image_from_array(coarse_mask.astype(np.uint8)),
    )
    n4.SetNumberOfFittingLevels(len(max_iterations))
    n4.SetMaximumNumberOfIterations([int(i) for i in max_iterations])
    n4.SetConvergenceThreshold(convergence)
    n4.SetNumberOfControlPoints([int(s) + _SPLINE_ORDER for s in spans[::-1]])
    n4.Update()

    log_bias = _log_bias_at_full_resolution(n4, shifted)
    bias = np.exp(log_bias - log_bias[foreground].mean())
    corrected = shifted / bias - shift
    return (
        convert_to_dst_type(corrected, img, dtype=np.float32)[0],
        convert_to_dst_type(bias, img, dtype=np.float32)[0],
    )


class N4BiasFieldCorrectiond(MaskedMapTransform):
    """Dictionary :func:`n4_bias_correct`, per channel of ``(C, spatial...)`` images.

    ``mask_key`` (``(1 or C, spatial...)``, non-zero = foreground) defaults to per-channel Otsu. The
    spacing comes from a MetaTensor's ``pixdim`` (isotropic for plain arrays/tensors).
    """

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str | None = None,
        shrink_factor: int = 4,
        max_iterations: Sequence[int] = (50, 50, 30),
        convergence: float = 1e-3,
        allow_missing_keys: bool = False,
    ):
        super().__init__(keys, mask_key, allow_missing_keys)
        self.shrink_factor = shrink_factor
        self.max_iterations = tuple(max_iterations)
        self.convergence = convergence

    def transform(self, img: NdarrayOrTensor, mask: NdarrayOrTensor | None) -> NdarrayOrTensor:
        spacing = img.pixdim.tolist() if isinstance(img, MetaTensor) else None
        return map_channels(lambda channel, region: self._channel(channel, region, spacing), img, mask)

    def _channel(self, img: np.ndarray, mask: np.ndarray | None, spacing: list[float] | None) -> np.ndarray:
        corrected, _ = n4_bias_correct(
            img, mask, self.shrink_factor, self.max_iterations, self.convergence, spacing
        )
        return corrected


class MRINormalized(N4BiasFieldCorrectiond):
    """N4 bias correction (unless ``n4=False``), then z-score over the foreground (``mask_key`` or
    per-channel Otsu, holes filled); background voxels become 0. Otherwise the same arguments as
    :class:`N4BiasFieldCorrectiond`."""

    def __init__(self, keys: KeysCollection, n4: bool = True, **kwargs) -> None:
        super().__init__(keys, **kwargs)
        self.n4 = n4

    def _channel(self, img: np.ndarray, mask: np.ndarray | None, spacing: list[float] | None) -> np.ndarray:
        foreground = otsu_foreground(img) if mask is None else mask
        if self.n4:
            img = super()._channel(img, foreground, spacing)
        return zscore(img, mask=foreground)
