"""Versioned model publishing: atomic, newest served, bounded history, rollback."""

import os

import pytest
import torch

from lib.io.model_store import ModelStore, save_atomic


def test_publish_versions_prune_and_latest(tmp_path):
    store = ModelStore(tmp_path / "m", keep=2)
    assert store.latest() is None and store.versions() == []
    for i in range(3):
        assert store.publish({"state_dict": {"w": torch.full((2,), float(i))}}) == i + 1
    assert store.versions() == [2, 3]
    version, path = store.latest()
    assert version == 3
    loaded = torch.load(path, weights_only=True)
    assert loaded["version"] == 3 and loaded["state_dict"]["w"][0] == 2.0


def test_rollback_republishes_old_version_as_newest(tmp_path):
    store = ModelStore(tmp_path, keep=5)
    store.publish({"state_dict": {"w": torch.zeros(1)}})
    store.publish({"state_dict": {"w": torch.ones(1)}})
    assert store.rollback(1) == 3
    assert torch.load(store.latest()[1], weights_only=True)["state_dict"]["w"][0] == 0.0
    with pytest.raises(ValueError, match="no model version 9"):
        store.rollback(9)


def test_failed_save_leaves_nothing_behind(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_atomic({"x": Unpicklable()}, tmp_path / "v0001.pt")
    assert os.listdir(tmp_path) == []
    assert ModelStore(tmp_path).latest() is None


def test_temp_files_are_never_versions(tmp_path):
    (tmp_path / ".tmp-abc.pt").write_bytes(b"partial")
    (tmp_path / "v0002.pt.part").write_bytes(b"partial")
    assert ModelStore(tmp_path).versions() == []


def test_versions_cli_lists_and_rolls_back(tmp_path, capsys):
    from lib.versions import main

    store = ModelStore(tmp_path)
    store.publish({"state_dict": {}, "meta": {"best_dice": 0.5}})
    store.publish({"state_dict": {}, "meta": {"source": "upload"}})
    assert main(["list", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "v0001  best_dice=0.5" in out and "v0002" in out and "source=upload" in out
    assert main(["rollback", str(tmp_path), "1"]) == 0
    assert store.latest()[0] == 3
    assert main(["rollback", str(tmp_path), "7"]) == 1
