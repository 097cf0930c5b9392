"""OHIF v3 in a real browser, shared by the browser tests: Debian's chromium driven by Playwright, the
app's server on a real Orthanc holding the sample CT series, and the steps every test takes (open the
MONAI Label mode, connect the panel) plus JavaScript that reads OHIF's state."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nrrd
import numpy as np
import pydicom
import pytest

from tests.orthanc import Orthanc
from tests.server import REPO_ROOT, Server

CHROMIUM = "/usr/bin/chromium"  # Debian's package (Playwright's own browser download is not used)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERIES_DIR = REPO_ROOT / "sample-data" / "ct-dicom" / "case_011"
STEP_MS = 60_000  # any one step in the browser (page loads, connecting, storing)
INFER_MS = 180_000  # an inference request on a shared CPU

# JavaScript run in the page: OHIF publishes its services as window.services, cornerstone as
# window.cornerstone; the MONAI Label panel draws into segmentation "1".
VOLUME_LOADED = """() => {
  const volumes = window.cornerstone && window.cornerstone.cache.getVolumes();
  return !!volumes && volumes.length > 0 && volumes.every(v => v.loadStatus && v.loadStatus.loaded);
}"""
SEGMENTATION_READY = """() => {
  try { return !!window.services.segmentationService.getLabelmapVolume('1'); } catch (e) { return false; }
}"""
# Per segment name: [number of its voxels, sum of their flat indices] (i fastest, OHIF's order).
OVERLAY_VOXELS = """() => {
  const service = window.services.segmentationService;
  const voxels = service.getLabelmapVolume('1').voxelManager.getCompleteScalarDataArray();
  const perIndex = {};
  for (let n = 0; n < voxels.length; n++) {
    const found = perIndex[voxels[n]] || (perIndex[voxels[n]] = [0, 0]);
    found[0]++;
    found[1] += n;
  }
  const out = {};
  for (const [index, segment] of Object.entries(service.getSegmentation('1').segments)) {
    if (segment) out[segment.label] = perIndex[index] || [0, 0];
  }
  return out;
}"""


@contextmanager
def dicomweb_server(root: Path, conf: dict[str, str] | None = None) -> Iterator[Server]:
    """The app serving a real Orthanc that holds the sample CT series (``server.orthanc``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MONAI_LABEL_DICOMWEB_CACHE_PATH", str(root / "cache"))
        orthanc = Orthanc(root / "orthanc")
        orthanc.upload(sorted(SERIES_DIR.iterdir()))
        try:
            server = Server(orthanc.dicomweb_url, root / "model", root / "server.log", conf=conf)
        except BaseException:
            orthanc.stop()
            raise
        server.orthanc = orthanc
        try:
            yield server
        finally:
            server.stop()
            orthanc.stop()


@contextmanager
def browser_page(url: str) -> Iterator:
    """A fresh chromium page that may reach only ``url``; ``page.errors`` collects page errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(STEP_MS)
            # OHIF asks for web fonts on the internet; only the app's own origin is served
            page.route(lambda u: not u.startswith(url), lambda route: route.abort())
            page.errors = []
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            yield page
        finally:
            browser.close()


@contextmanager
def screenshot_on_failure(page) -> Iterator[None]:
    """Re-raise any failure with the path of a full-page screenshot taken at that moment."""
    try:
        yield
    except BaseException as error:
        shot = Path(tempfile.mkdtemp(prefix="ohif-browser-")) / "failure.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            where = f"screenshot: {shot}"
        except Exception as e:  # the browser itself may be gone
            where = f"no screenshot ({e})"
        print(f"\nOHIF browser test failed; {where}; page errors: {page.errors}")
        raise AssertionError(f"{error}\n{where}\npage errors: {page.errors}") from error


def overlay_counts(page) -> dict[str, int]:
    """Voxels per segment name in OHIF's MONAI Label segmentation."""
    return {name: count for name, (count, _) in page.evaluate(OVERLAY_VOXELS).items()}


def label_from_nrrd(raw: bytes) -> np.ndarray:
    """A label NRRD's voxels as (i, j, k), the order OHIF copies them into its volume."""
    with io.BytesIO(raw) as fh:
        return nrrd.read_data(nrrd.read_header(fh), fh)


def series_uid(folder: Path = SERIES_DIR) -> str:
    return str(pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).SeriesInstanceUID)


def open_monai_label_mode(page, url: str) -> None:
    """Study list -> the study's row -> the mode button; returns once the series is loaded."""
    page.goto(f"{url}/ohif/")
    page.locator("tr", has_text=SERIES_DIR.name).first.click()
    page.get_by_role("button", name="MONAI Label").click()
    page.wait_for_selector("#monailabelServerURL")
    page.wait_for_function(VOLUME_LOADED)  # the panel can only draw on a loaded series


def connect(page) -> None:
    """Connect the MONAI Label panel to its default server (the address OHIF was loaded from)."""
    page.locator(".settingsTable button.actionButton").click()
