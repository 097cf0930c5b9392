"""N4 bias-field correction on a synthetic two-tissue phantom with a known multiplicative field."""

from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy.interpolate import BSpline

from lib.preprocessing import MRINormalized, N4BiasFieldCorrectiond, n4_bias_correct, otsu_foreground, zscore
from lib.preprocessing.mri import _coarse_axis, _log_bias_at_full_resolution

SAMPLE_MRI = Path(__file__).resolve().parents[1] / "sample-data" / "mri" / "head_000.nii.gz"


def _phantom(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tissue image with classes 100/200 in a sphere, true field 1 + 0.4 * oblique gradient, sphere)."""
    grid = np.meshgrid(*[np.linspace(-1.0, 1.0, n) for n in shape], indexing="ij")
    sphere = np.sqrt(sum(g**2 for g in grid)) < 0.8
    tissue = np.where(sphere, np.where(grid[0] + 0.5 * grid[1] < 0.1, 100.0, 200.0), 0.0)
    field = 1.0 + 0.4 * (0.6 * grid[0] + 0.8 * grid[-1])
    return tissue, field, sphere


def _cv(img: np.ndarray, region: np.ndarray) -> float:
    return float(img[region].std() / img[region].mean())


def _assert_corrected(observed, corrected, bias, tissue, field, sphere, cv_ratio=0.2, corr=0.95) -> None:
    for value in (100.0, 200.0):
        tissue_class = sphere & (tissue == value)
        assert _cv(corrected, tissue_class) < cv_ratio * _cv(observed, tissue_class)
    unit_field = field / np.exp(np.log(field[sphere]).mean())  # both fields: geometric mean 1 in the mask
    assert np.corrcoef(bias[sphere], unit_field[sphere])[0, 1] > corr


def test_n4_recovers_known_field_128_cube() -> None:
    tissue, field, sphere = _phantom((128, 128, 128))
    observed = (tissue * field).astype(np.float32)
    corrected, bias = n4_bias_correct(observed)  # default Otsu mask, shrink 4
    assert corrected.dtype == bias.dtype == np.float32 and corrected.shape == bias.shape == observed.shape
    _assert_corrected(observed, corrected, bias, tissue, field, sphere, cv_ratio=0.1, corr=0.99)
    np.testing.assert_allclose(np.exp(np.log(bias[otsu_foreground(observed)]).mean()), 1.0, rtol=1e-4)
    np.testing.assert_allclose(corrected, observed / bias, rtol=1e-5)  # positive image: no shift


@pytest.mark.parametrize(("dtype", "scale"), [(np.uint8, 0.5), (np.int16, 10.0), (np.float32, 0.01)])
def test_n4_any_dtype_and_range(dtype: type, scale: float) -> None:
    tissue, field, sphere = _phantom((40, 48, 36))  # non-cubic: catches axis-order mistakes
    observed = (tissue * field * scale).astype(dtype)
    corrected, bias = n4_bias_correct(observed, mask=sphere, spacing=(1.0, 1.0, 2.0))
    _assert_corrected(observed, corrected, bias, tissue, field, sphere)


def test_n4_non_positive_values_in_mask() -> None:
    """Values <= 0 inside the mask are shifted for N4; an additive offset is not multiplicative, so the
    correction is only partial but must stay finite and clearly helpful."""
    tissue, field, sphere = _phantom((40, 48, 36))
    observed = (tissue * field - 80.0).astype(np.float32)
    assert observed[sphere].min() < 0
    corrected, bias = n4_bias_correct(observed, mask=sphere)
    assert np.isfinite(corrected).all() and (bias > 0).all()
    _assert_corrected(observed + 80.0, corrected + 80.0, bias, tissue, field, sphere, cv_ratio=0.7)


def test_n4_2d_with_shrink_factor() -> None:
    tissue, field, sphere = _phantom((120, 100))
    observed = tissue * field
    corrected, bias = n4_bias_correct(torch.as_tensor(observed), mask=sphere, shrink_factor=2)
    assert isinstance(corrected, torch.Tensor) and corrected.dtype == torch.float32
    _assert_corrected(observed, corrected.numpy(), bias.numpy(), tissue, field, sphere)


def test_n4_errors() -> None:
    with pytest.raises(ValueError, match="2-D or 3-D"):
        n4_bias_correct(np.ones((1, 8, 8, 8)))
    with pytest.raises(ValueError, match="empty"):
        n4_bias_correct(np.ones((8, 8, 8)))  # constant image: empty Otsu foreground
    with pytest.raises(ValueError, match="shrink_factor"):
        n4_bias_correct(np.ones((8, 8, 8)), shrink_factor=0)


def test_otsu_foreground_fills_holes() -> None:
    tissue, _, sphere = _phantom((32, 32, 32))
    hollow = np.where(np.linalg.norm(np.indices(tissue.shape) - 15.5, axis=0) < 5, 0.0, tissue)
    np.testing.assert_array_equal(otsu_foreground(hollow), sphere)
    assert not otsu_foreground(np.full((4, 4), 7.0)).any()


def test_dict_transforms_on_metatensor() -> None:
    tissue, field, sphere = _phantom((40, 40, 40))
    observed = np.stack([tissue * field, 2 * tissue * field]).astype(np.float32)  # two channels
    affine = torch.diag(torch.tensor([1.0, 1.0, 1.5, 1.0], dtype=torch.float64))
    data = {"image": MetaTensor(torch.as_tensor(observed), affine=affine), "brain": sphere[None]}

    out = N4BiasFieldCorrectiond("image", mask_key="brain")(data)["image"]
    assert isinstance(out, MetaTensor) and out.dtype == torch.float32 and torch.equal(out.affine, affine)
    for channel in range(2):
        expected, _ = n4_bias_correct(observed[channel], sphere, spacing=(1.0, 1.0, 1.5))
        np.testing.assert_allclose(out[channel].numpy(), expected, rtol=1e-5)

    out = MRINormalized("image")(data)["image"].numpy()  # Otsu foreground per channel
    for channel in range(2):
        foreground = otsu_foreground(observed[channel])
        assert abs(out[channel][foreground].mean()) < 1e-4 and abs(out[channel][foreground].std() - 1) < 1e-4
        np.testing.assert_array_equal(out[channel][~foreground], 0.0)
        bright = sphere & (tissue == 200)  # within-class spread vs. z-scoring without N4
        assert out[channel][bright].std() < 0.2 * zscore(observed[channel], mask=foreground)[bright].std()


def _scipy_lattice_field(lattice, shape: tuple[int, ...]) -> np.ndarray:
    """Reference evaluation of a cubic B-spline control-point lattice over the grid ``shape``: the
    ``n - 3`` spans of an axis with ``n`` control points cover voxel 0 .. N-1, evaluated separably."""
    size = tuple(lattice.GetLargestPossibleRegion().GetSize())  # ITK (x, y, z) order
    field = np.empty(size[::-1], dtype=np.float64)
    for index in np.ndindex(field.shape):
        field[index] = lattice.GetPixel([int(i) for i in index[::-1]])[0]
    for axis, (n_voxels, n_ctrl) in enumerate(zip(shape, field.shape, strict=True)):
        knots = np.arange(-3, n_ctrl + 1, dtype=np.float64)
        basis = BSpline.design_matrix(np.linspace(0.0, n_ctrl - 3, n_voxels), knots, 3).toarray()
        field = np.moveaxis(np.tensordot(basis, field, axes=(1, axis)), 0, axis)
    return field


def test_full_resolution_field_is_the_lattice_bspline_on_a_sample_mri() -> None:
    """ITK's lattice evaluation (what n4_bias_correct uses) equals the B-spline maths written out."""
    image = np.asarray(nib.load(SAMPLE_MRI).dataobj, dtype=np.float32)
    coarse = np.ix_(*[_coarse_axis(n, 4) for n in image.shape])
    image_type = itk.Image[itk.F, 3]
    n4 = itk.N4BiasFieldCorrectionImageFilter[image_type, itk.Image[itk.UC, 3], image_type].New(
        Input=itk.image_from_array(np.ascontiguousarray(image[coarse] + 1.0)),
        MaskImage=itk.image_from_array(otsu_foreground(image)[coarse].astype(np.uint8)),
    )
    n4.SetMaximumNumberOfIterations([5, 5])
    n4.SetNumberOfFittingLevels(2)
    n4.SetNumberOfControlPoints([4, 6, 6])
    n4.Update()
    reference = _scipy_lattice_field(n4.GetLogBiasFieldControlPointLattice(), image.shape)
    assert np.ptp(reference) > 0.05  # a real, non-flat field
    np.testing.assert_allclose(_log_bias_at_full_resolution(n4, image), reference, rtol=0, atol=2e-5)
