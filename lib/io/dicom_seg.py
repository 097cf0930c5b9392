"""Write and read DICOM SEG label maps on the voxel grid of a single-frame DICOM series.

Array convention: ``label[x, y, z]`` is the array ITK (and MONAI ``LoadImage`` with ``ITKReader``)
returns for the series folder: ``x`` is the column index (along the row direction of
ImageOrientationPatient), ``y`` the row index (along its column direction) and ``z`` the slice index
with the slices sorted by ascending position along the normal ``row x column``. The RAS affine MONAI
reports only negates world axes; it does not reorder the array. SEG frame data for slice ``z`` is
therefore ``label[:, :, z].T`` (rows, columns), referencing the source instance at position ``z``.

Each declared non-zero label becomes one BINARY segment, numbered 1..N in ascending label value, so
labels declared as 1..N keep their values as segment numbers. Declared labels absent from the array
are still described (with no frames); an all-zero label is written with every frame (empty) because
highdicom cannot omit all of them. Background (value 0) is implicit and never a segment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid
from pydicom_seg.template import rgb_to_cielab

from lib.io.atomic import atomic_path

SeriesSource = str | os.PathLike | Iterable[str | os.PathLike]
SERIES_NUMBER = 1000
# Property type by the words of a label name; longest match wins ("kidney_left" -> Left kidney).
_PROPERTY_TYPES: dict[tuple[str, ...], Code] = {
    ("liver",): codes.SCT.Liver,
    ("spleen",): codes.SCT.Spleen,
    ("kidney",): codes.SCT.Kidney,
    ("kidney", "left"): Code("18639004", "SCT", "Left kidney"),
    ("kidney", "right"): Code("9846003", "SCT", "Right kidney"),
    ("brain",): codes.SCT.Brain,
    ("lung",): codes.SCT.Lung,
}
_POSITION_TOLERANCE_MM = 0.01


def _property_codes(name: str) -> tuple[Code, Code]:
    """(category, type) codes for a label name: a known organ, else generic tissue."""
    words = set(re.findall(r"[a-z]+", name.lower()))
    matches = [key for key in _PROPERTY_TYPES if words.issuperset(key)]
    if not matches:
        return codes.cid7150.Tissue, codes.SCT.Tissue
    return codes.cid7150.AnatomicalStructure, _PROPERTY_TYPES[max(matches, key=len)]


def _normal(dataset: pydicom.Dataset) -> np.ndarray:
    orientation = np.asarray(dataset.ImageOrientationPatient, float)
    return np.cross(orientation[:3], orientation[3:])


def sorted_series(source_dir_or_files: SeriesSource) -> list[pydicom.Dataset]:
    """Headers (no pixel data) of one single-frame series, sorted by position along the slice normal.

    ``source_dir_or_files`` is a folder (its DICOM files, not recursive) or a list of files; non-DICOM
    files in a folder are ignored. Raises if it holds no images, several series or mixed orientations.
    """
    if isinstance(source_dir_or_files, str | os.PathLike):
        paths = sorted(p for p in Path(source_dir_or_files).iterdir() if p.is_file())
    else:
        paths = [Path(p) for p in source_dir_or_files]
    datasets = []
    for path in paths:
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            continue
        if "ImagePositionPatient" in dataset:
            datasets.append(dataset)
    if not datasets:
        raise ValueError(f"no DICOM images in {source_dir_or_files}")
    series = {ds.SeriesInstanceUID for ds in datasets}
    if len(series) > 1:
        raise ValueError(f"expected one series, found {len(series)}: {sorted(series)}")
    orientation = np.asarray(datasets[0].ImageOrientationPatient, float)
    if any(not np.allclose(ds.ImageOrientationPatient, orientation, atol=1e-4) for ds in datasets):
        raise ValueError("series has mixed ImageOrientationPatient")
    normal = _normal(datasets[0])
    return sorted(datasets, key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)))


def write_dicom_seg(
    label: np.ndarray,
    source_dir_or_files: SeriesSource,
    labels: dict[str, int],
    out_path: str | os.PathLike,
    colors: dict[str, tuple[int, int, int]] | None = None,
    algorithm_name: str = "lib U-Net",
    algorithm_version: str = "1.0",
    series_description: str = "Segmentation",
) -> str:
    """Write ``label`` (X, Y, Z on the source series' grid, see module doc) as a BINARY DICOM SEG.

    ``labels`` maps names to values (0 = background, skipped); ``colors`` maps names to sRGB 0-255
    triplets stored as RecommendedDisplayCIELabValue (dcmqi's conversion). The file is written beside
    ``out_path`` and renamed into place. Returns ``out_path``.
    """
    sources = sorted_series(source_dir_or_files)
    expected = (int(sources[0].Columns), int(sources[0].Rows), len(sources))
    if label.shape != expected:
        raise ValueError(f"label shape {label.shape} does not match the series grid (X, Y, Z) {expected}")
    segments = sorted((value, name) for name, value in labels.items() if value != 0)
    if not segments:
        raise ValueError("no foreground labels declared")
    values = [value for value, _ in segments]
    if len(set(values)) != len(values) or min(values) < 0:
        raise ValueError(f"label values must be distinct and positive: {labels}")
    undeclared = set(np.unique(label).tolist()) - set(values) - {0}
    if undeclared:
        raise ValueError(f"label values {sorted(undeclared)} are not declared in {labels}")

    lut = np.zeros(max(values) + 1, np.uint8 if len(segments) < 256 else np.uint16)
    lut[values] = np.arange(1, len(segments) + 1)
    frames = np.ascontiguousarray(lut[label.astype(np.int64)].transpose(2, 1, 0))

    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, family=codes.cid7162.ArtificialIntelligence, version=algorithm_version
    )
    descriptions = []
    for number, (_, name) in enumerate(segments, start=1):
        category, property_type = _property_codes(name)
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name,
            segmented_property_category=category,
            segmented_property_type=property_type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        if colors and name in colors:
            description.RecommendedDisplayCIELabValue = rgb_to_cielab(list(colors[name]))
        descriptions.append(description)

    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="MONAI Label app",
        manufacturer_model_name=algorithm_name,
        software_versions=algorithm_version,
        device_serial_number="1",
        series_description=series_description,
    )
    out_path = os.fspath(out_path)
    with atomic_path(out_path, suffix=".dcm") as tmp:
        seg.save_as(tmp)
    return out_path


def _functional_group(seg: pydicom.Dataset, frame: int, sequence: str) -> pydicom.Dataset:
    """Item of a functional group macro for ``frame``: per-frame if there, else shared."""
    per_frame = seg.PerFrameFunctionalGroupsSequence[frame]
    if sequence in per_frame:
        return per_frame[sequence][0]
    return seg.SharedFunctionalGroupsSequence[0][sequence][0]


def read_dicom_seg(
    path: str | os.PathLike,
    reference_dir: SeriesSource,
    labels: dict[str, int] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Read a BINARY SEG onto the grid of the ``reference_dir`` series: ``(label (X, Y, Z), labels)``.

    Frames are placed by their plane position and orientation (which must lie on the series' grid),
    not by source references, so SEGs from other tools work too. Voxel values are segment numbers,
    or ``labels[segment label]`` when ``labels`` is given; the returned dict maps each segment label
    to its value. Overlapping segments raise.
    """
    seg = hd.seg.segread(path)
    if seg.segmentation_type != hd.seg.SegmentationTypeValues.BINARY:
        raise ValueError(f"only BINARY SEGs are supported, got {seg.segmentation_type.value}")
    sources = sorted_series(reference_dir)
    first = sources[0]
    if (seg.Rows, seg.Columns) != (first.Rows, first.Columns):
        raise ValueError(f"SEG frames are {seg.Rows}x{seg.Columns}, series is {first.Rows}x{first.Columns}")
    names = {number: seg.get_segment_description(number).SegmentLabel for number in seg.segment_numbers}
    if labels is None:
        values = {number: number for number in names}
    else:
        unknown = set(names.values()) - set(labels)
        if unknown:
            raise ValueError(f"SEG segments {sorted(unknown)} are not in {labels}")
        values = {number: labels[name] for number, name in names.items()}

    origins = np.array([np.asarray(ds.ImagePositionPatient, float) for ds in sources])
    pixels = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    dtype = np.uint8 if max(values.values(), default=0) < 256 else np.uint16
    out = np.zeros((len(sources), seg.Rows, seg.Columns), dtype)
    for frame in range(pixels.shape[0]):
        orientation = _functional_group(seg, frame, "PlaneOrientationSequence").ImageOrientationPatient
        spacing = _functional_group(seg, frame, "PixelMeasuresSequence").PixelSpacing
        if not (
            np.allclose(orientation, first.ImageOrientationPatient, atol=1e-4)
            and np.allclose(spacing, first.PixelSpacing, rtol=1e-4)
        ):
            raise ValueError(f"SEG frame {frame + 1} is not on the series' grid (orientation/spacing)")
        position = _functional_group(seg, frame, "PlanePositionSequence").ImagePositionPatient
        distances = np.linalg.norm(origins - np.asarray(position, float), axis=1)
        z = int(np.argmin(distances))
        if distances[z] > _POSITION_TOLERANCE_MM:
            raise ValueError(f"SEG frame {frame + 1} at {list(position)} matches no slice of the series")
        number = int(_functional_group(seg, frame, "SegmentIdentificationSequence").ReferencedSegmentNumber)
        mask = pixels[frame] > 0
        if np.any(out[z][mask]):
            raise ValueError(f"SEG segment {number} overlaps another segment on slice {z}")
        out[z][mask] = values[number]
    return np.ascontiguousarray(out.transpose(2, 1, 0)), {names[n]: values[n] for n in sorted(names)}
