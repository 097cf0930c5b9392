"""Declaring models (labels, modality, definitions file), the plan store, the normalisation table and
partial loading across a label-set change."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lib.networks.pretrained import load_pretrained
from lib.planning.definitions import parse_labels, resolve_definitions
from lib.planning.plan_store import PlanStore
from lib.planning.presets import CT_ORGANS, build_network
from lib.preprocessing.normalization import NORMALIZATION, normalization


@pytest.mark.parametrize(
    "value, expected",
    [
        ("a,b,c", {"a": 1, "b": 2, "c": 3}),
        (" a , b ", {"a": 1, "b": 2}),
        ('{"b": 2, "a": 1}', {"a": 1, "b": 2}),
        (["x", "y"], {"x": 1, "y": 2}),
    ],
)
def test_labels_parse(value, expected):
    assert parse_labels(value) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("a,a", "unique names"),
        ("a,,b", "invalid name"),
        ("background,a", "invalid name"),
        ('{"a": 1, "b": 3}', "values 1..N"),
        ('{"a": "1"}', "must be an integer"),
        ('{"a": 1', "malformed JSON"),
        ("", "invalid name"),
    ],
)
def test_bad_labels_are_refused_with_the_reason(value, message):
    with pytest.raises(ValueError, match=message):
        parse_labels(value)


def test_resolve_presets_own_model_and_definitions_file(tmp_path):
    assert [d.name for d in resolve_definitions({})] == ["ct_organs"]
    assert [d.name for d in resolve_definitions({"models": "all"})] == [
        "ct_organs",
        "mri_brain",
        "xray_lungs",
    ]
    own = resolve_definitions({"models": "ct_organs,oar", "labels": "cord,mandible", "modality": "ct"})
    assert own[0].preset is CT_ORGANS and not own[0].planned_from_data
    assert (
        own[1].labels == {"cord": 1, "mandible": 2} and own[1].modality == "CT" and own[1].planned_from_data
    )
    path = tmp_path / "models.json"
    path.write_text(
        json.dumps({"models": {"a": {"labels": "x,y"}, "b": {"labels": ["z"], "modality": "MR", "n4": True}}})
    )
    defs = resolve_definitions({"models_file": str(path)})
    assert [(d.name, d.modality, d.n4) for d in defs] == [("a", None, False), ("b", "MR", True)]
    assert [d.name for d in resolve_definitions({"models_file": str(path), "models": "b,mri_brain"})] == [
        "b",
        "mri_brain",
    ]


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"models": "mine"}, r"unknown model\(s\) \['mine'\]"),
        ({"models": "ct_organs", "labels": "a"}, "exactly one model of your own"),
        ({"models": "a,b", "labels": "x"}, "exactly one model of your own"),
        ({"models": "ct/x", "labels": "x"}, "use letters, digits"),
        ({"models": "m", "labels": "x", "modality": "PET"}, "modality 'PET'"),
        ({"models": "m", "labels": "x", "n4": "maybe"}, "model 'm': n4: expected a boolean, got 'maybe'"),
        ({"models_file": "/nonexistent/models.json"}, "models_file"),
    ],
)
def test_bad_declarations_name_the_problem(conf, message):
    with pytest.raises(ValueError, match=message):
        resolve_definitions(conf)


def test_definitions_file_rejects_unknown_keys_and_preset_names(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"mine": {"labels": "a", "colour": "red"}}))
    with pytest.raises(ValueError, match="unknown keys"):
        resolve_definitions({"models_file": str(path)})
    path.write_text(json.dumps({"ct_organs": {"labels": "a"}}))
    with pytest.raises(ValueError, match="built-in model"):
        resolve_definitions({"models_file": str(path)})


def test_plan_store_keeps_the_grid_and_follows_new_labels(tmp_path):
    [before] = resolve_definitions({"models": "m", "labels": "a,b"})
    store = PlanStore(before, tmp_path)
    assert store.current() is None
    plan = type(CT_ORGANS)(**{**CT_ORGANS.__dict__, "name": "m", "labels": {"a": 1, "b": 2}})
    store.save(plan)
    assert store.current() == plan
    [after] = resolve_definitions({"models": "m", "labels": "a,b,c"})
    grown = PlanStore(after, tmp_path).current()
    assert grown.labels == {"a": 1, "b": 2, "c": 3} and grown.spacing == plan.spacing
    assert PlanStore(resolve_definitions({})[0], tmp_path).current() is CT_ORGANS


def test_every_normalisation_scheme_builds_and_unknown_is_refused():
    image = np.random.default_rng(0).normal(100, 50, (1, 16, 16, 8)).astype(np.float32)
    params = {"ct_dataset": {"clip": [0, 200], "mean": 100, "std": 50}}
    for scheme in NORMALIZATION:
        if scheme.startswith("xr"):
            continue  # 2-D only (tests/test_xray.py)
        out = normalization({"scheme": scheme, **params.get(scheme, {})})({"image": image})["image"]
        assert out.shape == image.shape and np.isfinite(np.asarray(out)).all()
    with pytest.raises(ValueError, match="unknown intensity scheme"):
        normalization({"scheme": "nope"})


def test_label_added_keeps_shared_output_channels_and_starts_the_new_one_fresh():
    old_plan = type(CT_ORGANS)(**{**CT_ORGANS.__dict__, "labels": {"a": 1, "b": 2}})
    new_plan = type(CT_ORGANS)(**{**CT_ORGANS.__dict__, "labels": {"a": 1, "c": 2, "b": 3}})
    old, new = build_network(old_plan), build_network(new_plan)
    fresh = {k: v.clone() for k, v in new.state_dict().items()}
    # shipped checkpoints hold fp16 weights: they are cast into the fp32 network
    checkpoint = {"state_dict": {k: v.half() for k, v in old.state_dict().items()}, "labels": old_plan.labels}
    old.load_state_dict(checkpoint["state_dict"])  # the reference, rounded like the checkpoint
    report = load_pretrained(new, checkpoint, labels=new_plan.labels)
    assert len(report.loaded) == report.total and report.new_labels == ["c"]
    assert "output channels of new labels start fresh: c" in str(report)
    changed = [k for k, v in old.state_dict().items() if v.shape != new.state_dict()[k].shape]
    assert changed  # the output layer differs in its label axis
    checked = 0
    for name in changed:
        src, dst = old.state_dict()[name], new.state_dict()[name]
        axes = [d for d in range(dst.ndim) if dst.shape[d] != src.shape[d]]
        for d in axes:  # every other label axis at the channel both share: background 0, a 1
            src, dst, init = (t.narrow(d, 0, 1) if d != axes[0] else t for t in (src, dst, fresh[name]))
        axis = axes[0]
        assert torch.equal(dst.narrow(axis, 0, 1), src.narrow(axis, 0, 1))  # background
        assert torch.equal(dst.narrow(axis, 1, 1), src.narrow(axis, 1, 1))  # a stays a
        assert torch.equal(dst.narrow(axis, 3, 1), src.narrow(axis, 2, 1))  # b moved from 2 to 3
        assert torch.equal(dst.narrow(axis, 2, 1), init.narrow(axis, 2, 1))  # c starts fresh
        checked += 1
    assert checked == len(changed)
    # without the label sets, the differing tensors are skipped as before
    plain = load_pretrained(build_network(new_plan), checkpoint)
    assert len(plain.loaded) == plain.total - len(changed)
