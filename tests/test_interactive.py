"""Clicks for the interactive models: request parsing and its refusals, input-grid -> working-grid mapping
(known answers and the real preprocessing chain), Gaussian guidance (known values), the simulated
annotator's next click (largest error, deepest voxel, right kind) and initial clicks, and the training
transform (shape, reproducibility, share of patches without clicks)."""

import doctest
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

import lib.interactive.guidance as guidance_module
import lib.interactive.simulation as simulation_module
from lib.interactive.guidance import (
    Clicks,
    draw_blob,
    guidance_channels,
    parse_clicks,
    to_working_grid,
)
from lib.interactive.simulation import (
    Click,
    RandClickGuidanced,
    add_click,
    initial_clicks,
    next_click,
)
from lib.planning.presets import CT_ORGANS, XRAY_LUNGS
from lib.preprocessing.chain import preprocessing

LABELS = {"liver": 1, "spleen": 2}


@pytest.mark.parametrize("module", [guidance_module, simulation_module], ids=lambda m: m.__name__)
def test_the_module_examples_hold(module):
    result = doctest.testmod(module)
    assert result.attempted >= 4 and result.failed == 0


# --- parsing -------------------------------------------------------------------------------------------


def test_slicer_deepedit_form_one_key_per_label():
    params = {
        "liver": [[1, 2, 3], [1, 2, 3], [4.0, 5, 6]],
        "spleen": [],
        "background": [[0, 0, 0]],
        "label": "liver",
        "device": "cpu",  # request options pass untouched
        "result_extension": ".nrrd",
    }
    clicks = parse_clicks(params, LABELS)
    assert clicks.foreground == {"liver": [(1, 2, 3), (4, 5, 6)], "spleen": []}
    assert clicks.background == [(0, 0, 0)] and clicks.label == "liver"


def test_deepgrow_form_foreground_and_background_for_label():
    clicks = parse_clicks({"label": "spleen", "foreground": [[1, 2, 3]], "background": [[7, 8, 9]]}, LABELS)
    assert clicks == Clicks({"liver": [], "spleen": [(1, 2, 3)]}, [(7, 8, 9)], "spleen")


def test_foreground_clicks_of_the_background_segment_are_background_clicks():
    clicks = parse_clicks({"label": "background", "foreground": [[1, 2, 3]]}, LABELS)
    assert clicks.background == [(1, 2, 3)] and clicks.foreground == {"liver": [], "spleen": []}
    assert clicks.label is None


def test_2d_points_and_no_clicks():
    assert parse_clicks({"liver": [[3, 4]]}, LABELS, spatial_dims=2).foreground["liver"] == [(3, 4)]
    assert parse_clicks({"label": "liver"}, LABELS) == Clicks({"liver": [], "spleen": []}, [], "liver")


@pytest.mark.parametrize(
    "params, reason",
    [
        ({"kidney": [[1, 2, 3]]}, "clicks for unknown label 'kidney'"),
        ({"label": "kidney"}, "unknown label 'kidney'"),
        ({"foreground": [[1, 2, 3]]}, "need 'label'"),
        ({"liver": [[1.5, 2, 3]]}, "integers >= 0"),
        ({"liver": [[-1, 2, 3]]}, "integers >= 0"),
        ({"liver": [[True, 2, 3]]}, "integers >= 0"),
        ({"liver": [["1", 2, 3]]}, "integers >= 0"),
        ({"liver": [[1, 2, 3, 4]]}, "2 or 3 voxel indices"),
        ({"liver": [1, 2, 3]}, "a point is"),
        ({"liver": "1,2,3"}, "expected a list of points"),
        ({"liver": [[1, 2]], "spleen": [[1, 2, 3]]}, "one number of voxel indices"),
        ({"liver": [[1, 2, 3]], "background": [[1, 2, 3]]}, "clicked both as 'liver' and as 'background'"),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(params, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_clicks(params, LABELS)


def test_points_of_the_wrong_dimensionality_are_refused():
    with pytest.raises(ValueError, match="needs 3 voxel indices"):
        parse_clicks({"liver": [[1, 2]]}, LABELS, spatial_dims=3)


# --- input grid -> working grid ------------------------------------------------------------------------

# i along -x (2 mm), j along +z (3 mm), k along +y (1 mm): world = (10 - 2i, -5 + k, 7 + 3j)
INPUT = np.array([[-2.0, 0, 0, 10], [0, 0, 1.0, -5], [0, 3.0, 0, 7], [0, 0, 0, 1]])
# RAS at (1, 1, 1.5) mm from (-10, -5, 7): index = (world_x + 10, world_y + 5, (world_z - 7) / 1.5)
WORKING = np.array([[1.0, 0, 0, -10], [0, 1.0, 0, -5], [0, 0, 1.5, 7], [0, 0, 0, 1]])


def test_flipped_permuted_anisotropic_input_maps_to_the_known_working_voxel():
    assert to_working_grid([(3, 2, 4), (0, 0, 0)], INPUT, WORKING, (21, 10, 10)) == [(14, 4, 4), (20, 0, 0)]
    clicks = Clicks({"liver": [(3, 2, 4)], "spleen": []}, [(0, 0, 0)], "liver")
    on_working = clicks.mapped(lambda points: to_working_grid(points, INPUT, WORKING, (21, 10, 10)))
    assert on_working == Clicks({"liver": [(14, 4, 4)], "spleen": []}, [(20, 0, 0)], "liver")


def test_2d_points_map_through_3x3_and_4x4_affines():
    scale = np.diag([0.5, 0.5, 1.0])
    assert to_working_grid([(8, 5)], scale, np.diag([2.0, 2.0, 1.0]), (4, 4)) == [(2, 1)]  # 1.25 -> 1
    assert to_working_grid([(8, 4)], np.diag([0.5, 0.5, 1, 1]), np.diag([2.0, 2.0, 1, 1]), (4, 4)) == [(2, 1)]


def test_points_outside_the_working_grid_are_refused_by_name():
    with pytest.raises(ValueError, match=r"point \[11, 0, 0\] falls outside the working grid"):
        to_working_grid([(3, 2, 4), (11, 0, 0)], INPUT, WORKING, (21, 10, 10))  # world x = -12
    with pytest.raises(ValueError, match="has 2 indices"):
        to_working_grid([(3, 2)], INPUT, WORKING, (21, 10, 10))


# a radiograph's pixels (0.5 x 0.7 mm), resized 2x by the 2-D chain (no CLAHE on a blank toy image)
XRAY_PIXELS = np.array([[0.5, 0, 0, 3], [0, 0.7, 0, -2], [0, 0, 1, 0], [0, 0, 0, 1]])
XRAY_2X = replace(XRAY_LUNGS, working_size=(12, 10), patch_size=(12, 10), intensity={"scheme": "ct_window"})


@pytest.mark.parametrize(
    "preset, affine, shape",
    [(replace(CT_ORGANS, spacing=(1.0, 1.0, 1.5)), INPUT, (6, 5, 8)), (XRAY_2X, XRAY_PIXELS, (6, 5))],
    ids=["3d", "2d"],
)
def test_every_input_voxel_maps_to_where_the_preprocessing_chain_puts_it(preset, affine, shape):
    """The voxel ids of an image (3-D: flipped, permuted, anisotropic), resampled onto a finer working grid
    by the model's own chain (nearest for labels): each input voxel's mapped index holds that voxel's id."""
    ids = np.arange(np.prod(shape)).reshape(shape)  # < 256: survives the chain's uint8 labels
    meta = torch.as_tensor(affine)
    data = {
        "image": MetaTensor(torch.zeros((1, *shape)), affine=meta),
        "label": MetaTensor(torch.as_tensor(ids[None], dtype=torch.float32), affine=meta),
    }
    out = preprocessing(preset, label_key="label")(data)
    working = out["label"][0].numpy()
    points = [tuple(int(i) for i in p) for p in np.ndindex(shape)]
    mapped = to_working_grid(points, affine, out["label"].affine.numpy(), working.shape)
    assert [int(working[q]) for q in mapped] == [int(ids[p]) for p in points]


# --- guidance channels ---------------------------------------------------------------------------------


def test_blob_peak_is_one_and_exp_minus_half_at_sigma():
    g = guidance_channels(Clicks({"liver": [(10, 10, 10)]}), LABELS, (24, 24, 24), sigma=5.0)
    assert g.shape == (3, 24, 24, 24) and g.dtype == np.float32
    assert g[1, 10, 10, 10] == 1.0 and g[1].max() == 1.0
    for q in [(15, 10, 10), (10, 5, 10), (13, 14, 10), (10, 13, 6)]:  # |offset| = sigma = 5
        assert g[1][q] == pytest.approx(np.exp(-0.5), rel=1e-6)
    assert not g[0].any() and not g[2].any()


def test_channels_are_classes_and_overlapping_blobs_take_the_maximum():
    clicks = Clicks({"liver": [(4, 4), (5, 4)], "spleen": [(1, 1)]}, background=[(7, 7)])
    g = guidance_channels(clicks, LABELS, (9, 9), sigma=1.0)
    assert g[0, 7, 7] == g[1, 4, 4] == g[1, 5, 4] == g[2, 1, 1] == 1.0  # max, not a sum above 1
    assert g[1, 6, 4] == pytest.approx(np.exp(-0.5))


def test_anisotropic_sigma_is_per_axis():
    c = np.zeros((9, 9, 9), np.float32)
    draw_blob(c, (4, 4, 4), (1.0, 2.0, 3.0))
    assert [c[5, 4, 4], c[4, 6, 4], c[4, 4, 7]] == pytest.approx([np.exp(-0.5)] * 3, rel=1e-6)


def test_no_clicks_give_all_zero_guidance_and_outside_clicks_are_refused():
    assert not guidance_channels(Clicks(), LABELS, (5, 6, 7)).any()
    with pytest.raises(ValueError, match="outside the grid"):
        guidance_channels(Clicks({"liver": [(5, 0, 0)]}), LABELS, (5, 6, 7))


# --- the simulated annotator ---------------------------------------------------------------------------


def _two_organs(shape=(32, 32, 32)):
    truth = np.zeros(shape, np.uint8)
    truth[2:14, 2:14, 2:14] = 1
    truth[18:30, 18:30, 4:16] = 2
    return truth


def test_next_click_fixes_the_largest_miss_at_its_deepest_voxel():
    truth = _two_organs()
    pred = truth.copy()
    pred[3:8, 3:8, 3:8] = 0  # a 5^3 miss of the liver (125 voxels) ...
    pred[8:30, 5, 5] = 0  # ... and a thin tail (6 voxels inside the liver): deepest still the cube centre
    pred[20:23, 2:5, 22:25] = 2  # a 3^3 false positive of the spleen
    assert next_click(pred, truth, LABELS) == Click("liver", (5, 5, 5), "foreground")


def test_next_click_background_for_a_larger_false_positive():
    truth = _two_organs()
    pred = truth.copy()
    pred[3:8, 3:8, 3:8] = 0
    pred[20:27, 2:9, 20:27] = 2  # 7^3 spleen where there is only background
    assert next_click(pred, truth, LABELS) == Click("spleen", (23, 5, 23), "background")


def test_a_voxel_given_the_wrong_label_is_a_miss_of_the_true_one():
    truth = _two_organs()
    pred = truth.copy()
    pred[18:25, 18:25, 4:11] = 1  # liver predicted inside the spleen
    assert next_click(pred, truth, LABELS) == Click("spleen", (21, 21, 7), "foreground")


def test_next_click_in_2d_and_none_when_perfect():
    truth = np.zeros((20, 20), np.uint8)
    truth[2:18, 2:9] = 1
    pred = truth.copy()
    pred[2:5, 2:5] = 0  # 9-voxel miss in the corner of the liver
    pred[13:20, 13:20] = 1  # 49-voxel false positive at the image edge, which counts as its boundary
    assert next_click(pred, truth, LABELS) == Click("liver", (16, 16), "background")
    assert next_click(truth, truth, LABELS) is None


def test_add_click_folds_a_click_into_the_clicks():
    clicks = Clicks({"liver": [], "spleen": []}, [], "liver")
    clicks = add_click(clicks, Click("liver", (1, 2, 3), "foreground"))
    clicks = add_click(clicks, Click("spleen", (4, 5, 6), "background"))
    assert clicks == Clicks({"liver": [(1, 2, 3)], "spleen": []}, [(4, 5, 6)], "liver")
    assert add_click(clicks, Click("liver", (1, 2, 3), "foreground")) == clicks


def test_initial_clicks_lie_inside_their_labels_and_favour_the_interior():
    truth = _two_organs()
    counts = {"liver": 200, "background": 5}
    clicks = initial_clicks(truth, {**LABELS, "kidney": 3}, np.random.default_rng(1), counts)
    assert len(clicks.foreground["liver"]) == 200 and len(set(clicks.foreground["liver"])) == 200
    assert clicks.foreground["spleen"] == [] and clicks.foreground["kidney"] == []
    assert all(truth[p] == 1 for p in clicks.foreground["liver"])
    assert len(clicks.background) == 5 and all(truth[p] == 0 for p in clicks.background)
    depth = ndimage.distance_transform_edt(np.pad(truth == 1, 1))[1:-1, 1:-1, 1:-1]
    assert np.mean([depth[p] for p in clicks.foreground["liver"]]) > depth[truth == 1].mean() + 0.3
    every = initial_clicks(truth, LABELS, np.random.default_rng(2), 3)
    assert [len(every.foreground[n]) for n in LABELS] == [3, 3] and every.background == []
    with pytest.raises(ValueError, match="unknown labels"):
        initial_clicks(truth, LABELS, np.random.default_rng(0), {"kidney": 1})


# --- the training transform ----------------------------------------------------------------------------


def _patch(tensor=True):
    label = np.zeros((1, 16, 16, 16), np.uint8)
    label[0, 2:8, 2:8, 2:8] = 1
    label[0, 9:15, 9:15, 9:15] = 2
    image = np.random.default_rng(0).standard_normal((1, 16, 16, 16)).astype(np.float32)
    if not tensor:
        return {"image": image, "label": label}
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0]))
    return {"image": MetaTensor(torch.tensor(image), affine=affine), "label": MetaTensor(torch.tensor(label))}


def test_guidance_is_appended_to_the_image_on_torch_and_numpy():
    t = RandClickGuidanced(LABELS, max_clicks=3, no_clicks_prob=0.0).set_random_state(seed=3)
    data = _patch()
    out = t(data)
    assert out["image"].shape == (4, 16, 16, 16) and isinstance(out["image"], MetaTensor)
    assert torch.equal(out["image"][:1], data["image"]) and torch.equal(out["label"], data["label"])
    assert torch.equal(out["image"].affine, data["image"].affine)
    peaks = out["image"][1:].numpy() == 1.0  # every click's voxel, in its class's channel
    assert peaks.any()
    for c in range(3):
        assert (data["label"][0].numpy()[peaks[c]] == c).all()
    out_np = t(_patch(tensor=False))
    assert isinstance(out_np["image"], np.ndarray) and out_np["image"].shape == (4, 16, 16, 16)


def test_same_seed_same_guidance():
    a = RandClickGuidanced(LABELS, no_clicks_prob=0.0).set_random_state(seed=7)
    b = RandClickGuidanced(LABELS, no_clicks_prob=0.0).set_random_state(seed=7)
    runs = [[t(_patch(tensor=False))["image"] for _ in range(5)] for t in (a, b)]
    assert all(np.array_equal(x, y) for x, y in zip(*runs, strict=True))
    assert not all(np.array_equal(runs[0][0], x) for x in runs[0][1:])


@pytest.mark.parametrize("no_clicks_prob", [0.0, 0.3, 1.0])
def test_share_of_patches_without_clicks(no_clicks_prob):
    t = RandClickGuidanced(LABELS, max_clicks=3, no_clicks_prob=no_clicks_prob).set_random_state(seed=0)
    data = _patch(tensor=False)
    n = 400
    empty = sum(not t(data)["image"][1:].any() for _ in range(n)) / n
    # also empty when the counts drawn for all three classes present (0..3 each) are 0
    expected = no_clicks_prob + (1 - no_clicks_prob) / 4**3
    assert abs(empty - expected) < 0.06
