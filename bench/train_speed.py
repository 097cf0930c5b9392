"""Training throughput and time-to-Dice on the sample CT data, through the project's training recipe.

    python bench/train_speed.py [--target 0.90] [--budget-min 30] [--epochs 160] [--lr 1e-3]
                                [--batch-size 1] [--num-samples 1]
                                [--compare-radiology | --radiology-from SUMMARY.json]

Trains ct_organs from scratch (AdamW 1e-3, cosine over ``--epochs``, bf16 autocast where available;
steps of ``--batch-size`` images x ``--num-samples`` patches, by default the app's; the runs recorded
before 2026-12-02 used ``--num-samples 2``, the default then) on the sample
datastore's training split, validating every 5 epochs as the engine does (the served output against the
labels as annotated), and prints one JSON summary: patches per second (training steps only), seconds
per epoch, the validation curve (wall seconds, epoch, mean and spleen Dice) and the wall time at which
the mean and the spleen validation Dice first reached ``--target`` (null if they did not), and from
which the mean stayed there. Training runs its whole schedule (or until ``--budget-min``).

``--compare-radiology`` then trains the MONAI Label radiology sample app's ``segmentation_spleen``
from scratch through its own server on the same cases (our split's training cases to train, its
validation cases to validate: passed as ``train_ds``/``val_ds``; spleen-only labels; slabs thinner
than its 96 mm crop padded with air) and watches its per-epoch validation Dice in the server log until
it reaches ``--target`` or its budget runs out (just over four times our time to the spleen target, at
most ``--radiology-budget-min``); then the training is stopped. Its time-to-target is null when it did
not get there. ``spleen_time_to_dice`` compares both trainers' time to spleen validation Dice 0.5, 0.6,
0.7, 0.8 and ``--target``: ours / theirs, or an upper bound on it where theirs never got there.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from bench.radiology import MODEL as RADIOLOGY_MODEL  # noqa: E402
from bench.radiology import start_server, write_padded_image, write_spleen_label  # noqa: E402
from lib.data.datastore_folder import datastore_items  # noqa: E402
from lib.io.model_store import ModelStore  # noqa: E402
from lib.planning.presets import get_preset  # noqa: E402
from lib.training.config import TrainConfig  # noqa: E402
from lib.training.recipe import run_training  # noqa: E402
from lib.training.result import EpochStats, TrainResult  # noqa: E402

RATIO_THRESHOLDS = (0.5, 0.6, 0.7, 0.8)  # spleen val Dice levels compared besides --target
CROP_MM = 100.0  # the radiology trainer's 96-voxel crop at 1 mm, plus a margin
VAL_LINE = re.compile(r"Epoch\[(\d+)\] Metrics -- .*?val_mean_dice: ([0-9.]+)")  # its evaluator's log
ITER_LINE = re.compile(r"^(\S+ \S+) - INFO - Epoch: (\d+)/\d+, Iter: (\d+)/\d+ ", re.M)  # its trainer's log


def train_ours(args: argparse.Namespace, work: Path) -> tuple[dict, dict[str, list]]:
    """Our training from scratch, its whole schedule or until the budget runs out."""
    preset = get_preset("ct_organs")
    items = datastore_items(str(REPO / "sample-data" / "ct"))
    start = time.perf_counter()
    epoch_seconds: list[tuple[float, bool]] = []  # (seconds, validated)
    curve: list[list] = []  # [wall seconds, epoch, mean val Dice, spleen val Dice]

    def on_epoch(stats: EpochStats, _: TrainResult) -> None:
        epoch_seconds.append((stats.seconds, stats.val_mean_dice is not None))
        if stats.val_mean_dice is not None:
            wall = round(time.perf_counter() - start, 1)
            curve.append([wall, stats.epoch, stats.val_mean_dice, stats.val_dice["spleen"]])

    def should_stop() -> bool:
        return time.perf_counter() - start > args.budget_min * 60

    config = TrainConfig(
        max_epochs=args.epochs,
        max_minutes=0,  # the budget is --budget-min, through should_stop
        lr=args.lr,
        val_interval=5,
        early_stop_patience=0,
        train_batch_size=args.batch_size,
        num_samples=args.num_samples,
    )
    # the split is seeded, so it is the shipped model's split (same val/test cases)
    _, _, split, _ = run_training(
        preset,
        items,
        config,
        str(work / "train"),
        ModelStore(work / "store"),
        str(work / "split.json"),
        on_epoch=on_epoch,
        should_stop=should_stop,
    )
    patches_per_epoch = len(split["train"]) * args.num_samples
    train_seconds = [seconds for seconds, validated in epoch_seconds if not validated]
    return {
        "train_cases": len(split["train"]),
        "val_cases": len(split["val"]),
        "patch_size": list(preset.patch_size),
        "patches_per_second": patches_per_epoch / statistics.mean(train_seconds) if train_seconds else None,
        "seconds_per_epoch_median": statistics.median(s for s, _ in epoch_seconds) if epoch_seconds else None,
        "epochs_run": len(epoch_seconds),
        "best_val_dice": max((row[2] for row in curve), default=None),
        "seconds_to_target": time_to(curve, 2, args.target),
        "seconds_to_target_settled": time_to(curve, 2, args.target, settled=True),
        "seconds_to_spleen_target": time_to(curve, 3, args.target),
        "curve": curve,
    }, split


def radiology_datastore(split: dict[str, list], studies: Path) -> dict[str, list[dict]]:
    """The split's train and val cases as the radiology model's data (padded to its crop, spleen-only
    labels); returns its ``train_ds``/``val_ds`` request lists."""
    lists: dict[str, list[dict]] = {}
    for part in ("train", "val"):
        lists[part] = []
        for item in split[part]:
            name = Path(item["image"]).name
            image, label = studies / name, studies / "labels" / "final" / name
            pad = write_padded_image(Path(item["image"]), image, CROP_MM)
            write_spleen_label(Path(item["label"]), label, pad)
            lists[part].append({"image": str(image), "label": str(label)})
    return lists


def train_radiology(split: dict[str, list], work: Path, target: float, budget_s: float) -> dict:
    """The radiology app's trainer on the same cases, watched through its log (see the module doc)."""
    lists = radiology_datastore(split, work / "radiology-studies")
    server = start_server(work / "radiology-studies", work)
    curve: list[list] = []
    try:
        start = time.perf_counter()
        body = {"max_epochs": 10000, "train_ds": lists["train"], "val_ds": lists["val"]}
        requests.post(f"{server.url}/train/{RADIOLOGY_MODEL}", json=body, timeout=60).raise_for_status()
        while time.perf_counter() - start < budget_s and not (curve and curve[-1][1] >= target):
            time.sleep(2)
            found = VAL_LINE.findall(server.log.read_text())
            wall = round(time.perf_counter() - start, 1)
            curve += [[wall, float(dice), int(epoch)] for epoch, dice in found[len(curve) :]]
            if requests.get(f"{server.url}/train/", timeout=30).json().get("status") != "RUNNING":
                raise RuntimeError(f"radiology training ended early:\n{server.tail()}")
        elapsed = time.perf_counter() - start
        requests.delete(f"{server.url}/train/", timeout=60)
    finally:
        server.stop()
    return {
        "train_cases": len(lists["train"]),
        "val_cases": len(lists["val"]),
        "epochs_validated": len(curve),
        "best_val_dice": max((dice for _, dice, _ in curve), default=None),
        "seconds_to_target": time_to(curve, 1, target),
        "seconds_run": round(elapsed, 1),
        **radiology_throughput(server.log.read_text()),
        "curve": curve,
    }


def radiology_throughput(log: str) -> dict[str, float | None]:
    """The radiology trainer's training speed from its per-iteration log lines (one 96^3 crop per
    iteration at its default batch size 1): an epoch of n iterations lasts (last - first line) * n / (n-1),
    validation excluded; medians over the epochs."""
    stamps: dict[int, list[tuple[int, datetime.datetime]]] = {}
    for when, epoch, iteration in ITER_LINE.findall(log):
        stamps.setdefault(int(epoch), []).append((int(iteration), datetime.datetime.fromisoformat(when)))
    epochs = [  # (iterations, seconds) of the epochs logged from their first iteration on
        (len(lines), (lines[-1][1] - lines[0][1]).total_seconds() * len(lines) / (len(lines) - 1))
        for lines in stamps.values()
        if len(lines) > 1 and lines[0][0] == 1
    ]
    if not epochs:
        return {"train_seconds_per_epoch_median": None, "patches_per_second": None}
    seconds, iterations = statistics.median(t for _, t in epochs), max(n for n, _ in epochs)
    return {"train_seconds_per_epoch_median": seconds, "patches_per_second": iterations / seconds}


def time_to(curve: list[list], column: int, threshold: float, settled: bool = False) -> float | None:
    """Wall seconds of the first validation whose ``column`` reached ``threshold`` or, ``settled``, of
    the first one from which every later validation of the run stayed at or above it (curve rows start
    with the wall seconds); None if there is none."""
    if not settled:
        return next((row[0] for row in curve if row[column] >= threshold), None)
    below = [i for i, row in enumerate(curve) if row[column] < threshold]
    first = below[-1] + 1 if below else 0
    return curve[first][0] if first < len(curve) else None


def spleen_time_ratios(ours: dict, radiology: dict, thresholds: tuple[float, ...]) -> dict[str, dict]:
    """Per spleen-Dice threshold, for the ``first`` time each trainer reached it and for the time it
    ``settled`` at or above it: both times and ours / theirs. Where theirs did not get there, the
    ratio is an upper bound (``ratio_at_most``): against their whole run for ``first``, against their
    last validation below the threshold for ``settled``."""
    out: dict[str, dict] = {}
    for threshold in thresholds:
        out[f"{threshold:.2f}"] = {}
        for mode in ("first", "settled"):
            mine = time_to(ours["curve"], 3, threshold, mode == "settled")
            theirs = time_to(radiology["curve"], 1, threshold, mode == "settled")
            row: dict = {"ours_seconds": mine, "radiology_seconds": theirs}
            if mine is not None and theirs is not None:
                row["ratio"] = mine / theirs
            elif mine is not None:  # unsettled means their last validation is below the threshold
                bound = radiology["curve"][-1][0] if mode == "settled" else radiology["seconds_run"]
                row["ratio_at_most"] = mine / bound
            out[f"{threshold:.2f}"][mode] = row
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", type=float, default=0.90)
    parser.add_argument("--budget-min", type=float, default=30.0)
    parser.add_argument("--epochs", type=int, default=160)
    parser.add_argument("--compare-radiology", action="store_true")
    parser.add_argument("--radiology-budget-min", type=float, default=60.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    defaults = TrainConfig()
    parser.add_argument("--batch-size", type=int, default=defaults.train_batch_size, help="images per step")
    parser.add_argument(
        "--num-samples", type=int, default=defaults.num_samples, help="patches per image and step"
    )
    parser.add_argument(
        "--radiology-from",
        type=Path,
        help="compare against the radiology arm of an earlier --compare-radiology summary (JSON) "
        "instead of training it again (same machine, data and split)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="train-speed-"))
    summary: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "target_dice": args.target,
        "lr": args.lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "num_samples": args.num_samples,
    }
    summary["ours"], split = train_ours(args, work)
    if args.radiology_from:
        summary["radiology"] = json.loads(args.radiology_from.read_text())["radiology"]
        summary["radiology"]["from"] = str(args.radiology_from)
    elif args.compare_radiology:
        ours = summary["ours"]["seconds_to_spleen_target"]
        cap = args.radiology_budget_min * 60
        budget = min(4.05 * ours, cap) if ours else cap  # 4x ours: enough to show a ratio <= 1/4
        summary["radiology"] = train_radiology(split, work, args.target, budget)
    if "radiology" in summary:
        thresholds = (*RATIO_THRESHOLDS, args.target)
        summary["spleen_time_to_dice"] = spleen_time_ratios(summary["ours"], summary["radiology"], thresholds)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
