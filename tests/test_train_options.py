"""Train options: one typed source (TrainConfig) for /info, request parsing, the CLI and the engine.

Every advertised option is parsed from a request as 3D Slicer sends it (strings), and every one changes
what the engine, the recipe or the server task does: each is set to another value and the effect is
observed on the real part that reads it.
"""

import math
import shutil
from dataclasses import fields, replace

import pytest
import torch
from monailabel.datastore.local import LocalDatastore

from lib.data.datastore_folder import datastore_items
from lib.io.model_store import ModelStore
from lib.networks.unet import build_unet
from lib.planning.definitions import preset_definition, resolve_definitions
from lib.planning.plan_store import PlanStore
from lib.planning.presets import CT_ORGANS, PRESETS, XRAY_LUNGS, shipped_checkpoint
from lib.training.config import TARGET_STEPS, TrainConfig
from lib.training.engine import Trainer
from lib.training.recipe import run_training
from monailabel_app.tasks.train import SegmentationTrain, parse_options
from tests.server import REPO_ROOT
from tests.toy_data import toy_box_cases

XRAY = REPO_ROOT / "sample-data" / "xray"
SHIPPED_XRAY = REPO_ROOT / "monailabel_app" / "pretrained" / "xray_lungs.pt"

# another valid value of every option, as a client would send it (a string)
ALTERNATIVES = {
    "optimizer": "sgd",
    "lr": "0.02",
    "scheduler": "plateau",
    "max_epochs": "3",
    "max_minutes": "0.0001",
    "warmup_epochs": "2",
    "val_interval": "3",
    "early_stop_patience": "1",
    "early_stop_delta": "1.0",
    "amp": "false",
    "accumulation_steps": "2",
    "grad_clip": "0.000001",
    "train_batch_size": "2",
    "num_samples": "3",
    "synthesis": "1",
    "val_split": "0.6",
    "pretrained": "false",
    "replan": "true",
    "multi_gpu": "true",
    "num_processes": "3",
}


def test_info_lists_every_option_with_its_default_first():
    info = TrainConfig.info()
    assert list(info) == [f.name for f in fields(TrainConfig)] == list(ALTERNATIVES)
    default = TrainConfig()
    for name, value in info.items():
        shown = value[0] if isinstance(value, list) else value
        assert shown == getattr(default, name)
    assert info["optimizer"] == ["adamw", "adam", "sgd"]
    assert info["scheduler"] == ["cosine", "cosine_restarts", "plateau"]
    # what 3D Slicer sends back when the user changed nothing parses to the defaults
    assert parse_options({k: (v if isinstance(v, list) else str(v)) for k, v in info.items()}) == default


@pytest.mark.parametrize("name", list(ALTERNATIVES))
def test_every_option_is_parsed_from_a_string_into_its_own_field(name):
    changed = parse_options({name: ALTERNATIVES[name], "model": "ignored", "device": "cpu"})
    default = parse_options({})
    assert [f.name for f in fields(TrainConfig) if getattr(changed, f.name) != getattr(default, f.name)] == [
        name
    ]


@pytest.mark.parametrize(
    ("request_", "option"),
    [
        ({"optimizer": "magic"}, "optimizer"),
        ({"scheduler": "step"}, "scheduler"),
        ({"lr": "abc"}, "lr"),
        ({"lr": 5}, "lr"),
        ({"lr": "nan"}, "lr"),
        ({"max_epochs": -1}, "max_epochs"),
        ({"max_epochs": "2.5"}, "max_epochs"),
        ({"max_minutes": -1}, "max_minutes"),
        ({"val_split": 0.95}, "val_split"),
        ({"amp": "maybe"}, "amp"),
        ({"train_batch_size": 0}, "train_batch_size"),
        ({"num_samples": 17}, "num_samples"),
        ({"num_processes": 1}, "num_processes"),
        ({"max_epochs": 3, "warmup_epochs": 3}, "warmup_epochs"),
    ],
)
def test_invalid_options_are_refused_naming_the_option(request_, option):
    with pytest.raises(ValueError, match=f"^invalid train option {option}: "):
        parse_options(request_)


# ---- the engine reads its options --------------------------------------------------------------------


def _trainer(config, tmp_path, device="cpu"):
    torch.manual_seed(0)
    train = toy_box_cases(4, 0)
    loader = [{"image": c["image"][None].as_tensor(), "label": c["label"][None]} for c in train]
    net = build_unet(3, 1, 2, channels=(4, 8), num_res_units=0)
    return Trainer(
        net, config, loader, toy_box_cases(1, 1), {"box": 1}, (16, 16, 8), str(tmp_path), device=device
    )


def _first_weights_after_fit(trainer):
    trainer.fit()
    return float(sum(p.detach().double().sum() for p in trainer.network.parameters()))


# observed effect of each engine option: the base config (short runs) with only that option changed
BASE = TrainConfig(max_epochs=0, max_minutes=0, val_interval=1, amp=False)
SHORT = replace(BASE, max_epochs=3)
ENGINE_OBSERVERS = {
    "optimizer": (BASE, lambda t: type(t.optimizer).__name__),
    "lr": (BASE, lambda t: t.optimizer.param_groups[0]["lr"]),
    "scheduler": (BASE, lambda t: type(t.scheduler).__name__),
    "max_epochs": (BASE, lambda t: t.epochs),
    "max_minutes": (SHORT, lambda t: t.fit().stop_reason),
    "warmup_epochs": (BASE, lambda t: t.optimizer.param_groups[0]["lr"]),
    "val_interval": (BASE, lambda t: t.val_interval),
    "early_stop_patience": (replace(SHORT, lr=1e-7, early_stop_delta=0.01), lambda t: len(t.fit().epochs)),
    "early_stop_delta": (replace(SHORT, max_epochs=8, lr=1e-2), lambda t: t.fit().best_epoch >= 0),
    "accumulation_steps": (BASE, lambda t: t.epochs),
    "grad_clip": (replace(SHORT, max_epochs=1, optimizer="sgd", lr=0.1), _first_weights_after_fit),
}


@pytest.mark.parametrize("name", list(ENGINE_OBSERVERS))
def test_engine_options_change_what_the_engine_does(name, tmp_path):
    base, observe = ENGINE_OBSERVERS[name]
    changed = TrainConfig.from_mapping(
        {**{f.name: getattr(base, f.name) for f in fields(base)}, name: ALTERNATIVES[name]}
    )
    before, after = observe(_trainer(base, tmp_path / "a")), observe(_trainer(changed, tmp_path / "b"))
    assert before != after, f"{name}: {before!r} == {after!r}"


def test_amp_selects_the_autocast_dtype(tmp_path):
    # fp16 on a GPU (the trainer only decides here, nothing runs on the device; no GradScaler without one)
    assert _trainer(TrainConfig(amp=True), tmp_path / "a", device="cuda").dtype == torch.float16
    assert _trainer(TrainConfig(amp=False), tmp_path / "b", device="cuda").dtype is None


def test_automatic_schedule_is_sized_from_the_training_cases(tmp_path):
    trainer = _trainer(TrainConfig(), tmp_path)  # 4 batches of one image per epoch
    assert trainer.epochs == math.ceil(TARGET_STEPS / 4) and trainer.val_interval == round(50 / 4)
    trainer = _trainer(TrainConfig(accumulation_steps=2, max_epochs=7, val_interval=2), tmp_path)
    assert (trainer.epochs, trainer.val_interval) == (7, 2)


# ---- the recipe and the server task read the data options --------------------------------------------


def _run(config, tmp_path, items):
    return run_training(
        XRAY_LUNGS,
        items,
        config,
        str(tmp_path / "work"),
        ModelStore(tmp_path / "store"),
        str(tmp_path / "split.json"),
    )


DATA_BASE = TrainConfig(max_epochs=0, max_minutes=0.0001, amp=False, val_split=0.2)  # one epoch each


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    return _run(DATA_BASE, tmp_path_factory.mktemp("base"), datastore_items(str(XRAY))[:5])


DATA_OBSERVERS = {
    "train_batch_size": lambda result, split: result.planned_epochs,
    "num_samples": lambda result, split: result.epochs[0].patches,
    # the same seeds, the same patches: only the images the network learns from differ
    "synthesis": lambda result, split: result.epochs[0].train_loss,
    "val_split": lambda result, split: len(split["val"]),
}


@pytest.mark.parametrize(("name", "observe"), list(DATA_OBSERVERS.items()))
def test_data_options_change_what_the_recipe_does(name, observe, base_run, tmp_path):
    config = TrainConfig.from_mapping({**DATA_BASE.__dict__, name: ALTERNATIVES[name]})
    result, version, split, _ = _run(config, tmp_path, datastore_items(str(XRAY))[:5])
    assert version == 1 and result.stop_reason == base_run[0].stop_reason == "time_budget"
    before, after = observe(base_run[0], base_run[2]), observe(result, split)
    assert before != after, f"{name}: {before!r} == {after!r}"


# option -> (the two values compared, the rest of the request)
SERVER_OBSERVERS = {
    "pretrained": (("false", "true"), {}),
    "multi_gpu": (("false", "true"), {}),
    "num_processes": (("2", "4"), {"multi_gpu": "true"}),
}


@pytest.mark.parametrize("name", list(SERVER_OBSERVERS))
def test_server_options_change_what_the_train_task_does(name, tmp_path):
    studies = tmp_path / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    for item in datastore_items(str(XRAY))[:5]:
        shutil.copy(item["image"], studies)
        shutil.copy(item["label"], studies / "labels" / "final")
    seen = []
    values, rest = SERVER_OBSERVERS[name]
    for i, value in enumerate(values):
        store = ModelStore(tmp_path / f"model{i}")
        task = SegmentationTrain(
            PlanStore(preset_definition(XRAY_LUNGS), store.root), store, str(SHIPPED_XRAY)
        )
        request = {"max_epochs": 1, "amp": False, "num_samples": 1, "pretrained": "false"}
        request.update({**rest, name: value})
        task(request, LocalDatastore(str(studies), extensions=("*.png",), auto_reload=False))
        stats = task.stats()
        assert stats["status"] == "finished" and stats["published_version"] == 1
        # pretrained: the shipped weights already segment lungs; multi_gpu / num_processes: each rank trains
        # on its shard (4 training cases: 4 patches in one process, 2 on rank 0 of two, 1 of four)
        seen.append(stats["baseline_dice"] > 0.5 if name == "pretrained" else stats["epochs"][0]["patches"])
    assert seen[0] != seen[1], f"{name}: {seen}"


def test_replan_derives_a_new_plan_from_the_labelled_images(tmp_path):
    [definition] = resolve_definitions({"models": "lungs", "labels": "lung_left,lung_right"})
    plans = PlanStore(definition, tmp_path)
    task = SegmentationTrain(plans, ModelStore(tmp_path), None)
    items = datastore_items(str(XRAY))[:3]
    first = task.plan(items, replan=False)
    assert plans.current() == first and first.spatial_dims == 2  # planned at the first training
    plans.save(replace(first, working_size=(64, 64), patch_size=(64, 64)))  # an older plan on disk
    assert task.plan(items, replan=False).patch_size == (64, 64)  # kept
    assert task.plan(items, replan=True) == first  # re-derived from the data


def test_a_user_model_warm_starts_only_from_a_shipped_model_with_its_network(tmp_path):
    [definition] = resolve_definitions({"models": "lungs", "labels": "lung_left,lung_right"})
    shipped = [(p, str(shipped_checkpoint(p.name))) for p in PRESETS.values()]
    task = SegmentationTrain(PlanStore(definition, tmp_path), ModelStore(tmp_path), None, shipped)
    planned = task.plan(datastore_items(str(XRAY))[:3], replan=False)
    assert task.initial_weights(planned) is None  # the planned network has a full-resolution stage
    same_network = replace(planned, network=dict(XRAY_LUNGS.network))
    assert task.initial_weights(same_network) == str(SHIPPED_XRAY)
    # the CT model's network and modality, but a 2-D plan: no start either
    assert task.initial_weights(replace(same_network, network=dict(CT_ORGANS.network), modality="CT")) is None


def test_every_option_has_a_test_that_observes_its_effect():
    observed = {*ENGINE_OBSERVERS, *DATA_OBSERVERS, *SERVER_OBSERVERS, "amp", "replan"}  # the last two: above
    assert observed == {f.name for f in fields(TrainConfig)}
