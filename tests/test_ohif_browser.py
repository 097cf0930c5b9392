"""OHIF v3 in a real browser: Debian's chromium, driven by Playwright, against the app on a real Orthanc.

A user opens the study list, enters the MONAI Label mode, connects the MONAI Label panel, runs the
auto-segmentation, sees it as an overlay, corrects it in OHIF's segmentation panel (deletes one
segment, paints another with the brush) and saves it with *Save Label*, then again with the panel's
*Export DICOM SEG* (which the app's viewer configuration sends the same way). Orthanc then holds the
SEGs, the app counts the series as labelled and hands the corrected label to training. On failure a
screenshot is saved (path in the assertion message).
"""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import requests

from lib.io import read_dicom_seg
from lib.planning.presets import get_preset
from tests.ohif import (
    INFER_MS,
    SEGMENTATION_READY,
    SERIES_DIR,
    browser_page,
    connect,
    dicomweb_server,
    label_from_nrrd,
    open_monai_label_mode,
    overlay_counts,
    screenshot_on_failure,
    series_uid,
)
from tests.orthanc import Orthanc

pytestmark = pytest.mark.server

ORGANS = dict(get_preset("ct_organs").labels)
SAVED = re.compile(r"^Label of series [0-9.]+ saved$")  # the viewer's notification
CORRECTED = "kidney_right"  # the segment the user deletes before saving
PAINTED = "kidney_left"  # the segment the user paints (the panel's first, active one)

SEGMENT_INDEX = """name => {
  const segments = window.services.segmentationService.getSegmentation('1').segments;
  return Number(Object.entries(segments).find(([, s]) => s && s.label === name)[0]);
}"""
SEGMENT_GONE = """index => {
  const service = window.services.segmentationService;
  const voxels = service.getLabelmapVolume('1').voxelManager.getCompleteScalarDataArray();
  return !service.getSegmentation('1').segments[index] && !voxels.includes(index);
}"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with dicomweb_server(tmp_path_factory.mktemp("ohif")) as server:
        yield server


@pytest.fixture
def page(env):
    with browser_page(env.url) as page:
        yield page


def orthanc_segs(orthanc: Orthanc) -> list[pydicom.Dataset]:
    """Every SEG instance Orthanc holds."""
    out = []
    for series in requests.get(f"{orthanc.url}/series", timeout=10).json():
        info = requests.get(f"{orthanc.url}/series/{series}", timeout=10).json()
        if info["MainDicomTags"].get("Modality") == "SEG":
            for instance in info["Instances"]:
                raw = requests.get(f"{orthanc.url}/instances/{instance}/file", timeout=10).content
                out.append(pydicom.dcmread(pydicom.filebase.DicomBytesIO(raw)))
    return out


def connect_and_run(page) -> np.ndarray:
    """Connect the MONAI Label panel to its default server, run ct_organs; the label it received."""
    connect(page)
    page.get_by_text("Auto-Segmentation").click()
    page.wait_for_function(SEGMENTATION_READY)
    with page.expect_response(lambda r: "/infer/ct_organs" in r.url, timeout=INFER_MS) as answer:
        page.get_by_title("Run Segmentation", exact=True).click()
    response = answer.value
    assert response.status == 200, response.text()
    page.get_by_text("Running Segmentation - Successful").wait_for()
    return label_from_nrrd(response.body())


def delete_segment(page, name: str) -> None:
    """In OHIF's segmentation panel: the segment's actions menu -> Delete."""
    index = page.evaluate(SEGMENT_INDEX, name)
    page.locator("[data-cy=panelSegmentationWithTools-btn]").click()
    row = page.locator("[data-cy=data-row]", has_text=name)
    row.hover()
    row.get_by_role("button", name="Actions").click()
    page.get_by_role("menuitem", name="Delete").click()
    page.wait_for_function(SEGMENT_GONE, arg=index)  # gone from the list and from the voxels


def brush_stroke(page) -> None:
    """Paint the active segment with the panel's Brush across the middle of the first viewport."""
    page.locator("[data-cy=Brush]").first.click()
    box = page.locator("[data-cy=viewport-pane]").first.bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y, steps=10)
    page.mouse.up()


def saved(page, click) -> None:
    """Run ``click`` and wait for the label upload it causes (PUT /datastore/label) to succeed."""
    with page.expect_response(lambda r: r.request.method == "PUT" and "/datastore/label" in r.url) as put:
        click()
    assert put.value.status == 200, put.value.text()
    page.get_by_text(SAVED).last.wait_for()


def save_label(page) -> None:
    """The toolbar's Save Label button (its label is its tooltip)."""
    saved(page, lambda: page.locator("[data-cy=SaveLabel]").click())


def export_dicom_seg(page) -> None:
    """The segmentation panel's menu -> Export & Download -> Export DICOM SEG."""

    def click() -> None:
        header = page.locator("div", has=page.get_by_role("combobox")).filter(has_text="Segmentations").last
        header.get_by_role("button").first.click()
        page.get_by_role("menuitem", name="Export & Download").click()
        page.get_by_role("menuitem", name="Export DICOM SEG").click()

    saved(page, click)


def test_run_correct_and_save_from_ohif(env, page, tmp_path):
    uid = series_uid(SERIES_DIR)
    with screenshot_on_failure(page):
        open_monai_label_mode(page, env.url)
        # the panel's server field starts at the address OHIF was loaded from
        assert page.input_value("#monailabelServerURL") == f"{env.url}/"

        label = connect_and_run(page)
        expected = {name: int(np.sum(label == value)) for name, value in ORGANS.items()}
        assert all(expected.values()), expected  # every organ found, so the correction below is real
        overlay = overlay_counts(page)
        assert overlay == expected  # the overlay holds exactly the voxels the server returned

        delete_segment(page, CORRECTED)
        brush_stroke(page)
        edited = overlay_counts(page)
        assert edited[PAINTED] > expected[PAINTED], edited
        save_label(page)
        assert (
            requests.get(f"{env.url}/datastore/", params={"output": "stats"}, timeout=30).json()["completed"]
            == 1
        )
        export_dicom_seg(page)
        assert not page.errors, page.errors

    corrected = np.where(label == ORGANS[CORRECTED], 0, label)
    segs = orthanc_segs(env.orthanc)
    assert len(segs) == 2  # one per save
    for i, seg in enumerate(segs):
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uid
        assert {s.SegmentLabel for s in seg.SegmentSequence} <= set(ORGANS)
        seg.save_as(tmp_path / f"seg{i}.dcm")
        numbers, names = read_dicom_seg(tmp_path / f"seg{i}.dcm", SERIES_DIR)
        lut = np.zeros(max(names.values()) + 1, np.uint8)
        for name, number in names.items():
            lut[number] = ORGANS[name]
        stored = lut[numbers]
        assert {n: int(np.sum(stored == ORGANS[n])) for n in edited} == edited  # what the user saw
        assert set(np.unique(stored[stored != corrected])) == {ORGANS[PAINTED]}  # only the brush changed

    stats = requests.get(f"{env.url}/datastore/", params={"output": "stats"}, timeout=30).json()
    assert (stats["total"], stats["completed"]) == (1, 1)
    (item,) = requests.get(f"{env.url}/datastore/", params={"output": "train"}, timeout=60).json()
    assert Path(item["image"]).name == f"{uid}.nii.gz"
    np.testing.assert_array_equal(np.asarray(nib.load(item["label"]).dataobj), stored)
