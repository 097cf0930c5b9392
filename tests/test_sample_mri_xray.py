"""Synthetic MRI head and chest X-ray sample data: reproducibility, geometry, masks, contrast, size."""

import importlib
import sys
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

SAMPLE = Path(__file__).resolve().parents[1] / "sample-data"
MRI_DIR, XRAY_DIR = SAMPLE / "mri", SAMPLE / "xray"


def _generator(name: str) -> ModuleType:
    """Import a ``sample-data`` generator (they import ``phantom_utils`` from their own folder)."""
    if str(SAMPLE) not in sys.path:
        sys.path.insert(0, str(SAMPLE))
    return importlib.import_module(name)


mri = _generator("generate_mri")
Tissue = _generator("mri_phantom.tissues").Tissue
xray = _generator("generate_xray")
utils = _generator("phantom_utils")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def head() -> tuple:
    """The committed case ``head_005`` regenerated (smallest; ~3 s)."""
    spec = next(s for s in mri.CASES if s.name == "head_005")
    return spec, mri.generate_case(spec.seed, spec.spacing, spec.orientation)


# ----------------------------------------------------------------------------- MRI


def test_mri_regeneration_is_bit_identical(head: tuple) -> None:
    spec, case = head
    assert utils.nifti_gz_bytes(case.image, case.affine) == (MRI_DIR / f"{spec.name}.nii.gz").read_bytes()
    label = MRI_DIR / "labels" / "final" / f"{spec.name}.nii.gz"
    assert utils.nifti_gz_bytes(case.mask, case.affine) == label.read_bytes()


def test_mri_committed_cases_geometry_and_masks() -> None:
    names = sorted(p.name for p in MRI_DIR.glob("head_*.nii.gz"))
    assert names == [f"{s.name}.nii.gz" for s in mri.CASES] and len(names) >= 12
    codes = []
    for name in names:
        img, lab = nib.load(MRI_DIR / name), nib.load(MRI_DIR / "labels" / "final" / name)
        assert img.get_data_dtype() == np.int16 and lab.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(img.affine, lab.affine)
        zooms = np.array(img.header.get_zooms())
        assert zooms[0] == zooms[1] and 1.0 <= zooms[0] <= 1.5 and 1.0 <= zooms[2] <= 3.0
        codes.append(nib.aff2axcodes(img.affine))
        image, mask = np.asarray(img.dataobj), np.asarray(lab.dataobj)
        assert image.shape == mask.shape and set(np.unique(mask)) == {0, 1}
        assert 700.0 < mask.sum() * zooms.prod() / 1000.0 < 1800.0  # brain volume in mL
        lo, hi = np.argwhere(mask).min(axis=0), np.argwhere(mask).max(axis=0)
        assert (lo >= 2).all() and (hi <= np.array(mask.shape) - 3).all()  # brain well inside the FOV
        border = np.concatenate([image[[0, -1]].ravel(), image[:, [0, -1]].ravel()])
        assert image[mask > 0].mean() > 10 * border.mean()  # tissue, not background noise
    assert ("R", "A", "S") in codes and ("L", "P", "S") in codes
    assert any(c[2] not in "SI" for c in codes)  # some sagittal or coronal slices


def test_mri_brain_inside_head_and_t1_contrast(head: tuple) -> None:
    _, case = head
    zooms = np.sqrt((case.affine[:3, :3] ** 2).sum(axis=0))
    to_air = ndimage.distance_transform_edt(case.tissue != Tissue.AIR, sampling=zooms)
    assert to_air[case.mask > 0].min() > 6.0  # skull, scalp and CSF between brain and air
    corrected = case.image / case.bias
    wm, gm, csf = (np.median(corrected[case.tissue == t]) for t in (Tissue.WM, Tissue.GM, Tissue.CSF))
    assert wm > 1.2 * gm and gm > 1.8 * csf
    # skull-stripping convention: sulcal CSF (inside the pial hull) is brain, the outer CSF is not
    csf_in_mask = ((case.tissue == Tissue.CSF) & (case.mask > 0)).sum() / (case.mask > 0).sum()
    assert 0.01 < csf_in_mask < 0.15
    assert ((case.tissue == Tissue.CSF) & (case.mask == 0)).sum() > 0.2 * (case.mask > 0).sum() * csf_in_mask


def test_mri_bias_field_present(head: tuple) -> None:
    """Median deep-WM intensity differs by > 15 % between 3x3x3 blocks, and not after removing the bias."""
    _, case = head
    wm = ndimage.binary_erosion(case.tissue == Tissue.WM)
    splits = [np.array_split(np.arange(n), 3) for n in case.image.shape]
    ratios = []
    for img in (case.image.astype(np.float64), case.image / case.bias):
        medians = []
        for a in splits[0]:
            for b in splits[1]:
                for c in splits[2]:
                    block = np.ix_(a, b, c)
                    if wm[block].sum() >= 100:
                        medians.append(np.median(img[block][wm[block]]))
        ratios.append(max(medians) / min(medians))
    assert ratios[0] > 1.15 and ratios[1] < 1.05


def test_mri_orientation_is_world_consistent() -> None:
    """The same head sampled RAS and PIR gives the same mask once both are reoriented to RAS."""
    masks = []
    for code in ("RAS", "PIR"):
        case = mri.generate_case(7, (3.0, 3.0, 3.0), code, supersample=1)
        canonical = nib.as_closest_canonical(nib.Nifti1Image(case.mask, case.affine))
        masks.append((np.asarray(canonical.dataobj), canonical.affine))
    np.testing.assert_array_equal(masks[0][0], masks[1][0])
    np.testing.assert_allclose(masks[0][1], masks[1][1], atol=1e-3)


# ----------------------------------------------------------------------------- X-ray


def test_xray_regeneration_is_bit_identical() -> None:
    spec = xray.CASES[1]
    case = xray.generate_case(spec.seed, spec.shape, spec.bits)
    assert utils.png_bytes(case.image) == (XRAY_DIR / f"{spec.name}.png").read_bytes()
    assert utils.png_bytes(case.mask) == (XRAY_DIR / "labels" / "final" / f"{spec.name}.png").read_bytes()


def test_xray_committed_cases_and_lung_sides() -> None:
    names = sorted(p.name for p in XRAY_DIR.glob("cxr_*.png"))
    assert names == [f"{s.name}.png" for s in xray.CASES] and len(names) >= 16
    for name in names:
        image = np.asarray(Image.open(XRAY_DIR / name))
        mask = np.asarray(Image.open(XRAY_DIR / "labels" / "final" / name))
        assert image.dtype in (np.uint8, np.uint16) and mask.dtype == np.uint8
        assert image.shape == mask.shape and all(256 <= n <= 384 for n in image.shape)
        assert set(np.unique(mask)) == {0, 1, 2}
        cols = np.arange(mask.shape[1])[None, :].repeat(mask.shape[0], axis=0)
        left, right = cols[mask == xray.LABELS["lung_left"]], cols[mask == xray.LABELS["lung_right"]]
        assert min(left.size, right.size) > 0.03 * mask.size
        centre = (mask.shape[1] - 1) / 2
        # PA view: the patient's left lung is on the image right
        assert (left > centre).mean() > 0.99 and (right < centre).mean() > 0.99
        rows = np.flatnonzero((mask > 0).any(axis=1))
        mediastinum = image[rows][:, int(centre) - 4 : int(centre) + 5]
        assert image[mask > 0].mean() < 0.8 * mediastinum.mean()  # aerated lungs darker than mediastinum


def test_sample_sizes_within_budget() -> None:
    assert _folder_bytes(MRI_DIR) <= 12_000_000
    assert _folder_bytes(XRAY_DIR) <= 5_000_000
