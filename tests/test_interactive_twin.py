"""The click-guided twin in ``lib``: its plan, its start from the segmentation model, its training
clicks, its validation cases and the click editor that serves it."""

from __future__ import annotations

from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage

from lib.data.loaders import validation_cases
from lib.inference.config import InferConfig
from lib.inference.predictor import Predictor, keep_largest_components
from lib.interactive.editing import ClickEditor, click_intents, clicked_regions, merge_edit
from lib.interactive.guidance import Clicks
from lib.interactive.simulation import RandClickGuidanced, make_faint
from lib.interactive.training import ClickRounds, validation_clicks
from lib.networks.pretrained import load_pretrained
from lib.planning.definitions import ModelDefinition
from lib.planning.plan_store import PlanStore
from lib.planning.presets import (
    CT_ORGANS,
    PRESETS,
    TWIN_SUFFIX,
    ModelPreset,
    build_network,
    interactive_twin,
    load_model,
    shipped_checkpoint,
)
from lib.training.config import TrainConfig
from lib.training.engine import Trainer
from tests.toy_data import toy_box_cases

# a small 3-D plan on a 2 mm grid (fast networks for the tests)
TOY = ModelPreset(
    name="toy",
    modality="CT",
    description="toy",
    labels={"a": 1, "b": 2},
    spatial_dims=3,
    spacing=(2.0, 2.0, 2.0),
    patch_size=(16, 16, 16),
    intensity={"scheme": "ct_window", "window": "abdomen"},
    network={"arch": "unet", "channels": (8, 16, 32), "strides": ((1, 1, 1), (2, 2, 2)), "num_res_units": 1},
)


@pytest.mark.parametrize("preset", [*PRESETS.values(), TOY], ids=lambda p: p.name)
def test_twin_plan_shares_everything_but_its_inputs(preset):
    twin = interactive_twin(preset)
    assert twin.name == preset.name + TWIN_SUFFIX and twin.interactive
    assert (twin.spacing, twin.patch_size, twin.intensity, twin.network, twin.labels) == (
        preset.spacing,
        preset.patch_size,
        preset.intensity,
        preset.network,
        preset.labels,
    )
    assert twin.in_channels == 1 + preset.out_channels and preset.in_channels == 1
    assert ModelPreset.from_dict(twin.to_dict()) == twin
    shipped = shipped_checkpoint(preset.name)
    assert shipped_checkpoint(twin.name) == (shipped.with_name(f"{twin.name}.pt") if shipped else None)


def test_twin_starts_as_its_segmentation_model():
    """Widened input weights (guidance at zero) make the twin's auto mode the segmentation model."""
    torch.manual_seed(0)
    base, twin = build_network(TOY).eval(), build_network(interactive_twin(TOY)).eval()
    report = load_pretrained(twin, {"state_dict": base.state_dict(), "labels": TOY.labels}, labels=TOY.labels)
    assert len(report.loaded) == report.total and report.widened and not report.skipped
    assert "added input channels start at zero" in str(report)
    image = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        expected = base(image)
        auto = twin(torch.cat([image, torch.zeros(1, 3, 16, 16, 16)], 1))
        clicked = twin(torch.cat([image, torch.ones(1, 3, 16, 16, 16)], 1))
    torch.testing.assert_close(auto, expected)
    assert torch.equal(auto, clicked)  # the guidance weights start at zero: clicks do nothing yet
    with pytest.raises(ValueError, match="shape"):
        load_pretrained(twin, base.state_dict(), strict_shapes=True)


def test_predictor_pads_the_auto_mode_and_checks_guidance():
    twin_plan = interactive_twin(TOY)
    predictor = Predictor(twin_plan, build_network(twin_plan))
    image = torch.rand(1, 20, 20, 20)
    assert predictor.logits(image).shape == (3, 20, 20, 20)
    with pytest.raises(ValueError, match="guidance must have shape"):
        predictor.logits(image, guidance=np.zeros((2, 20, 20, 20), np.float32))
    with pytest.raises(ValueError, match="not interactive"):
        Predictor(TOY, build_network(TOY)).logits(image, guidance=np.zeros((3, 20, 20, 20), np.float32))


class _Fixed(torch.nn.Module):
    """A 'network' answering the same class everywhere (its scores: one-hot of ``value``)."""

    def __init__(self, value: int, classes: int) -> None:
        super().__init__()
        self.value, self.classes, self.calls = value, classes, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = torch.zeros(x.shape[0], self.classes, *x.shape[2:])
        out[:, self.value] = 1
        return out


@pytest.mark.parametrize(
    "predicted, channel, where",
    [
        (0, 2, (4, 4, 4)),  # everything missed: a foreground click for the label, inside it
        (1, 1, (9, 9, 9)),  # everything called the label: a background click, deep in the background
    ],
)
def test_click_rounds_click_the_largest_error(predicted, channel, where):
    label = torch.zeros(1, 1, 12, 12, 12, dtype=torch.uint8)
    label[0, 0, 2:7, 2:7, 2:7] = 1
    image = torch.zeros(1, 3, 12, 12, 12)
    net = _Fixed(predicted, 2).train()
    out = ClickRounds({"organ": 1}, max_rounds=1, prob=1.0)(net, image, label)
    assert net.training and net.calls == 1  # train mode restored after the no-grad round
    peak = np.unravel_index(int(out[0, channel].argmax()), (12, 12, 12))
    assert float(out[0, channel].max()) == 1.0 and np.abs(np.subtract(peak, where)).max() <= 2
    assert float(out[0, 3 - channel].max()) == 0.0 and float(out[0, 0].abs().max()) == 0.0


def test_click_rounds_stop_when_nothing_is_wrong_and_respect_prob():
    label = torch.zeros(2, 1, 8, 8, 8, dtype=torch.uint8)
    image = torch.zeros(2, 3, 8, 8, 8)
    net = _Fixed(0, 2)
    ClickRounds({"organ": 1}, max_rounds=3, prob=1.0)(net, image, label)
    assert net.calls == 1 and float(image.abs().max()) == 0.0
    never = _Fixed(0, 2)
    ClickRounds({"organ": 1}, prob=0.0)(never, image, label + 1)
    assert never.calls == 0


def test_validation_cases_of_a_twin_hold_auto_and_one_click_per_label(tmp_path):
    shape = (24, 24, 24)
    label = np.zeros(shape, np.uint8)
    label[3:10, 3:10, 3:10], label[14:20, 14:20, 14:20] = 1, 2
    image = (label * 100.0).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(image, affine), tmp_path / "i.nii.gz")
    nib.save(nib.Nifti1Image(label, affine), tmp_path / "l.nii.gz")
    item = {"image": str(tmp_path / "i.nii.gz"), "label": str(tmp_path / "l.nii.gz")}
    assert len(validation_cases([item], TOY)) == 1
    auto, clicked = validation_cases([item], interactive_twin(TOY))
    assert auto["image"].shape == clicked["image"].shape == (4, *shape)
    assert float(auto["image"][1:].abs().max()) == 0.0
    truth = np.asarray(clicked["label"][0])
    for value in (1, 2):
        peak = np.unravel_index(int(clicked["image"][1 + value].argmax()), shape)
        assert truth[peak] == value and float(clicked["image"][1 + value].max()) == 1.0
    assert float(clicked["image"][1].abs().max()) == 0.0  # no background click
    assert validation_clicks(truth, {**TOY.labels, "c": 3}).foreground["c"] == []


def test_trainer_calls_prepare_batch_on_every_training_batch(tmp_path):
    cases = toy_box_cases(3, seed=0)
    twin_plan = replace(interactive_twin(TOY), labels={"box": 1}, patch_size=(16, 16, 8))
    net = build_network(twin_plan)
    seen = []

    def prepare(network, image, label):
        seen.append(tuple(image.shape))
        return image

    batches = [
        {"image": torch.cat([c["image"], torch.zeros(2, 16, 16, 8)])[None], "label": c["label"][None]}
        for c in cases
    ]
    config = TrainConfig(max_epochs=2, max_minutes=0, val_interval=1, amp=False)
    Trainer(net, config, batches, [], {"box": 1}, (16, 16, 8), str(tmp_path), prepare_batch=prepare).fit()
    assert seen == [(1, 3, 16, 16, 8)] * 6


@pytest.mark.parametrize(
    "previous, new, edited, expected",
    [
        ([0, 1, 1, 2, 0], [1, 1, 0, 1, 2], {1}, [1, 1, 0, 2, 0]),  # 1 grows, shrinks; 2 untouched
        ([0, 1, 1, 2, 0], [1, 1, 0, 1, 2], {2}, [0, 1, 1, 0, 2]),  # 2 moves, never over 1
        ([2, 2, 0], [0, 0, 0], {1, 2}, [0, 0, 0]),  # a removal
        ([3, 0], [1, 1], set(), [3, 0]),  # nothing edited
        ([0, 1, 1, 2, 0], [1, 1, 0, 1, 2], {1: "add"}, [1, 1, 1, 2, 0]),  # grows, keeps its voxels
        ([1, 1, 0], [0, 0, 1], {1: "add"}, [1, 1, 1]),  # a foreground click never shrinks its label
        ([0, 1, 1, 2, 0], [1, 1, 0, 1, 2], {1: "remove"}, [0, 1, 0, 2, 0]),  # shrinks only
        ([0, 0, 1], [1, 1, 1], {1: "remove"}, [0, 0, 1]),  # a background click never adds
    ],
)
def test_merge_edit(previous, new, edited, expected):
    intents = edited if isinstance(edited, dict) else None
    out = merge_edit(np.array(previous), np.array(new), edited, intents=intents)
    assert out.tolist() == expected


def test_an_unknown_intent_is_refused():
    with pytest.raises(ValueError, match="unknown edit intent 'grow'"):
        merge_edit(np.zeros(3, int), np.ones(3, int), [1], intents={1: "grow"})


@pytest.mark.parametrize(
    "foreground, background, before_fg, before_bg, expected",
    [
        ({"a": [(0,)]}, [], {}, [], {1: "add", 2: "replace"}),  # a new click for a
        ({}, [(1,)], {}, [], {1: "remove", 2: "replace"}),  # a new background click on a's voxel
        ({}, [(3,)], {}, [], {1: "replace", 2: "remove"}),
        ({"a": [(0,)]}, [(1,)], {}, [], {1: "replace", 2: "replace"}),  # both for a: the network decides
        ({"a": [(0,)]}, [], {"a": [(0,)]}, [], {1: "replace", 2: "replace"}),  # the same clicks again
        ({}, [(0,)], {}, [], {1: "replace", 2: "replace"}),  # a background click on background
    ],
)
def test_click_intents(foreground, background, before_fg, before_bg, expected):
    labels, last = {"a": 1, "b": 2}, np.array([0, 1, 2, 2])
    clicks = Clicks({"a": [], "b": [], **foreground}, background)
    before = Clicks({"a": [], "b": [], **before_fg}, before_bg)
    assert click_intents(clicks, before, last, labels, [1, 2]) == expected


def test_a_click_claims_its_region_from_the_wrong_label():
    """A click for 'a' (1) inside a region labelled 'b' (2): the clicked region of the new answer is
    relabelled; the rest of 'b' stays."""
    previous, new = np.array([2, 2, 2, 0, 2, 2]), np.array([1, 1, 0, 0, 1, 2])
    claimed = clicked_regions(new, Clicks({"a": [(1,)], "b": []}), {"a": 1, "b": 2}, [1])
    assert claimed.tolist() == [True, True, False, False, False, False]
    assert merge_edit(previous, new, [1], claimed).tolist() == [1, 1, 2, 0, 2, 2]


def test_keep_largest_components_keeps_clicked_islands():
    logits = torch.zeros(2, 12)
    logits[1, [0, 1, 2, 3, 6, 10]] = 5.0  # class 1: components of 4, 1 and 1 voxels
    assert keep_largest_components(logits.clone()).tolist() == [1, 1, 1, 1] + [0] * 8
    kept = keep_largest_components(logits.clone(), {1: [(10,)]})
    assert kept.tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0]


def _assert_only_edited(before: np.ndarray, after: np.ndarray, value: int, click: tuple) -> None:
    """Outside ``value``'s new voxels, ``after`` is ``before`` with ``value`` cleared; ``value`` took
    voxels of other labels only in its region holding the click."""
    rest = after != value
    assert np.array_equal(after[rest], np.where(before == value, 0, before)[rest])
    components, _ = ndimage.label(after == value)
    outside = (after == value) & (components != components[click])
    assert np.isin(before[outside], [0, value]).all()


def test_click_editor_edits_only_the_clicked_label(tmp_path):
    """Whatever the weights, a click for one label leaves the others as the last answer had them; the
    image is preprocessed once; clicks outside the image are refused."""
    torch.manual_seed(1)
    twin_plan = interactive_twin(TOY)
    net = build_network(twin_plan)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)  # confident, varied scores: several labels present
    editor = ClickEditor(Predictor(twin_plan, net.eval()))
    rng = np.random.default_rng(0)
    image = rng.normal(100, 200, (30, 26, 22)).astype(np.float32)
    nib.save(nib.Nifti1Image(image, np.diag([1.5, 1.5, 2.5, 1.0])), tmp_path / "img.nii.gz")
    path = str(tmp_path / "img.nii.gz")
    config = InferConfig(largest_component=False)
    auto = editor(path, Clicks(), config)
    assert auto.label.shape == image.shape and auto.timings["cached_image"] == 0.0
    edit = editor(path, Clicks({"a": [(15, 13, 11)], "b": []}, label="a"), config)
    assert edit.timings["cached_image"] == 1.0 and "guidance" in edit.timings
    _assert_only_edited(auto.label, edit.label, 1, (15, 13, 11))
    again = editor(path, Clicks({"a": [], "b": [(2, 2, 2)]}, label="b"), config)
    _assert_only_edited(edit.label, again.label, 2, (2, 2, 2))
    with pytest.raises(ValueError, match="outside the image"):
        editor(path, Clicks({"a": [(300, 1, 1)], "b": []}, label="a"), config)
    with pytest.raises(ValueError, match="not an interactive plan"):
        ClickEditor(Predictor(TOY, build_network(TOY)))


def test_twin_plan_store_shares_the_models_plan(tmp_path):
    definition = ModelDefinition("mine", {"a": 1, "b": 2})
    base, twin = PlanStore(definition, tmp_path), PlanStore(definition, tmp_path, interactive=True)
    assert twin.name == "mine" + TWIN_SUFFIX and base.name == "mine"
    assert twin.current() is None
    base.save(replace(TOY, name="mine"))
    assert twin.current() == interactive_twin(base.current())
    with pytest.raises(ValueError, match="twin is derived"):
        twin.save(twin.current())
    preset_twin = PlanStore(ModelDefinition("ct_organs", CT_ORGANS.labels, preset=CT_ORGANS), tmp_path, True)
    assert preset_twin.current() == interactive_twin(CT_ORGANS)


def test_load_model_rebuilds_a_twin_from_its_checkpoint(tmp_path):
    twin_plan = interactive_twin(TOY)
    net = build_network(twin_plan)
    plan, loaded, _ = load_model({"state_dict": net.state_dict(), "plan": twin_plan.to_dict()})
    assert plan == twin_plan and plan.in_channels == 4
    pairs = zip(net.state_dict().values(), loaded.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_make_faint_scales_contrast_to_the_surroundings_only():
    image = torch.full((1, 12, 12, 12), 5.0)
    mask = np.zeros((12, 12, 12), bool)
    mask[4:8, 4:8, 4:8] = True
    image[0][torch.from_numpy(mask)] = 45.0
    out = make_faint(image, mask, 0.25)
    assert float(out[0][torch.from_numpy(mask)].mean()) == pytest.approx(15.0)  # 5 + 0.25 * (45 - 5)
    assert torch.equal(out[0][torch.from_numpy(~mask)], image[0][torch.from_numpy(~mask)])
    assert float(image[0, 5, 5, 5]) == 45.0  # a copy


def test_faint_patches_keep_their_label_and_their_clicks():
    label = np.zeros((1, 16, 16, 16), np.uint8)
    label[0, 4:10, 4:10, 4:10] = 1
    image = np.where(label > 0, 1.0, 0.0).astype(np.float32)
    t = RandClickGuidanced({"organ": 1}, max_clicks=2, no_clicks_prob=0.0, faint_prob=1.0)
    faint = 0
    for seed in range(8):
        out = t.set_random_state(seed=seed)({"image": image, "label": label})
        assert np.array_equal(out["label"], label) and out["image"].shape == (3, 16, 16, 16)
        clicked = out["image"][2].max() == 1.0
        organ = out["image"][0][label[0] > 0]
        faint += int(organ.max() < 0.41)
        assert clicked or organ.min() == 1.0  # only a clicked organ is made faint
    assert faint >= 4
