"""The evaluation CLI on tiny NIfTI/NRRD folders: outputs parse and match lib.metrics; errors exit 1."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lib.evaluate import main
from lib.metrics import METRICS, label_metrics

SPACING = (0.5, 0.5, 1.5)
LABELS = {"organ": 1, "lesion": 2}


def truth_map() -> np.ndarray:
    truth = np.zeros((8, 8, 4), np.uint8)
    truth[1:7, 1:7, :] = 1
    truth[3:5, 3:5, 1:3] = 2
    return truth


def save_nifti(path: Path, data: np.ndarray, spacing=SPACING) -> None:
    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), path)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """pred/ and truth/ with two cases; case2's prediction misses the lesion (inf distances)."""
    pred_dir, truth_dir = tmp_path / "pred", tmp_path / "truth"
    pred_dir.mkdir()
    truth_dir.mkdir()
    truth = truth_map()
    shifted = np.roll(truth, 1, axis=0)
    preds = {"case1": shifted, "case2": np.where(truth == 2, 1, truth).astype(np.uint8)}
    for case, pred in preds.items():
        save_nifti(truth_dir / f"{case}.nii.gz", truth)
        save_nifti(pred_dir / f"{case}.nii", pred, spacing=(1.0, 1.0, 1.0))  # the truth's spacing is used
    return pred_dir, truth_dir, preds


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def expected(case: str, preds: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return label_metrics(preds[case], truth_map(), LABELS, SPACING)


def test_json_output_matches_library(folders, tmp_path, capsys):
    pred_dir, truth_dir, preds = folders
    out = tmp_path / "results.json"
    code, stdout, _ = run(
        capsys, "--pred", pred_dir, "--truth", truth_dir, "--labels", json.dumps(LABELS), "--out", out
    )
    assert code == 0
    assert "case1" in stdout and "mean Dice" in stdout
    result = json.loads(out.read_text())  # strict JSON: non-finite values are strings
    assert result["labels"] == LABELS
    for case in preds:
        for label, values in expected(case, preds).items():
            assert {m: float(v) for m, v in result["cases"][case][label].items()} == pytest.approx(
                values, nan_ok=True
            )
    assert result["cases"]["case2"]["lesion"]["hd"] == "inf"
    assert result["per_label"]["lesion"]["excluded"]["hd"] == 1
    assert result["summary"]["n_cases"] == 2


def test_csv_output_and_default_labels(folders, tmp_path, capsys):
    pred_dir, truth_dir, preds = folders
    out = tmp_path / "results.csv"
    code, _, _ = run(capsys, "--pred", pred_dir, "--truth", truth_dir, "--out", out)
    assert code == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["label"] for r in rows} == {"1", "2"}  # every non-zero truth value, named by value
    by_key = {(r["case"], r["label"]): r for r in rows}
    for case in preds:
        for label, values in expected(case, preds).items():
            row = by_key[(case, str(LABELS[label]))]
            assert {m: float(row[m]) for m in METRICS} == pytest.approx(values, nan_ok=True)
    assert math.isinf(float(by_key[("case2", "2")]["hd"]))
    assert by_key[("excluded", "2")]["hd"] == "1"


def test_labels_from_file_and_nrrd_truth(folders, tmp_path, capsys):
    nrrd = pytest.importorskip("nrrd")
    pred_dir, truth_dir, preds = folders
    (truth_dir / "case1.nii.gz").unlink()
    header = {"space directions": np.diag(SPACING), "space": "left-posterior-superior"}
    nrrd.write(str(truth_dir / "case1.nrrd"), truth_map(), header)
    labels_file = tmp_path / "labels.json"
    labels_file.write_text(json.dumps({"lesion": 2}))
    out = tmp_path / "r.json"
    code, _, _ = run(capsys, "--pred", pred_dir, "--truth", truth_dir, "--labels", labels_file, "--out", out)
    assert code == 0
    hd = json.loads(out.read_text())["cases"]["case1"]["lesion"]["hd"]
    assert hd == pytest.approx(expected("case1", preds)["lesion"]["hd"])


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err


def test_shape_mismatch_exits_nonzero(folders, capsys):
    pred_dir, truth_dir, _ = folders
    save_nifti(pred_dir / "case1.nii", np.zeros((8, 8, 5), np.uint8))
    code, _, err = run(capsys, "--pred", pred_dir, "--truth", truth_dir, "--labels", json.dumps(LABELS))
    assert_one_line_error(code, err, "shape mismatch for case 'case1'")


def test_missing_files_exit_nonzero(folders, capsys):
    pred_dir, truth_dir, _ = folders
    (pred_dir / "case2.nii").unlink()
    code, _, err = run(capsys, "--pred", pred_dir, "--truth", truth_dir)
    assert_one_line_error(code, err, "no prediction")
    save_nifti(pred_dir / "extra.nii", truth_map())
    save_nifti(pred_dir / "case2.nii", truth_map())
    code, _, err = run(capsys, "--pred", pred_dir, "--truth", truth_dir)
    assert_one_line_error(code, err, "no truth")


@pytest.mark.parametrize(
    "problem, fragment",
    [("unreadable", "cannot read"), ("bad_labels", "--labels"), ("bad_out", "--out")],
)
def test_bad_inputs_exit_nonzero(folders, tmp_path, capsys, problem, fragment):
    pred_dir, truth_dir, _ = folders
    args = ["--pred", pred_dir, "--truth", truth_dir]
    if problem == "unreadable":
        (pred_dir / "case1.nii").write_bytes(b"not a nifti file")
    elif problem == "bad_labels":
        args += ["--labels", '{"organ": "one"}']
    else:
        args += ["--out", tmp_path / "results.txt"]
    code, _, err = run(capsys, *args)
    assert_one_line_error(code, err, fragment)


def test_module_entry_point(folders):
    pred_dir, truth_dir, _ = folders

    def cli(truth: Path) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "lib.evaluate", "--pred", pred_dir, "--truth", truth]
        return subprocess.run(
            command, cwd=Path(__file__).parents[1], capture_output=True, text=True, check=False
        )

    done = cli(truth_dir)
    assert done.returncode == 0 and "mean Dice" in done.stdout
    done = cli(truth_dir.parent / "missing")
    assert done.returncode == 1 and done.stderr.startswith("error: not a directory")
