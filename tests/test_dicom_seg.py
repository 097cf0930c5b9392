"""DICOM SEG writer/reader: geometry, references and segments checked with highdicom and pydicom-seg,
and the (X, Y, Z) array convention checked against MONAI's ITK reader."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pydicom_seg
import pytest
from monai.transforms import LoadImage

from lib.io import read_dicom_seg, write_dicom_seg
from tests.orthanc import write_ct_series

X, Y, Z = 32, 24, 6
SPACING = (0.7, 0.8, 2.5)
LABELS = {"background": 0, "liver": 1, "spleen": 2}
AXIAL = (1, 0, 0, 0, 1, 0)
CORONAL = (1, 0, 0, 0, 0, -1)


@pytest.fixture(params=[AXIAL, CORONAL], ids=["axial", "coronal"])
def ct(request, tmp_path: Path) -> list[Path]:
    """A CT series whose pixel value encodes its voxel index: x + X * y + X * Y * z."""
    pixels = np.arange(Z * Y * X, dtype=np.int16).reshape(Z, Y, X)
    return write_ct_series(tmp_path / "ct", pixels, SPACING, orientation=request.param)


def random_label(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice([0, 0, 1, 2], size=(X, Y, Z)).astype(np.uint8)


def test_segments_and_references_with_highdicom(ct, tmp_path):
    label = random_label()
    colors = {"liver": (221, 130, 101)}
    path = write_dicom_seg(label, ct[0].parent, LABELS, tmp_path / "seg.dcm", colors=colors)
    sources = [pydicom.dcmread(p) for p in ct]
    seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(path))

    assert seg.segmentation_type == hd.seg.SegmentationTypeValues.BINARY
    assert [(d.SegmentNumber, d.SegmentLabel) for d in seg.SegmentSequence] == [(1, "liver"), (2, "spleen")]
    liver = seg.get_segment_description(1)
    assert liver.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    assert liver.algorithm_identification[0].AlgorithmName == "lib U-Net"
    assert liver.segmented_property_type.value == "10200004"
    assert seg.get_segment_description(2).segmented_property_type.value == "78961009"
    assert len(liver.RecommendedDisplayCIELabValue) == 3
    assert "RecommendedDisplayCIELabValue" not in seg.get_segment_description(2)

    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {uids[2] for uids in seg.get_source_image_uids()} == {ds.SOPInstanceUID for ds in sources}
    frames = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], combine_segments=True)
    np.testing.assert_array_equal(frames, label.transpose(2, 1, 0))
    for item in seg.PerFrameFunctionalGroupsSequence:
        uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        source = next(ds for ds in sources if ds.SOPInstanceUID == uid)
        assert item.PlanePositionSequence[0].ImagePositionPatient == source.ImagePositionPatient


def test_segments_and_geometry_with_pydicom_seg(ct, tmp_path):
    label = random_label(1)
    path = write_dicom_seg(label, ct[0].parent, LABELS, tmp_path / "seg.dcm")
    first = pydicom.dcmread(ct[0])
    result = pydicom_seg.SegmentReader().read(pydicom.dcmread(path))

    assert result.available_segments == {1, 2}
    assert {n: info.SegmentLabel for n, info in result.segment_infos.items()} == {1: "liver", 2: "spleen"}
    assert result.referenced_series_uid == first.SeriesInstanceUID
    assert set(result.referenced_instance_uids) == {pydicom.dcmread(p).SOPInstanceUID for p in ct}
    orientation = np.asarray(first.ImageOrientationPatient, float)
    direction = np.stack([orientation[:3], orientation[3:], np.cross(orientation[:3], orientation[3:])], 1)
    np.testing.assert_allclose(result.direction, direction)
    np.testing.assert_allclose(result.spacing, SPACING)
    np.testing.assert_allclose(result.origin, first.ImagePositionPatient)
    assert result.size == (X, Y, Z)
    for value in (1, 2):
        np.testing.assert_array_equal(result.segment_data(value), (label == value).transpose(2, 1, 0))


def test_read_dicom_seg_round_trips_exactly(ct, tmp_path):
    label = random_label(2)
    path = write_dicom_seg(label, ct[0].parent, LABELS, tmp_path / "seg.dcm")
    read, labels = read_dicom_seg(path, ct[0].parent)
    assert labels == {"liver": 1, "spleen": 2}
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, label)


def test_sparse_values_and_empty_declared_labels_round_trip_by_name(ct, tmp_path):
    declared = {"background": 0, "kidney_left": 3, "liver": 7, "lung": 5}
    label = np.where(random_label(3) == 1, 7, np.where(random_label(3) == 2, 3, 0)).astype(np.uint8)
    path = write_dicom_seg(label, ct, declared, tmp_path / "seg.dcm")
    seg = hd.seg.segread(path)
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["kidney_left", "lung", "liver"]
    assert seg.get_segment_description(1).segmented_property_type.value == "18639004"

    read, labels = read_dicom_seg(path, ct[0].parent, labels=declared)
    assert labels == {"kidney_left": 3, "lung": 5, "liver": 7}
    np.testing.assert_array_equal(read, label)
    by_number, _ = read_dicom_seg(path, ct[0].parent)
    np.testing.assert_array_equal(by_number, np.select([label == 3, label == 7], [1, 3], 0))


def test_array_convention_matches_monai_itk_reader(ct, tmp_path):
    image, meta = LoadImage(image_only=False, reader="ITKReader")(str(ct[0].parent))
    index_code = np.arange(Z * Y * X).reshape(Z, Y, X).transpose(2, 1, 0)
    np.testing.assert_array_equal(np.asarray(image), index_code)

    x, y, z = 5, 17, 4
    label = np.zeros((X, Y, Z), np.uint8)
    label[x, y, z] = 2
    seg = pydicom.dcmread(write_dicom_seg(label, ct[0].parent, LABELS, tmp_path / "seg.dcm"))
    assert seg.NumberOfFrames == 1
    frame = seg.PerFrameFunctionalGroupsSequence[0]
    assert frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber == 2
    source = pydicom.dcmread(ct[z])
    derivation = frame.DerivationImageSequence[0]
    assert derivation.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert frame.PlanePositionSequence[0].ImagePositionPatient == source.ImagePositionPatient
    assert np.argwhere(seg.pixel_array).tolist() == [[y, x]]
    assert source.pixel_array[y, x] == image[x, y, z]

    row_dir, col_dir = np.reshape(np.asarray(source.ImageOrientationPatient, float), (2, 3))
    lps = np.asarray(source.ImagePositionPatient, float) + x * SPACING[0] * row_dir + y * SPACING[1] * col_dir
    ras = np.asarray(meta["affine"], float) @ [x, y, z, 1]
    np.testing.assert_allclose(ras[:3] * [-1, -1, 1], lps, atol=1e-4)


def test_rejects_label_off_the_series_grid_or_undeclared(ct, tmp_path):
    with pytest.raises(ValueError, match="does not match the series grid"):
        write_dicom_seg(np.zeros((Y, X, Z), np.uint8), ct[0].parent, LABELS, tmp_path / "seg.dcm")
    with pytest.raises(ValueError, match="not declared"):
        write_dicom_seg(np.full((X, Y, Z), 4, np.uint8), ct[0].parent, LABELS, tmp_path / "seg.dcm")
    assert not list(tmp_path.glob("*.dcm"))
