"""Sides and test-time mirroring: which labels swap in a mirror image, and known answers for the mean of
an image's scores and its mirror's."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.inference.config import InferConfig
from lib.inference.mirroring import mirror, mirrored_mean
from lib.inference.predictor import Predictor
from lib.planning.laterality import (
    lateral_labels,
    mirror_classes,
    mirror_overlap,
    mirror_overlaps,
    mirror_profile,
    opposite_side,
    symmetric_classes,
)
from lib.planning.presets import CT_ORGANS, MRI_BRAIN, XRAY_LUNGS, ModelPreset, build_network
from tests.server import SAMPLE_CT

SIDED = {"liver": 1, "kidney_left": 2, "kidney_right": 3}  # classes 0 bg, 1 liver, 2 left, 3 right


def test_lateral_names():
    names = {"kidney_left": 1, "Parotid_R": 2, "rt_eye": 3, "l_lens": 4, "liver": 5, "larynx": 6, "lr": 7}
    assert lateral_labels(names) == ["kidney_left", "Parotid_R", "rt_eye", "l_lens"]


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("kidney_left", "kidney_right"),
        ("Parotid_R", "Parotid_L"),
        ("LeftLung", "RightLung"),
        ("lt_eye", "rt_eye"),
        ("Cochlea_Dx", "Cochlea_Sin"),
        ("spinal_cord", "spinal_cord"),
        ("larynx", "larynx"),
    ],
)
def test_opposite_side_swaps_every_side_token_and_keeps_case(name, other):
    assert opposite_side(name) == other and opposite_side(other) == name


@pytest.mark.parametrize(
    ("labels", "classes"),
    [
        ({"brain": 1}, [0, 1]),
        (SIDED, [0, 1, 3, 2]),
        ({"Parotid_L": 1, "Brainstem": 2, "Parotid_R": 3}, [0, 3, 2, 1]),
        ({"liver": 1, "kidney_left": 2}, None),  # a mirrored left kidney would be a right one: no class
    ],
)
def test_mirror_classes(labels, classes):
    assert mirror_classes(labels) == classes


def _phantom(pair: bool = True, midline: bool = True, body_shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 40-wide body (left-right axis first) centred at 20 + ``body_shift`` in a 60-voxel field, with
    a midline structure (1) and a left (2) / right (3) pair placed about x = 20."""
    image = np.zeros((60, 20, 10), np.float32)
    image[body_shift : 40 + body_shift] = 100.0
    label = np.zeros(image.shape, np.int64)
    if midline:
        label[17:23, 5:15, 2:8] = 1
    if pair:
        label[5:10, 8:12, 3:7] = 2
        label[30:35, 8:13, 3:7] = 3  # its counterpart is one voxel longer: Dice 0.9 with its mirror
    else:
        label[5:10, 8:12, 3:7] = 2
    return image, label


def test_mirror_overlaps_finds_the_midline_and_the_pair():
    image, label = _phantom()
    m = mirror_overlaps(image, label, 3)
    assert m[1, 1] == pytest.approx(1.0)
    assert m[2, 3] == m[3, 2] == pytest.approx(2 * 80 / (80 + 100))
    assert m[2, 2] == m[1, 2] == 0


def test_mirror_profile_and_overlap_agree_with_counting_voxel_by_voxel():
    rng = np.random.default_rng(0)
    a, b = rng.random((9, 4, 3)) < 0.4, rng.random((9, 4, 3)) < 0.3

    def mirrored(mask, s):  # slice x of the result is slice s - x of mask (empty outside)
        out = np.zeros_like(mask)
        for x in range(mask.shape[0]):
            if 0 <= s - x < mask.shape[0]:
                out[x] = mask[s - x]
        return out

    for s in range(2 * 9 - 1):
        assert mirror_overlap(a, b, s) == np.count_nonzero(a & mirrored(b, s))
        assert mirror_profile(a)[s] == pytest.approx(np.count_nonzero(a & mirrored(a, s)), abs=1e-3)


def test_a_structure_on_one_side_of_the_body_is_not_symmetric():
    image, label = _phantom(pair=False, midline=False)  # mirrors best onto itself, far from the body's centre
    assert not mirror_overlaps(image, label, 3).any()
    image, label = _phantom(body_shift=15)  # a midline off the body's centre: not a mirror plane
    assert not mirror_overlaps(image, label, 3).any()


def test_symmetric_classes_from_overlaps_and_names():
    image, label = _phantom()
    m = mirror_overlaps(image, label, 3)
    assert symmetric_classes(m, {"a": 1, "b": 2, "c": 3}) == (0, 1, 3, 2)
    assert symmetric_classes(m, {"cord": 1, "eye_l": 2, "eye_r": 3}) == (0, 1, 3, 2)
    assert symmetric_classes(m, {"cord": 1, "eye_l": 2, "ear_r": 3}) is None  # names disagree
    weak = m.copy()
    weak[1, 1] = 0.2  # the midline structure's mirror misses it: asymmetric anatomy
    assert symmetric_classes(weak, {"a": 1, "b": 2, "c": 3}) is None
    assert symmetric_classes(None, {"brain": 1}) == (0, 1)  # no data: names that say no side
    assert symmetric_classes(None, {"eye_l": 1, "eye_r": 2}) is None


def test_plans_without_a_mirror_entry_keep_the_rule_they_were_trained_with():
    for preset, expected in ((MRI_BRAIN, (0, 1)), (CT_ORGANS, None), (XRAY_LUNGS, None)):
        old = {k: v for k, v in preset.to_dict().items() if k != "mirror"}
        assert ModelPreset.from_dict(old).mirror == expected == preset.mirror
        assert ModelPreset.from_dict(preset.to_dict()) == preset
    with pytest.raises(ValueError, match="mirror must reorder"):
        replace(MRI_BRAIN, mirror=(0, 0))


def _halves(shape=(4, 3, 2)) -> tuple[torch.Tensor, torch.Tensor]:
    left = torch.zeros(shape)
    left[: shape[0] // 2] = 1.0  # low indices along the first (left-right) axis
    return left, 1 - left


def test_a_network_that_knows_sides_by_position_is_unchanged_by_mirroring():
    left, right = _halves()

    def scores(x):  # class 2 (left) on one half, class 3 (right) on the other, whatever the image
        return torch.stack([torch.zeros_like(left), torch.zeros_like(left), left, right])

    image = torch.rand(1, *left.shape)
    assert torch.equal(mirrored_mean(scores, image, [0, 1, 3, 2]), scores(image))


def test_a_network_that_calls_every_kidney_left_is_split_evenly_by_mirroring():
    ones = torch.ones(4, 3, 2)

    def scores(x):
        return torch.stack([0 * ones, 0 * ones, ones, 0 * ones])

    mean = mirrored_mean(scores, torch.rand(1, *ones.shape), [0, 1, 3, 2])
    assert torch.equal(mean[2], 0.5 * ones) and torch.equal(mean[3], 0.5 * ones)


def test_guidance_channels_are_mirrored_with_their_classes():
    image = torch.rand(1 + 4, 4, 3, 2)  # the image, then one guidance channel per class

    def echo(x):  # a network that answers each class with its clicks: mirroring must not change it
        return x[1:] * 3

    assert torch.allclose(mirrored_mean(echo, image, [0, 1, 3, 2]), echo(image))
    assert torch.equal(mirror(mirror(image, [0, 1, 3, 2], 1), [0, 1, 3, 2], 1), image)


def test_predictor_runs_the_mirror_only_when_asked_and_the_labels_allow():
    torch.manual_seed(0)
    case = str(SAMPLE_CT / "case_011.nii.gz")
    for preset, passes in ((replace(CT_ORGANS, mirror=(0, 1, 2, 4, 3)), 2), (CT_ORGANS, 1)):
        predictor = Predictor(preset, build_network(preset))
        image, _, _ = predictor.preprocess(case)
        seen: list[torch.Tensor] = []
        predictor.runner = lambda x, net=predictor.network, seen=seen: seen.append(x.clone()) or net(x)
        plain = predictor.logits(image, InferConfig(mirror=False))
        n_plain = len(seen)
        mirrored = predictor.logits(image, InferConfig(mirror=True))
        assert len(seen) - n_plain == passes * n_plain, preset.mirror
        assert torch.allclose(plain, mirrored) == (passes == 1)
