"""Checks on the committed synthetic CT sample data (``sample-data/ct`` and ``sample-data/ct-dicom``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import nibabel as nib
import numpy as np
import pydicom
import pytest
from scipy import ndimage

SAMPLE = Path(__file__).resolve().parents[1] / "sample-data"
CT = SAMPLE / "ct"
DICOM = SAMPLE / "ct-dicom"
MAX_BYTES = 30_000_000
# Created next to the studies by a running MONAI Label server; git-ignored, so not committed.
IGNORED = (".lock", "datastore_v2.json")


def _load_generator() -> ModuleType:
    if str(SAMPLE) not in sys.path:  # generate.py imports its sibling phantom_utils
        sys.path.insert(0, str(SAMPLE))
    spec = importlib.util.spec_from_file_location("sample_data_generate", SAMPLE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
SPECS = {spec.name: spec for spec in gen.CASES}
DICOM_SPEC = next(spec for spec in gen.CASES if spec.dicom)


@pytest.fixture(scope="module")
def cases() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """name -> (HU, label, affine) for every committed case."""
    out = {}
    for path in sorted(CT.glob("case_*.nii.gz")):
        img = nib.load(path)
        lab = nib.load(CT / "labels" / "final" / path.name)
        assert img.get_data_dtype() == np.int16 and lab.get_data_dtype() == np.uint8
        assert img.shape == lab.shape
        np.testing.assert_allclose(img.affine, lab.affine, atol=1e-5)
        out[path.name.removesuffix(".nii.gz")] = (
            np.asarray(img.dataobj),
            np.asarray(lab.dataobj),
            img.affine,
        )
    return out


def _centroid_ras(label: np.ndarray, affine: np.ndarray, value: int) -> np.ndarray:
    idx = np.argwhere(label == value).mean(axis=0)
    return affine[:3, :3] @ idx + affine[:3, 3]


def test_committed_cases_match_the_generator_table(cases):
    assert len(cases) >= 12
    assert set(cases) == set(SPECS)
    for name, (_, _, affine) in cases.items():
        spec = SPECS[name]
        np.testing.assert_allclose(
            np.abs(np.diag(affine)[:3]), [spec.inplane, spec.inplane, spec.thickness], atol=1e-5
        )
        assert "".join(nib.aff2axcodes(affine)) == spec.orientation


def test_labels_hold_all_four_organs(cases):
    for name, (_, label, _) in cases.items():
        assert set(np.unique(label)) == {0, 1, 2, 3, 4}, name
        voxel_ml = np.prod(np.abs(np.diag(cases[name][2])[:3])) / 1000.0
        for value in (1, 2, 3, 4):
            assert (label == value).sum() * voxel_ml > 5.0, (name, value)


def test_patient_left_and_right(cases):
    # RAS world: +x points to the patient's LEFT-to-RIGHT, i.e. the patient's left side has the smaller x.
    for name, (_, label, affine) in cases.items():
        liver, spleen, left, right = (_centroid_ras(label, affine, v) for v in (1, 2, 3, 4))
        assert left[0] < right[0] - 60.0, name
        assert spleen[0] < liver[0], name
        assert liver[0] > right[0] - 60.0 and spleen[0] < left[0] + 60.0, name


def test_tissue_hu(cases):
    for name, (hu, label, _) in cases.items():
        means = {v: hu[ndimage.binary_erosion(label == v, iterations=1)].mean() for v in (1, 2, 3, 4)}
        assert 80 < means[1] < 130, (name, means)
        assert 85 < means[2] < 140, (name, means)
        assert 110 < means[3] < 185 and 110 < means[4] < 185, (name, means)
        core = ndimage.binary_erosion(label == 1, np.ones((5, 5, 1), bool))
        assert 5 < hu[core].std() < 25, name  # noise + parenchymal texture (+ a few vessels)
        counts, edges = np.histogram(hu, bins=np.arange(-250, 0, 5))
        fat_peak = edges[np.argmax(counts)] + 2.5
        assert -120 < fat_peak < -80, (name, fat_peak)
        assert hu.min() >= -1024 and (hu < -900).mean() > 0.05  # air around the body


def test_sampling_covers_the_required_ranges(cases):
    inplane = [abs(a[0, 0]) for _, _, a in cases.values()]
    thickness = [abs(a[2, 2]) for _, _, a in cases.values()]
    assert 0.6 <= min(inplane) <= 0.65 and 0.95 <= max(inplane) <= 1.0
    assert 1.5 <= min(thickness) <= 1.75 and 4.5 <= max(thickness) <= 5.0
    codes = {"".join(nib.aff2axcodes(a)) for _, _, a in cases.values()}
    assert {"RAS", "LPS"} <= codes
    assert any(code.endswith("I") for code in codes)  # a flipped slice direction


def test_regeneration_is_bit_exact(tmp_path):
    gen.write_case(DICOM_SPEC, tmp_path)
    for rel in (f"ct/{DICOM_SPEC.name}.nii.gz", f"ct/labels/final/{DICOM_SPEC.name}.nii.gz"):
        assert (tmp_path / rel).read_bytes() == (SAMPLE / rel).read_bytes(), rel
    fresh = sorted((tmp_path / "ct-dicom" / DICOM_SPEC.name).iterdir())
    committed = sorted((DICOM / DICOM_SPEC.name).iterdir())
    assert [p.name for p in fresh] == [p.name for p in committed]
    for a, b in zip(fresh, committed, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def _dicom_volume(folder: Path) -> tuple[np.ndarray, np.ndarray, list[pydicom.Dataset]]:
    """HU volume (column, row, slice) and RAS affine rebuilt from the DICOM tags alone."""
    series = sorted((pydicom.dcmread(p) for p in folder.glob("*.dcm")), key=lambda d: int(d.InstanceNumber))
    iop = np.array(series[0].ImageOrientationPatient, dtype=float)
    row_dir, col_dir = iop[:3], iop[3:]
    d_row, d_col = (float(v) for v in series[0].PixelSpacing)
    ipp = np.array([d.ImagePositionPatient for d in series], dtype=float)
    step = (ipp[-1] - ipp[0]) / (len(series) - 1)
    np.testing.assert_allclose(ipp, ipp[0] + np.outer(np.arange(len(series)), step), atol=1e-4)
    assert np.linalg.norm(step) == pytest.approx(float(series[0].SpacingBetweenSlices), abs=1e-4)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row_dir * d_col, col_dir * d_row, step, ipp[0]
    volume = np.stack(
        [d.pixel_array.astype(np.int32) * int(d.RescaleSlope) + int(d.RescaleIntercept) for d in series],
        axis=-1,
    ).transpose(1, 0, 2)
    return volume, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps, series


def test_dicom_series_matches_nifti():
    volume, affine, series = _dicom_volume(DICOM / DICOM_SPEC.name)
    img = nib.load(CT / f"{DICOM_SPEC.name}.nii.gz")
    np.testing.assert_allclose(affine, img.affine, atol=1e-3)
    np.testing.assert_array_equal(volume, np.asarray(img.dataobj))
    first = series[0]
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert first.Modality == "CT" and first.SOPClassUID == pydicom.uid.CTImageStorage
    assert (first.BitsAllocated, first.BitsStored, first.HighBit, first.PixelRepresentation) == (
        16,
        12,
        11,
        0,
    )
    assert float(first.SliceThickness) == pytest.approx(DICOM_SPEC.thickness)
    assert len({d.SOPInstanceUID for d in series}) == len(series)
    for tag in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID", "StudyDate"):
        assert len({str(d.get(tag)) for d in series}) == 1 and str(first.get(tag)), tag
    assert [int(d.InstanceNumber) for d in series] == list(range(1, len(series) + 1))


def test_dicom_series_reads_like_nifti_in_itk():
    itk = pytest.importorskip("itk")
    dcm = itk.imread(str(DICOM / DICOM_SPEC.name))
    nii = itk.imread(str(CT / f"{DICOM_SPEC.name}.nii.gz"))

    def index_to_lps(image) -> np.ndarray:  # acts on (i, j, k, 1); ITK arrays are indexed [k, j, i]
        m = np.eye(4)
        m[:3, :3] = itk.array_from_matrix(image.GetDirection()) @ np.diag(image.GetSpacing())
        m[:3, 3] = image.GetOrigin()
        return m

    # Map DICOM voxel indices onto NIfTI ones: must be an axis permutation with flips and integer shifts.
    to_nii = np.linalg.inv(index_to_lps(nii)) @ index_to_lps(dcm)
    np.testing.assert_allclose(to_nii, np.round(to_nii), atol=1e-3)
    a, b = itk.array_from_image(dcm), itk.array_from_image(nii)
    assert a.shape == b.shape
    for axis in range(3):
        if round(to_nii[axis, axis]) < 0:
            a = np.flip(a, axis=2 - axis)
    np.testing.assert_array_equal(a, b)


def test_generate_ct_case_with_explicit_fov():
    hu, label, affine = gen.generate_ct_case(
        5, spacing=(4.0, 4.0, 8.0), shape=(96, 80, 24), orientation="LPS"
    )
    assert hu.shape == label.shape == (96, 80, 24) and hu.dtype == np.int16 and label.dtype == np.uint8
    assert nib.aff2axcodes(affine) == ("L", "P", "S")
    assert set(np.unique(label)) <= {0, 1, 2, 3, 4}


def test_ct_sample_size_within_budget():
    ct = [d for d in (SAMPLE / "ct", SAMPLE / "ct-dicom")]
    files = [p for d in ct for p in d.rglob("*") if p.is_file() and not p.name.endswith(IGNORED)]
    files = [p for p in files if "__pycache__" not in p.parts and "original" not in p.parent.parts]
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES


def test_contrast_phases_change_the_enhancement():
    def organ_means(phase: str) -> tuple[dict[int, float], np.ndarray, np.ndarray]:
        hu, label, _ = gen.generate_ct_case(5, spacing=(3.0, 3.0, 6.0), shape=(128, 96, 40), phase=phase)
        return {v: float(hu[ndimage.binary_erosion(label == v)].mean()) for v in (1, 2, 3)}, hu, label

    plain, _, label = organ_means("non_contrast")
    portal, portal_hu, _ = organ_means("portal_venous")
    _, delayed_hu, _ = organ_means("delayed")
    assert plain[3] < 60 < portal[3] and plain[1] < portal[1] - 25  # kidney and liver enhance
    assert abs(plain[1] - plain[2]) < 25  # unenhanced liver and spleen look alike
    kidneys = ndimage.binary_dilation(label >= 3, iterations=3)
    excreted = delayed_hu.astype(np.int32) - portal_hu  # same patient and noise: only the phase differs
    assert excreted[kidneys].max() > 300  # excreted contrast in the collecting system
