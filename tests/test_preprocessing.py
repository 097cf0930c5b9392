"""Intensity normalisation and CT windowing: known answers, edge cases, array/tensor/MetaTensor types."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import NormalizeIntensity

from lib.preprocessing import CT_WINDOWS, CTWindowd, PercentileNormalized, ct_window, zscore

AFFINE = torch.diag(torch.tensor([0.8, 0.8, 2.5, 1.0], dtype=torch.float64))


def _meta(arr: np.ndarray) -> MetaTensor:
    return MetaTensor(torch.as_tensor(arr), affine=AFFINE, meta={"filename_or_obj": "case.nii.gz"})


def _assert_meta_kept(out: object) -> None:
    assert isinstance(out, MetaTensor)
    assert out.dtype == torch.float32
    assert torch.equal(out.affine, AFFINE)
    assert out.meta["filename_or_obj"] == "case.nii.gz"


# ---- PercentileNormalized (MONAI's ScaleIntensityRangePercentilesd) ---------------------------------


def test_percentile_normalized_clips_and_scales() -> None:
    img = np.arange(1001.0, dtype=np.float32).reshape(1, 1001)
    out = PercentileNormalized("image", lower=1.0, upper=99.0)({"image": img})["image"]
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out[0, :11], 0.0)  # <= 1st percentile (10)
    np.testing.assert_allclose(out[0, 990:], 1.0)  # >= 99th percentile (990)
    np.testing.assert_allclose(out[0, 500], 490 / 980, rtol=1e-6)


def test_percentile_normalized_defaults_and_meta() -> None:
    img = np.random.default_rng(0).normal(50, 20, (1, 40, 40)).astype(np.float32)
    out = PercentileNormalized("image")({"image": _meta(img), "other": "untouched"})
    _assert_meta_kept(out["image"])
    assert out["other"] == "untouched"
    lo, hi = np.percentile(img, [0.5, 99.5])  # the chain's defaults: markers do not set the range
    np.testing.assert_allclose(out["image"].numpy(), (np.clip(img, lo, hi) - lo) / (hi - lo), atol=1e-6)


# ---- zscore -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, -1024.0, 3.5])
def test_constant_image_gives_zeros(value: float) -> None:
    img = np.full((1, 4, 5, 6), value, dtype=np.float32)
    for out in (PercentileNormalized("image")({"image": img})["image"].numpy(), zscore(img)):
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out, 0.0)


def test_zscore_whole_image_is_monai_normalize_intensity() -> None:
    img = np.random.default_rng(1).normal(300, 40, (1, 16, 16, 16))
    out = zscore(img)
    assert out.dtype == np.float32
    assert abs(out.mean()) < 1e-5 and abs(out.std() - 1) < 1e-5
    np.testing.assert_allclose(out, NormalizeIntensity()(img), atol=1e-5)


def test_zscore_mask_region() -> None:
    img = np.random.default_rng(3).normal(10, 2, (2, 8, 8, 8)).astype(np.float32)
    mask = np.zeros((1, 8, 8, 8), dtype=np.uint8)  # one-channel mask broadcast over both channels
    mask[:, :4] = 1
    out = zscore(img, mask=mask)
    region = np.broadcast_to(mask != 0, img.shape)
    np.testing.assert_array_equal(out[~region], 0.0)
    assert abs(out[region].mean()) < 1e-5 and abs(out[region].std() - 1) < 1e-5
    np.testing.assert_array_equal(zscore(img, mask=np.zeros_like(mask)), 0.0)  # empty region


def test_zscore_mask_is_what_monai_nonzero_cannot_do() -> None:
    """Why zscore is hand-written: an MR head after N4 has a non-zero background and zeros inside."""
    img = np.full((1, 12, 12), 5.0, dtype=np.float32)  # background (non-zero, as after N4)
    img[:, 3:9, 3:9] = np.random.default_rng(6).normal(100, 10, (1, 6, 6))
    img[0, 5, 5] = 0.0  # a zero inside the head
    head = np.zeros_like(img, dtype=bool)
    head[:, 3:9, 3:9] = True
    ours = zscore(img, mask=head)
    assert abs(ours[head].mean()) < 1e-5 and ours[0, 5, 5] < -3  # the zero is normalised with the head
    np.testing.assert_array_equal(ours[~head], 0.0)
    monai = np.asarray(NormalizeIntensity(nonzero=True)(img))
    assert monai[0, 5, 5] == 0.0 and abs(monai[~head]).min() > 0.5  # zero skipped, background in the stats


# ---- types ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [zscore, lambda x: ct_window(x, "abdomen")])
def test_functions_keep_container_type(fn) -> None:
    arr = np.random.default_rng(4).integers(-1000, 1000, (1, 6, 7, 8)).astype(np.int16)
    out_np = fn(arr)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float32
    out_t = fn(torch.as_tensor(arr))
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), out_np, atol=1e-6)
    _assert_meta_kept(fn(_meta(arr)))


def test_missing_keys() -> None:
    with pytest.raises(KeyError):
        PercentileNormalized("image")({"label": np.zeros((1, 2, 2))})
    assert "image" not in PercentileNormalized("image", allow_missing_keys=True)(
        {"label": np.zeros((1, 2, 2))}
    )


# ---- CT windows -------------------------------------------------------------------------------------


def test_ct_window_presets_documented_values() -> None:
    assert dict(CT_WINDOWS) == {
        "liver": (150.0, 50.0),
        "abdomen": (400.0, 40.0),
        "lung": (1500.0, -600.0),
        "bone": (1800.0, 400.0),
        "brain": (80.0, 40.0),
    }


@pytest.mark.parametrize("preset", sorted(CT_WINDOWS))
def test_ct_window_known_answers(preset: str) -> None:
    width, level = CT_WINDOWS[preset]
    hu = np.array([level - width, level - width / 2, level, level + width / 2, level + width])
    np.testing.assert_allclose(ct_window(hu, preset), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)


def test_ct_window_explicit_and_overridden_window() -> None:
    hu = np.array([-100.0, 0.0, 100.0, 300.0], dtype=np.float32)
    np.testing.assert_allclose(ct_window(hu, width=200, level=0), [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(ct_window(hu, "abdomen", level=100), [0.0, 0.25, 0.5, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"preset": "kidney"}, "abdomen, bone, brain, liver, lung"),
        ({"width": 100}, "width and level"),
        ({"width": 0, "level": 40}, "width must be > 0"),
        ({"preset": "lung", "width": -5}, "width must be > 0"),
    ],
)
def test_ct_window_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ct_window(np.zeros(3), **kwargs)
    with pytest.raises(ValueError, match=match):
        CTWindowd("image", **{"preset": None, **kwargs})


def test_ct_windowd_metatensor() -> None:
    hu = np.array([-1000, -160, 40, 240, 3000], dtype=np.int16).reshape(1, 5, 1, 1)
    out = CTWindowd("image")({"image": _meta(hu)})["image"]
    _assert_meta_kept(out)
    np.testing.assert_allclose(out.numpy().ravel(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(
        CTWindowd("image", preset="brain")({"image": hu})["image"].ravel(), [0.0, 0.0, 0.5, 1.0, 1.0]
    )
