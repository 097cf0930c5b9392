"""Known-answer tests for lib.metrics: overlap, confusion, surface distances, edge cases, aggregation."""

import math

import numpy as np
import pytest

from lib.metrics import (
    METRICS,
    ConfusionCounts,
    SegmentationMetrics,
    assd,
    confusion_metrics,
    dice,
    hausdorff_distance,
    iou,
    label_metrics,
    surface,
    surface_distance_metrics,
    surface_distances,
)

SPACING = (0.5, 0.5, 1.5)
SHAPE = (56, 56, 20)  # 28 x 28 x 30 mm


def ball(radius: float, centre_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Voxels of SHAPE/SPACING whose centre lies within ``radius`` mm of the (shifted) grid centre."""
    axes = [
        (np.arange(n) - (n - 1) / 2) * s - d for n, s, d in zip(SHAPE, SPACING, centre_shift, strict=True)
    ]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    return x**2 + y**2 + z**2 <= radius**2


# --- overlap and confusion -------------------------------------------------------------------------

PRED = np.array([[1, 1, 1], [0, 1, 0]])
TRUTH = np.array([[1, 0, 0], [0, 1, 1]])  # TP 2, FP 2, FN 1, TN 1


def test_counts_dice_iou_known_answer():
    assert ConfusionCounts.from_masks(PRED, TRUTH) == ConfusionCounts(tp=2, fp=2, fn=1, tn=1)
    assert dice(PRED, TRUTH) == pytest.approx(4 / 7)
    assert iou(PRED, TRUTH) == pytest.approx(2 / 5)
    assert dice(PRED.astype(bool), TRUTH.astype(bool)) == pytest.approx(4 / 7)  # binary masks


def test_confusion_metrics_known_answer():
    assert confusion_metrics(PRED, TRUTH) == pytest.approx(
        {"precision": 1 / 2, "recall": 2 / 3, "f1": 4 / 7, "accuracy": 1 / 2, "specificity": 1 / 3}
    )


def test_label_map_is_scored_per_label():
    pred = np.array([[1, 1, 2], [0, 2, 2]])
    truth = np.array([[1, 0, 2], [1, 2, 2]])
    result = label_metrics(pred, truth, {"a": 1, "b": 2, "absent": 3})
    assert result["a"]["dice"] == pytest.approx(0.5)
    assert result["a"]["iou"] == pytest.approx(1 / 3)
    assert result["a"]["hd"] == pytest.approx(1.0)  # (0,1) <-> (0,0) and (1,0) <-> (0,0)
    assert result["b"] == pytest.approx(dict.fromkeys(METRICS, 1.0) | {"assd": 0, "hd": 0, "hd95": 0})
    assert result["absent"]["dice"] == 1.0 and result["absent"]["hd"] == 0.0


def test_shape_mismatch_raises_instead_of_broadcasting():
    with pytest.raises(ValueError, match="shapes differ"):
        dice(np.ones((3, 1)), np.ones(3))
    with pytest.raises(ValueError, match="shapes differ"):
        label_metrics(np.ones((3, 1)), np.ones(3), {"x": 1})


# --- surface distances -----------------------------------------------------------------------------


def test_surface_is_boundary_with_face_connectivity():
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    expected = mask.copy()
    expected[2, 2] = False
    np.testing.assert_array_equal(surface(mask), expected)
    np.testing.assert_array_equal(surface(np.ones((2, 2))), np.ones((2, 2), bool))  # image border is outside


def test_distances_use_spacing_2d():
    pred, truth = np.zeros((4, 5), bool), np.zeros((4, 5), bool)
    pred[0, 0], truth[0, 3] = True, True
    forward, backward = surface_distances(pred, truth, spacing=(2.0, 0.5))
    np.testing.assert_allclose(forward, [1.5])
    np.testing.assert_allclose(backward, [1.5])
    assert surface_distance_metrics(pred, truth, (2.0, 0.5)) == pytest.approx(
        {"assd": 1.5, "hd": 1.5, "hd95": 1.5}
    )
    with pytest.raises(ValueError, match="spacing"):
        surface_distances(pred, truth, spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match="spacing"):
        surface_distances(pred, truth, spacing=(1.0, 1.0, 1.0))


def test_concentric_spheres_distance_is_radius_difference():
    r1, r2 = 6.0, 10.0
    result = surface_distance_metrics(ball(r1), ball(r2), SPACING)
    tolerance = max(SPACING) / 2  # surfaces are voxel centres: each is off by at most half a voxel
    for name in ("assd", "hd", "hd95"):
        assert result[name] == pytest.approx(r2 - r1, abs=tolerance), name
    assert result["hd95"] <= result["hd"]


def test_shift_along_anisotropic_axis():
    d = 3.0  # two voxels along the 1.5 mm axis
    assert hausdorff_distance(ball(8.0), ball(8.0, (0.0, 0.0, d)), SPACING) == pytest.approx(d)
    assert 0 < assd(ball(8.0), ball(8.0, (0.0, 0.0, d)), SPACING) < d


def test_hole_in_prediction_changes_distances():
    truth = ball(10.0)
    pred = truth & ~ball(3.0)
    assert surface_distance_metrics(truth, truth, SPACING) == {"assd": 0.0, "hd": 0.0, "hd95": 0.0}
    pred_to_truth, truth_to_pred = surface_distances(pred, truth, SPACING)
    # the hole's wall is a pred surface about 10 - 3 mm from the truth surface; the outer surfaces coincide
    assert pred_to_truth.max() == pytest.approx(7.0, abs=max(SPACING))
    assert truth_to_pred.max() == 0.0
    assert hausdorff_distance(pred, truth, SPACING) == pred_to_truth.max()


@pytest.mark.parametrize(
    "pred_truth",
    [
        (ball(6.0), ball(10.0)),
        (ball(8.0), ball(8.0, (1.0, 0.0, 3.0))),
        (ball(10.0) & ~ball(3.0), ball(10.0)),
        (ball(20.0), ball(9.0, (2.0, -1.0, 4.5))),  # touches the image border
    ],
    ids=["concentric", "shifted", "hole", "border"],
)
def test_matches_monai(pred_truth):
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")
    pred, truth = pred_truth
    y_pred, y = (torch.from_numpy(m)[None, None].float() for m in (pred, truth))  # one-hot (B=1, C=1, ...)
    kwargs = {"include_background": True, "spacing": SPACING}
    expected = {
        "hd": monai_metrics.compute_hausdorff_distance(y_pred, y, **kwargs).item(),
        "hd95": monai_metrics.compute_hausdorff_distance(y_pred, y, percentile=95, **kwargs).item(),
        "assd": monai_metrics.compute_average_surface_distance(y_pred, y, symmetric=True, **kwargs).item(),
    }
    assert surface_distance_metrics(pred, truth, SPACING) == pytest.approx(expected, rel=1e-5)


# --- edge cases ------------------------------------------------------------------------------------

EMPTY = np.zeros((6, 6, 4), bool)
SOME = np.zeros((6, 6, 4), bool)
SOME[2:4, 2:4, 1:3] = True


def test_both_empty_is_perfect_agreement():
    (result,) = label_metrics(EMPTY, EMPTY, {"x": 1}, SPACING).values()
    assert result == dict.fromkeys(METRICS, 1.0) | {"assd": 0.0, "hd": 0.0, "hd95": 0.0}


def test_empty_prediction():
    (result,) = label_metrics(EMPTY, SOME, {"x": 1}, SPACING).values()
    assert result["dice"] == result["iou"] == result["f1"] == result["recall"] == 0.0
    assert math.isnan(result["precision"])  # undefined: nothing predicted
    assert result["specificity"] == 1.0
    assert result["assd"] == result["hd"] == result["hd95"] == math.inf


def test_empty_truth():
    (result,) = label_metrics(SOME, EMPTY, {"x": 1}, SPACING).values()
    assert result["dice"] == result["iou"] == result["precision"] == 0.0
    assert math.isnan(result["recall"])  # undefined: nothing to find
    assert result["assd"] == result["hd"] == result["hd95"] == math.inf


def test_specificity_undefined_when_truth_fills_image():
    full = np.ones((2, 2))
    assert math.isnan(confusion_metrics(full, full)["specificity"])


# --- aggregation -----------------------------------------------------------------------------------


def test_segmentation_metrics_aggregates_and_counts_exclusions():
    labels = {"organ": 1, "lesion": 2}
    good = np.ones(SOME.shape, int)  # organ everywhere except the lesion block
    good[SOME] = 2
    metrics = SegmentationMetrics(labels)
    case1 = metrics.add("case1", good, good, SPACING)
    metrics.add("case2", np.where(good == 2, 0, good), good, SPACING)  # lesion missed
    with pytest.raises(ValueError, match="already added"):
        metrics.add("case1", good, good, SPACING)

    assert case1["lesion"]["dice"] == 1.0
    per_label = metrics.per_label()
    lesion = per_label["lesion"]
    assert lesion["n_cases"] == 2
    assert lesion["mean"]["dice"] == pytest.approx(0.5)
    assert lesion["mean"]["hd"] == 0.0 and lesion["excluded"]["hd"] == 1  # inf of case2 left out, counted
    assert math.isnan(metrics.cases["case2"]["lesion"]["precision"]) and lesion["excluded"]["precision"] == 1
    assert per_label["organ"]["excluded"] == dict.fromkeys(METRICS, 0)

    summary = metrics.summary()
    assert summary["n_cases"] == 2
    assert summary["mean_dice"] == pytest.approx((per_label["organ"]["mean"]["dice"] + 0.5) / 2)

    table = metrics.table()
    assert [(r["case"], r["label"]) for r in table] == [
        ("case1", "organ"), ("case1", "lesion"), ("case2", "organ"), ("case2", "lesion"),
        ("mean", "organ"), ("excluded", "organ"), ("mean", "lesion"), ("excluded", "lesion"),
    ]  # fmt: skip
    assert set(metrics.to_dict()) == {"labels", "cases", "per_label", "summary"}


def test_all_excluded_mean_is_nan():
    metrics = SegmentationMetrics({"x": 1})
    metrics.add("only", EMPTY, SOME)
    assert math.isnan(metrics.per_label()["x"]["mean"]["hd"])
    assert metrics.summary()["mean_dice"] == 0.0
