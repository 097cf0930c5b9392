"""The planner on made-up fingerprints, against nnU-Net's published rules (and our CPU budget)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.planning.fingerprint import Fingerprint, infer_modality
from lib.planning.planner import PlanBudget, plan_model, pooling, target_spacing
from lib.planning.presets import ModelPreset, build_network

FOREGROUND = {"percentile_00_5": -100.0, "percentile_99_5": 300.0, "mean": 60.0, "std": 40.0}
LABELS = {"a": 1, "b": 2}


def fp(spacings, shapes, image_low=-1000.0, dicom=None) -> Fingerprint:
    return Fingerprint([list(s) for s in spacings], [list(s) for s in shapes], FOREGROUND, image_low, dicom)


def divisible(plan: ModelPreset) -> bool:
    divisor = np.prod(np.array(plan.network["strides"]), axis=0)
    return bool(np.all(np.array(plan.patch_size) % divisor == 0))


CASES = {
    # name: (spacings, shapes, expected target spacing)
    "isotropic": ([(1.0, 1.0, 1.0)] * 3, [(160, 160, 160)] * 3, [1.0, 1.0, 1.0]),
    "median_per_axis": (
        [(0.8, 0.8, 2.0), (1.0, 1.0, 2.5), (0.9, 0.9, 3.0)],
        [(256, 256, 90)] * 3,
        [0.9, 0.9, 2.5],
    ),
    # coarsest axis > 3x the others AND fewer than a third of their voxels: its 10th percentile
    "strongly_anisotropic": (
        [(0.7, 0.7, 5.0)] * 9 + [(0.7, 0.7, 1.5)],
        [(512, 512, 40)] * 10,
        [0.7, 0.7, float(np.percentile([5.0] * 9 + [1.5], 10))],
    ),
    # anisotropic spacing but not few voxels along it: plain median
    "anisotropic_spacing_many_slices": ([(0.7, 0.7, 5.0)] * 3, [(200, 200, 200)] * 3, [0.7, 0.7, 5.0]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_target_spacing_follows_nnunet(name):
    spacings, shapes, expected = CASES[name]
    got = target_spacing(np.array(spacings, float), np.array(shapes, float))
    assert np.allclose(got, expected, atol=1e-4)


def test_anisotropic_rule_never_goes_finer_than_the_other_axes():
    got = target_spacing(np.array([[1.0, 1.0, 5.0]] * 9 + [[1.0, 1.0, 0.5]]), np.array([[512, 512, 40]] * 10))
    assert got[2] >= 1.0


def test_pooling_skips_coarse_axes_until_the_fine_ones_catch_up():
    # 0.8 mm in-plane vs 5 mm: z is pooled only once in-plane spacing reaches >= 2.5 mm (ratio < 2)
    assert pooling(np.array([0.8, 0.8, 5.0]), np.array([192, 160, 32]), 5) == [
        [2, 2, 1],
        [2, 2, 1],
        [2, 2, 2],
        [2, 2, 2],
        [2, 2, 2],
    ]
    # never below the minimum feature map of 4: a 16-voxel axis is pooled twice at most, and pooling
    # ends when the only axis left is the coarse one (nnU-Net stops there too)
    assert pooling(np.ones(3), np.array([128, 128, 16]), 5) == [[2, 2, 2], [2, 2, 2], [2, 2, 1]]


@pytest.mark.parametrize(
    "spacings, shapes",
    [
        ([(1.0, 1.0, 1.0)] * 3, [(160, 160, 160)] * 3),
        ([(0.7, 0.7, 5.0)] * 3, [(512, 512, 40)] * 3),
        ([(1.0, 1.0, 1.0)] * 2, [(24, 20, 16)] * 2),  # tiny: the whole image
        ([(0.5, 0.5, 0.5)] * 2, [(1024, 1024, 900)] * 2),  # huge: capped by the budget
    ],
    ids=["isotropic", "anisotropic", "tiny", "huge"],
)
def test_patch_fits_budget_median_shape_and_pooling(spacings, shapes):
    budget = PlanBudget()
    plan = plan_model("m", LABELS, fp(spacings, shapes), budget=budget)
    median_at_target = np.median(np.array(shapes) * np.array(spacings) / np.array(plan.spacing), axis=0)
    divisor = np.prod(np.array(plan.network["strides"]), axis=0)
    assert np.prod(plan.patch_size) <= budget.max_patch_voxels
    assert divisible(plan)
    # never more than one pooling step beyond the median shape (rounded up to the divisor)
    assert np.all(np.array(plan.patch_size) <= np.ceil(median_at_target / divisor) * divisor)
    strides = plan.network["strides"]
    assert len(plan.network["channels"]) == len(strides) + 1 <= budget.max_pools + 2
    # nnU-Net's first stage: full resolution, so structures a voxel or two wide are kept
    assert strides[0] == (1,) * len(plan.spacing) and all(2 in s for s in strides[1:])
    assert plan.network["channels"][0] == budget.base_features
    assert max(plan.network["channels"]) <= budget.max_features
    # the planned network runs on its patch and gives one channel per label plus background
    with torch.no_grad():
        out = build_network(plan)(torch.zeros(1, 1, *plan.patch_size))
    assert out.shape == (1, 3, *plan.patch_size)


def test_tiny_images_get_the_whole_image_as_patch():
    plan = plan_model("m", LABELS, fp([(1.0, 1.0, 1.0)] * 2, [(24, 20, 16)] * 2))
    assert plan.patch_size == (24, 20, 16)
    # full resolution, then 16 -> 8 -> 4: two poolings keep every axis >= 4
    assert len(plan.network["strides"]) == 3


def test_isotropic_patch_is_a_cube_in_millimetres():
    plan = plan_model("m", LABELS, fp([(1.0, 1.0, 1.0)] * 3, [(300, 300, 300)] * 3))
    assert len(set(plan.patch_size)) == 1
    plan = plan_model("m", LABELS, fp([(1.0, 1.0, 2.0)] * 3, [(300, 300, 150)] * 3))
    assert plan.patch_size[0] == plan.patch_size[1] > plan.patch_size[2]


def test_two_d_images_are_resized_to_a_working_size():
    plan = plan_model("m", LABELS, fp([(0.15, 0.15)] * 3, [(2000, 2500)] * 3, image_low=0.0))
    assert plan.spatial_dims == 2 and plan.modality == "XR"
    assert plan.working_size == plan.patch_size and max(plan.working_size) == PlanBudget().max_side_2d
    assert divisible(plan) and plan.intensity == {"scheme": "xr_clahe"}


@pytest.mark.parametrize(
    "image_low, dicom, dims, expected",
    [(-1024.0, None, 3, "CT"), (0.0, None, 3, "MR"), (0.0, None, 2, "XR"), (-1024.0, "MR", 3, "MR")],
)
def test_modality_inferred_from_dicom_then_intensities(image_low, dicom, dims, expected):
    shapes = [(64, 64, 32)] if dims == 3 else [(64, 64)]
    spacings = [(1.0,) * dims]
    assert infer_modality(fp(spacings, shapes, image_low, dicom))[0] == expected


def test_normalisation_by_modality_uses_the_dataset_statistics():
    ct = plan_model("m", LABELS, fp([(1.0, 1.0, 1.0)], [(64, 64, 64)]))
    assert ct.intensity == {"scheme": "ct_dataset", "clip": [-100.0, 300.0], "mean": 60.0, "std": 40.0}
    mr = plan_model("m", LABELS, fp([(1.0, 1.0, 1.0)], [(64, 64, 64)], image_low=0.0), n4=True)
    assert mr.intensity == {"scheme": "mr_zscore", "n4": True}
    declared = plan_model("m", LABELS, fp([(1.0, 1.0, 1.0)], [(64, 64, 64)], image_low=0.0), modality="CT")
    assert declared.modality == "CT" and declared.fingerprint["modality_source"] == "declared"


def test_plan_round_trips_through_json():
    import json

    plan = plan_model("m", LABELS, fp([(0.7, 0.7, 5.0)] * 3, [(512, 512, 40)] * 3))
    assert ModelPreset.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_dicom_series_modality_is_read_from_the_files():
    from pathlib import Path

    from lib.planning.fingerprint import dicom_modality

    sample = Path(__file__).resolve().parents[1] / "sample-data"
    assert dicom_modality(str(sample / "ct-dicom" / "case_011")) == "CT"
    assert dicom_modality(str(sample / "ct" / "case_000.nii.gz")) is None
