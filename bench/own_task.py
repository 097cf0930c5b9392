"""A user's own task end to end through the real server: declare, train from nothing, infer unseen cases.

    python bench/own_task.py DIR --train 10 --test 20 [--labels a,b,c] [--option max_minutes=12]
        [--compare-radiology --radiology-minutes 45]

DIR is a MONAI Label studies folder (images at the top, labels in ``labels/final``). Cases are
shuffled with ``--seed``; the first ``--train`` get their labels copied into a fresh studies folder,
the next ``--test`` are copied without labels (unseen: never trained or validated on). The app starts
with ``--conf models own --conf labels ...`` (names from ``--labels``, else ``DIR/labels.json`` /
an MSD ``dataset.json``, else ``label_1..K``), trains through ``POST /train/own`` from no version
(``--option key=value`` adds train options), then segments every test case through ``/infer/own``
with the 3D Slicer plugin's client and scores it against its reference label on the input's grid.
``--model NAME`` trains a built-in preset instead (e.g. fine-tuning ``mri_brain`` on a few real heads:
its shipped weights are the starting point). ``--compare-radiology`` then does the same with the MONAI
Label radiology sample app's ``segmentation`` model (``--conf labels``, ``use_pretrained_model
false``) through its own server, trained for ``--radiology-minutes`` of wall time. Prints one JSON summary.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.radiology import RADIOLOGY_APP  # noqa: E402
from lib.metrics.dice import dice  # noqa: E402
from tests.server import Server, slicer_client_module, wait_for_task  # noqa: E402

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd")


def cases(folder: Path) -> list[Path]:
    """Images of ``folder`` that have a final label."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.name.endswith(IMAGE_SUFFIXES) and (folder / "labels" / "final" / p.name).exists()
    )


def label_names(folder: Path, given: str | None, sample: list[Path]) -> dict[str, int]:
    """Label names -> values: ``given`` (a,b,c), ``labels.json`` ({name: value}), MSD ``dataset.json``
    ({"labels": {value: name}}), else ``label_<v>`` for every value in ``sample``'s labels."""
    if given:
        return {n.strip(): i for i, n in enumerate(given.split(","), start=1)}
    if (folder / "labels.json").exists():
        return {str(k): int(v) for k, v in json.loads((folder / "labels.json").read_text()).items()}
    if (folder / "dataset.json").exists():
        labels = json.loads((folder / "dataset.json").read_text())["labels"]
        return {str(name): int(v) for v, name in labels.items() if int(v) > 0}
    top = max(int(np.asarray(nib.load(folder / "labels" / "final" / p.name).dataobj).max()) for p in sample)
    return {f"label_{v}": v for v in range(1, top + 1)}


def make_studies(root: Path, train: list[Path], test: list[Path]) -> Path:
    studies = root / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    for p in train + test:
        shutil.copy(p, studies / p.name)
    for p in train:
        shutil.copy(p.parent / "labels" / "final" / p.name, studies / "labels" / "final" / p.name)
    return studies


def image_id(path: Path) -> str:
    name = path.name
    return next(name[: -len(s)] for s in IMAGE_SUFFIXES if name.endswith(s))


def score(client, model: str, test: list[Path], labels: dict[str, int], tmp: Path) -> dict:
    """Infer every test case through the server; per-case, per-label Dice and latency."""
    if not test:
        return {}
    per_case, latency = {}, []
    for p in test:
        start = time.perf_counter()
        path, _ = client.infer(model, image_id(p), {})
        latency.append(time.perf_counter() - start)
        pred = np.asarray(nib.load(path).dataobj)
        truth = np.asarray(nib.load(p.parent / "labels" / "final" / p.name).dataobj)
        per_case[p.name] = {n: dice(pred == v, truth == v) for n, v in labels.items()}
        Path(path).unlink(missing_ok=True)
    per_label = {n: statistics.mean(c[n] for c in per_case.values()) for n in labels}
    return {
        "per_label_dice": {n: round(d, 4) for n, d in per_label.items()},
        "mean_dice": round(statistics.mean(per_label.values()), 4),
        "per_case_mean_dice": {k: round(statistics.mean(v.values()), 4) for k, v in per_case.items()},
        "infer_seconds_median": round(statistics.median(latency), 2),
        "infer_seconds_max": round(max(latency), 2),
    }


def run_ours(
    studies: Path, tmp: Path, labels: dict[str, int], options: dict, test: list[Path], model: str
) -> dict:
    conf = {"models": model} if model != "own" else {"models": "own", "labels": ",".join(labels)}
    server = Server(studies, tmp / "model", tmp / "server.log", conf=conf)
    try:
        client = slicer_client_module().MONAILabelClient(server.url, tmpdir=str(tmp))
        start = time.perf_counter()
        client.train_start(model, options)
        task = wait_for_task(server.url, timeout=4 * 3600)
        train_s = time.perf_counter() - start
        info = client.info()
        stats = info["train_stats"][model]
        if task.get("status") != "DONE" or not stats.get("published_version"):
            raise RuntimeError(f"training failed: {task.get('status')}\n{server.tail()}")
        result = score(client, model, test, labels, tmp)
        return {
            "train_seconds": round(train_s, 1),
            "epochs": stats.get("total_epochs"),
            "best_epoch": stats.get("best_epoch"),
            "best_val_dice": stats.get("best_dice"),
            "published_version": stats.get("published_version"),
            "val_dice_curve": [
                [e["epoch"], e["val_mean_dice"]]
                for e in stats.get("epochs", [])
                if e.get("val_mean_dice") is not None
            ],
            "stopped_early": stats.get("stopped_early"),
            "diagnostics": [d.get("code") for d in stats.get("diagnostics", [])],
            "pretrained": stats.get("pretrained"),
            "split": {k: len(v) for k, v in (stats.get("split") or {}).items()},
            "plan": info["models"][model]["plan"],
            "train_options": options,
            **result,
        }
    finally:
        server.stop()


def run_radiology(studies: Path, tmp: Path, labels: dict[str, int], minutes: float, test: list[Path]) -> dict:
    """The radiology app's ``segmentation`` model from scratch on the same studies, trained for
    ``minutes`` of wall time (then stopped), scored the same way."""
    app = shutil.copytree(RADIOLOGY_APP, tmp / "radiology-app", ignore=shutil.ignore_patterns("model"))
    own = tmp / "radiology-studies"
    shutil.copytree(studies, own, ignore=shutil.ignore_patterns("datastore_v2.json", ".lock"))
    conf = {"models": "segmentation", "labels": json.dumps(labels), "use_pretrained_model": "false"}
    env = {"MLFLOW_ALLOW_FILE_STORE": "true"}
    server = Server(own, tmp / "radiology-model", tmp / "radiology.log", conf=conf, app=str(app), env=env)
    try:
        client = slicer_client_module().MONAILabelClient(server.url, tmpdir=str(tmp))
        start = time.perf_counter()
        client.train_start("segmentation", {"max_epochs": 1000, "val_split": 0.2})
        deadline = start + minutes * 60
        while time.perf_counter() < deadline:
            if requests.get(f"{server.url}/train/", timeout=30).json().get("status") not in (
                "RUNNING",
                "SUBMITTED",
            ):
                break
            time.sleep(10)
        requests.delete(f"{server.url}/train/", timeout=60)
        wait_for_task(server.url, timeout=600)
        train_s = time.perf_counter() - start
        stats = client.info()["train_stats"].get("segmentation", {})
        result = score(client, "segmentation", test, labels, tmp)
        return {
            "train_seconds": round(train_s, 1),
            "epochs": stats.get("total_epochs") or stats.get("epoch"),
            "best_val_dice": stats.get("best_metric"),
            **result,
        }
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--train", type=int, required=True, help="labelled cases to train (and validate) on")
    parser.add_argument("--test", type=int, required=True, help="unseen cases to segment and score")
    parser.add_argument(
        "--model", default="own", help="a built-in preset to train instead of a declared model"
    )
    parser.add_argument("--labels", help="label names in value order (a,b,c); default: from the folder")
    parser.add_argument("--seed", type=int, default=0, help="case shuffle")
    parser.add_argument("--option", action="append", default=[], help="train option key=value (repeatable)")
    parser.add_argument("--work", type=Path, help="keep studies, models and logs in this new folder")
    parser.add_argument("--compare-radiology", action="store_true")
    parser.add_argument("--radiology-minutes", type=float, default=45.0)
    args = parser.parse_args()
    found = cases(args.folder)
    if len(found) < args.train + args.test:
        parser.error(f"{args.folder} has {len(found)} labelled cases; need {args.train + args.test}")
    random.Random(args.seed).shuffle(found)
    train, test = found[: args.train], found[args.train : args.train + args.test]
    labels = label_names(args.folder, args.labels, train[:3])
    options = dict(o.split("=", 1) for o in args.option)
    if args.work:
        args.work.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="own-task-") as tmp_name:
        tmp = args.work or Path(tmp_name)
        studies = make_studies(tmp, train, test)
        summary = {
            "bench": "own_task",
            "date": datetime.date.today().isoformat(),
            "folder": args.folder.name,
            "train_cases": [p.name for p in train],
            "test_cases": [p.name for p in test],
            "labels": labels,
            "model": args.model,
            "ours": run_ours(studies, tmp, labels, options, test, args.model),
        }
        if args.compare_radiology:
            summary["radiology_segmentation"] = run_radiology(
                studies, tmp, labels, args.radiology_minutes, test
            )
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
