"""The folder command line (``python -m lib.predict``): labels on each input's grid, a corrupt file
reported and skipped, a rerun that keeps what is there, a checkpoint file as the model."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from lib.metrics.dice import dice
from lib.planning.presets import shipped_checkpoint
from lib.predict import main
from tests.server import REPO_ROOT, SAMPLE_CT

XRAY = REPO_ROOT / "sample-data" / "xray"


def test_ct_folder_gets_labels_on_each_input_grid_and_a_corrupt_file_is_reported(tmp_path, capsys):
    scans, out = tmp_path / "scans", tmp_path / "labels"
    scans.mkdir()
    shutil.copy(SAMPLE_CT / "case_011.nii.gz", scans)
    shutil.copy(SAMPLE_CT / "new_000.nii.gz", scans)
    (scans / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    assert main(["--model", "ct_organs", "--input", str(scans), "--output", str(out)]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == ["case_011.nii.gz", "new_000.nii.gz"] and summary["skipped"] == []
    assert (
        list(summary["failed"]) == ["broken.nii.gz"]
        and "cannot read image" in summary["failed"]["broken.nii.gz"]
    )
    assert not (out / "broken.nii.gz").exists() and not list(out.glob(".tmp-*"))
    for name in summary["written"]:
        image, label = nib.load(scans / name), nib.load(out / name)
        assert label.shape == image.shape and label.get_data_dtype() == np.uint8
        np.testing.assert_allclose(label.affine, image.affine, atol=1e-5)
    truth = np.asarray(nib.load(SAMPLE_CT / "labels" / "final" / "case_011.nii.gz").dataobj)
    pred = np.asarray(nib.load(out / "case_011.nii.gz").dataobj)
    assert np.mean([dice(pred == v, truth == v) for v in (1, 2, 3, 4)]) >= 0.85

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["--model", "ct_organs", "--input", str(scans), "--output", str(out)]) == 1
    again = json.loads(capsys.readouterr().out)
    assert again["written"] == [] and again["skipped"] == summary["written"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # a rerun changes nothing


def test_a_checkpoint_file_as_model_on_2d_images(tmp_path, capsys):
    scans, out = tmp_path / "scans", tmp_path / "labels"
    scans.mkdir()
    for name in ("cxr_001.png", "new_001.png"):
        shutil.copy(XRAY / name, scans)
    checkpoint = str(shipped_checkpoint("xray_lungs"))
    assert (
        main(["--model", checkpoint, "--input", str(scans), "--output", str(out), "--backend", "fp32"]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "xray_lungs" and summary["written"] == ["cxr_001.png", "new_001.png"]
    for name in summary["written"]:
        label = np.asarray(Image.open(out / name))
        assert label.shape == np.asarray(Image.open(scans / name)).shape and set(np.unique(label)) == {
            0,
            1,
            2,
        }
    truth = np.asarray(Image.open(XRAY / "labels" / "final" / "cxr_001.png"))
    pred = np.asarray(Image.open(out / "cxr_001.png"))
    assert min(dice(pred == v, truth == v) for v in (1, 2)) >= 0.85


def test_bad_model_or_input_exits_2_with_the_reason(tmp_path, capsys):
    assert main(["--model", "no_such_model", "--input", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "no checkpoint 'no_such_model'" in capsys.readouterr().err
    assert main(["--model", "ct_organs", "--input", str(tmp_path / "nope"), "--output", str(tmp_path)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["--model", "ct_organs", "--input", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err


def test_infer_options_are_arguments_and_bad_values_exit_2(tmp_path, capsys):
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(SAMPLE_CT / "case_011.nii.gz", scans)
    args = ["--model", "ct_organs", "--input", str(scans), "--output", str(tmp_path / "o")]
    assert main([*args, "--overlap", "0.5", "--largest-component", "false", "--mirror", "no"]) == 0
    options = json.loads(capsys.readouterr().out)["options"]
    assert options == {"largest_component": False, "overlap": 0.5, "mirror": False, "sw_batch_size": 2}
    with pytest.raises(SystemExit) as exited:
        main([*args, "--overlap", "2"])
    assert exited.value.code == 2
    assert "invalid infer option overlap" in capsys.readouterr().err
