"""OHIF v3's point prompts in a real browser against the interactive twin (``--conf interactive true``).

The user opens the MONAI Label panel's *Point Prompts* tab (it lists models of type ``deepedit``),
selects an organ in its list, clicks inside that organ in the axial viewport with the panel's probe
and presses *Run*; then does the same for a second organ. OHIF sends every selected organ's points as
voxel indices of the volume it shows (``params[<label>] = [[i, j, k]]``, ``background`` empty); the
answer is drawn into OHIF's segmentation, and a click for the second organ leaves the first as it was.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import requests

from lib.interactive.simulation import deepest_voxel
from tests import ohif

pytestmark = pytest.mark.server

TWIN = "ct_organs_deepedit"
FIRST, SECOND = "liver", "spleen"

# The axial viewport shows the slice of voxel [i, j, k]; returns where that voxel is on the page.
SHOW_VOXEL = """([i, j, k]) => {
  const vp = window.services.cornerstoneViewportService.getCornerstoneViewport('mpr-axial');
  const world = vp.getImageData().imageData.indexToWorld([i, j, k]);
  vp.jumpToWorld(world);
  const [x, y] = vp.worldToCanvas(world);
  const box = vp.element.getBoundingClientRect();
  return [box.left + x, box.top + y];
}"""
# The points the panel's probe has placed (world coordinates), on every viewport.
PROBES = """() => window.cornerstoneTools.annotation.state.getAllAnnotations()
  .filter(a => a.metadata.toolName === 'ProbeMONAILabel').map(a => a.data.handles.points[0])"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with ohif.dicomweb_server(tmp_path_factory.mktemp("ohif-points"), {"interactive": "true"}) as server:
        yield server


@pytest.fixture
def page(env):
    with ohif.browser_page(env.url) as page:
        yield page


def near(index: list[int], voxel: tuple[int, ...]) -> bool:
    return max(abs(a - b) for a, b in zip(index, voxel, strict=True)) <= 1


def voxels(mask: np.ndarray) -> list[int]:
    """[count, sum of flat indices] of ``mask`` in OHIF's order (i fastest)."""
    flat = np.flatnonzero(mask.ravel(order="F"))
    return [int(flat.size), int(flat.sum())]


def sent_params(request) -> dict:
    """The ``params`` field of OHIF's multipart infer request."""
    body = request.post_data_buffer.decode()
    return json.loads(re.search(r'name="params"\r\n\r\n(.*?)\r\n--', body, re.S).group(1))


def click_organ(page, name: str, voxel: tuple[int, ...]) -> tuple[dict, np.ndarray]:
    """Select ``name`` in the tab's organ list, click ``voxel`` in the axial viewport, press Run;
    returns (the params OHIF sent, the label it received)."""
    tab = page.locator("div.tab").filter(has=page.locator("label.tab-label", has_text="Point Prompts"))
    tab.locator("tr.clickable-row").filter(has=page.get_by_text(name, exact=True)).click()
    x, y = page.evaluate(SHOW_VOXEL, voxel)
    placed = len(page.evaluate(PROBES))
    page.mouse.click(x, y)
    page.wait_for_function(f"() => ({PROBES})().length > {placed}")  # the click placed a point
    with page.expect_response(lambda r: f"/infer/{TWIN}" in r.url, timeout=ohif.INFER_MS) as answer:
        tab.get_by_title("Run PointPrompts", exact=True).click()
    response = answer.value
    assert response.status == 200, response.text()
    page.get_by_text("Running Inference for Point Prompts - Successful").last.wait_for()
    return sent_params(response.request), ohif.label_from_nrrd(response.body())


def test_point_prompts_from_ohif(env, page):
    uid = ohif.series_uid()
    # where the organs are, from the segmentation model on the same series (its grid is the twin's)
    r = requests.post(
        f"{env.url}/infer/ct_organs",
        params={"image": uid, "output": "image"},
        data={"params": json.dumps({"result_extension": ".nrrd"})},
        timeout=ohif.INFER_MS / 1000,
    )
    assert r.status_code == 200, r.text
    auto = ohif.label_from_nrrd(r.content)
    labels = requests.get(f"{env.url}/info/", timeout=30).json()["models"][TWIN]["labels"]
    first, second = deepest_voxel(auto == labels[FIRST]), deepest_voxel(auto == labels[SECOND])

    with ohif.screenshot_on_failure(page):
        ohif.open_monai_label_mode(page, env.url)
        ohif.connect(page)
        page.wait_for_function(ohif.SEGMENTATION_READY)
        page.get_by_text("Point Prompts", exact=True).click()  # the tab activates its probe

        params, label = click_organ(page, FIRST, first)
        (sent,) = params[FIRST]  # a mouse click lands within a voxel of the one aimed at ...
        assert near(sent, first) and params["background"] == []
        assert not any(params.get(n) for n in labels if n != FIRST)
        assert label[tuple(sent)] == labels[FIRST]  # ... and OHIF's indices are the server's
        page.wait_for_function(f"() => ({ohif.OVERLAY_VOXELS})()['{FIRST}'][0] > 0")
        shown = page.evaluate(ohif.OVERLAY_VOXELS)
        assert shown[FIRST] == voxels(label == labels[FIRST])  # drawn where the server put it
        assert all(shown[n][0] == 0 for n in shown if n != FIRST), shown  # only the clicked organ

        params, label = click_organ(page, SECOND, second)
        assert params[FIRST] == [sent] and len(params[SECOND]) == 1 and near(params[SECOND][0], second)
        assert label[tuple(params[SECOND][0])] == labels[SECOND]
        page.wait_for_function(f"() => ({ohif.OVERLAY_VOXELS})()['{SECOND}'][0] > 0")
        after = page.evaluate(ohif.OVERLAY_VOXELS)
        assert after[SECOND] == voxels(label == labels[SECOND])
        assert after[FIRST] == shown[FIRST]  # the click for the second organ left the first alone
        assert not page.errors, page.errors
