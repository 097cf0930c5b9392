"""The training CLI (``python -m lib.train``): trains, publishes, scores the held-out cases, exports."""

import json
import shutil

import pytest
import torch

from lib.train import main
from tests.server import REPO_ROOT

XRAY = REPO_ROOT / "sample-data" / "xray"


def test_cli_trains_publishes_scores_held_out_cases_and_exports(tmp_path, capsys):
    runs, export = tmp_path / "runs", tmp_path / "shipped.pt"
    argv = ["--preset", "xray_lungs", "--data", str(XRAY), "--model-dir", str(runs), "--epochs", "2"]
    assert main([*argv, "--val-interval", "1", "--export", str(export)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"] == 1 and summary["best_epoch"] in (0, 1) and 0 <= summary["best_val_dice"] <= 1
    assert (runs / "v0001.pt").exists() and summary["last"] == str(runs / "last.pt")
    last = torch.load(runs / "last.pt", weights_only=True)
    assert last["preset"] == "xray_lungs" and last["meta"]["epoch"] == 1  # the second of two epochs
    patients = json.loads((runs / "split.json").read_text())["patients"]
    held_out = {name.split(".")[0] for name, part in patients.items() if part in ("val", "test")}
    assert held_out and {name.split(".")[0] for name in summary["held_out"]["cases"]} == held_out
    assert set(summary["held_out"]["per_label"]) == {"lung_left", "lung_right"}
    shipped = torch.load(export, weights_only=True)
    assert shipped["preset"] == "xray_lungs" and shipped["meta"]["best_epoch"] == summary["best_epoch"]
    # the published version lists its cases, the shipped file only counts them (names may name patients)
    published = torch.load(runs / "v0001.pt", weights_only=True)["meta"]
    assert shipped["meta"]["train_cases"] == len(published["train_cases"]) > 0
    assert shipped["meta"]["val_cases"] == len(published["val_cases"]) > 0
    floats = [v for v in shipped["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)  # halved for the repository
    # scoring the published checkpoint alone reproduces the table (same split, same cases)
    assert main([*argv[:6], "--evaluate", str(runs / "v0001.pt")]) == 0
    assert json.loads(capsys.readouterr().out)["held_out"] == summary["held_out"]


def test_cli_refuses_a_folder_without_labelled_images_or_a_split_to_evaluate_on(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--model-dir", str(tmp_path / "runs")]) == 1
    assert "no labelled images" in capsys.readouterr().err
    argv = ["--preset", "xray_lungs", "--data", str(XRAY), "--model-dir", str(tmp_path / "runs")]
    assert main([*argv, "--evaluate", "any.pt"]) == 1
    assert "no persisted split" in capsys.readouterr().err


def test_cli_trains_on_train_also_cases_outside_the_split(tmp_path, capsys):
    extra = tmp_path / "extra"
    (extra / "labels" / "final").mkdir(parents=True)
    for rel in ("cxr_000.png", "labels/final/cxr_000.png"):
        shutil.copy(XRAY / rel, extra / rel.replace("cxr_000", "made_000"))
    runs = tmp_path / "runs"
    argv = ["--preset", "xray_lungs", "--data", str(XRAY), "--model-dir", str(runs), "--epochs", "1"]
    assert main([*argv, "--train-also", str(extra)]) == 0
    summary = json.loads(capsys.readouterr().out)
    patients = json.loads((runs / "split.json").read_text())["patients"]
    assert "made_000" not in patients  # never placed in val or test
    assert summary["train_cases"] == sum(part == "train" for part in patients.values()) + 1
    meta = torch.load(runs / "v0001.pt", weights_only=True)["meta"]
    assert "made_000.png" in meta["train_cases"]


def test_cli_help_prints_the_training_options(capsys):
    # a help text with a bare "%" (e.g. "at most 10% of the run") once crashed argparse's --help
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--val-interval" in out and "10% of the run" in out and "--train-batch-size" in out
