"""Training on one or two labelled cases: what is split off, validated and published, and the notes."""

import math

import torch

from lib.data.datastore_folder import datastore_items
from lib.io.model_store import ModelStore
from lib.planning.presets import XRAY_LUNGS
from lib.training.config import TrainConfig
from lib.training.recipe import run_training
from tests.server import REPO_ROOT

XRAY = REPO_ROOT / "sample-data" / "xray"
CONFIG = TrainConfig(max_epochs=2, amp=False, num_samples=1)


def _train(items, tmp_path):
    store = ModelStore(tmp_path / "store")
    result, version, split, _ = run_training(
        XRAY_LUNGS, items, CONFIG, str(tmp_path / "work"), store, str(tmp_path / "split.json")
    )
    return result, version, split, store


def test_one_case_trains_without_validation_and_says_so(tmp_path):
    result, version, split, store = _train(datastore_items(str(XRAY))[:1], tmp_path)
    assert [len(split[k]) for k in ("train", "val", "test")] == [1, 0, 0]
    assert version == 1 and result.best_epoch == 1 and math.isnan(result.baseline_dice)
    assert "no validation case" in result.notes[0]
    meta = torch.load(store.path(version), weights_only=True)["meta"]
    assert meta["notes"] == result.notes


def test_two_cases_split_one_to_train_and_one_to_validate_from_the_starting_weights_on(tmp_path):
    result, version, split, _ = _train(datastore_items(str(XRAY))[:2], tmp_path)
    assert [len(split[k]) for k in ("train", "val", "test")] == [1, 1, 0]
    assert version == 1 and 0 <= result.baseline_dice <= 1
    assert [e.val_mean_dice is not None for e in result.epochs] == [False, True]  # the last is validated
    assert result.best_dice >= result.baseline_dice  # never worse than what it started from
