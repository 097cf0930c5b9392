"""X-ray histogram equalisation and CLAHE: uniform CDF, monotonicity, gamma invariance, local contrast."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

from lib.preprocessing import CLAHEd, HistogramEqualized, clahe, histogram_equalize

RNG = np.random.default_rng(0)
SKEWED = RNG.gamma(2.0, 300.0, (128, 160))  # right-skewed, like raw detector counts


def _max_cdf_error(out: np.ndarray) -> float:
    """Largest gap between the empirical CDF of ``out`` and the uniform CDF on [0, 1]."""
    q = np.linspace(0.0, 1.0, 101)
    return float(np.abs(np.searchsorted(np.sort(out.ravel()), q, side="right") / out.size - q).max())


def _local_contrast(img: np.ndarray, size: int = 15) -> float:
    """Mean local standard deviation over ``size`` x ``size`` windows."""
    img = img.astype(np.float64)
    mean = ndimage.uniform_filter(img, size)
    return float(np.sqrt(np.maximum(ndimage.uniform_filter(img * img, size) - mean * mean, 0.0)).mean())


@pytest.mark.parametrize(("dtype", "tolerance"), [(np.uint16, 0.005), (np.int16, 0.005), (np.float32, 0.03)])
def test_equalised_cdf_is_uniform_and_mapping_monotonic(dtype: type, tolerance: float) -> None:
    img = (SKEWED - (500 if dtype is np.int16 else 0)).astype(dtype)  # int16: negative values too
    out = histogram_equalize(img)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert 0.0 <= out.min() and out.max() == 1.0
    assert _max_cdf_error(out) < tolerance
    order = np.argsort(img.ravel(), kind="stable")
    assert (np.diff(out.ravel()[order]) >= 0).all()  # order-preserving


def test_equalisation_invariant_under_gamma() -> None:
    grey = np.clip(SKEWED / 10, 0, 255).astype(np.uint8)
    gamma = np.round(65535 * (grey / 255.0) ** 0.5).astype(np.uint16)  # strictly increasing on 0..255
    assert len(np.unique(gamma)) == len(np.unique(grey))
    np.testing.assert_array_equal(histogram_equalize(grey), histogram_equalize(gamma))
    # Float images are binned (nbins), so the invariance only holds up to bin-sized ties.
    unit = grey.astype(np.float32) / 255
    assert np.abs(histogram_equalize(unit) - histogram_equalize(unit**2)).mean() < 0.03


def test_histogram_equalize_mask_and_constant() -> None:
    img = SKEWED.astype(np.float32)
    mask = np.zeros(img.shape, dtype=bool)
    mask[32:96, 40:120] = True
    out = histogram_equalize(img, mask=mask)
    assert _max_cdf_error(out[mask]) < 0.03  # uniform over the mask that defined the CDF
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(histogram_equalize(img, mask=np.zeros_like(mask)), histogram_equalize(img))
    for constant in (np.full((8, 8), 7, np.uint8), np.full((8, 8), -2.5)):
        np.testing.assert_array_equal(histogram_equalize(constant), 0.0)
        np.testing.assert_array_equal(clahe(constant), 0.0)


def test_clahe_increases_local_contrast() -> None:
    rows, cols = np.mgrid[:256, :256]
    # Low contrast: a faint texture (amplitude 0.01) on a broad ramp that already spans the full range.
    img = 0.45 + 0.1 * cols / 255 + 0.01 * np.sin(rows / 3.0) * np.sin(cols / 3.0)
    out = clahe(img)
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    baseline = _local_contrast((img - img.min()) / (img.max() - img.min()))  # same [0, 1] stretch
    assert _local_contrast(out) > 1.5 * baseline
    assert _local_contrast(clahe(img, clip_limit=0.03)) > _local_contrast(out)  # higher clip: more contrast


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float64])
def test_clahe_any_dtype_in_unit_range(dtype: type) -> None:
    img = (SKEWED * (0.05 if dtype is np.uint8 else 1.0) - (1000 if dtype is np.int16 else 0)).astype(dtype)
    out = clahe(img, kernel_size=32)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert 0.0 <= out.min() and out.max() <= 1.0 and out.std() > 0.1


def test_functions_reject_non_2d() -> None:
    for fn in (histogram_equalize, clahe):
        with pytest.raises(ValueError, match="2-D"):
            fn(np.zeros((1, 8, 8)))


def test_dict_transforms_per_channel() -> None:
    channels = np.stack([SKEWED, SKEWED**2]).astype(np.float32)  # (C, H, W)
    affine = torch.diag(torch.tensor([0.2, 0.2, 1.0, 1.0], dtype=torch.float64))
    mask = np.zeros((1, *SKEWED.shape), dtype=np.uint8)
    mask[:, 10:100, 20:140] = 1
    data = {"image": MetaTensor(torch.as_tensor(channels), affine=affine), "lungs": mask}

    out = HistogramEqualized("image", mask_key="lungs")(data)["image"]
    assert isinstance(out, MetaTensor) and out.dtype == torch.float32 and torch.equal(out.affine, affine)
    for c in range(2):
        np.testing.assert_allclose(out[c].numpy(), histogram_equalize(channels[c], mask=mask[0]), atol=1e-6)

    out = CLAHEd("image", clip_limit=0.02)({"image": channels})["image"]
    assert isinstance(out, np.ndarray) and out.shape == channels.shape
    np.testing.assert_allclose(out[1], clahe(channels[1], clip_limit=0.02), atol=1e-6)
