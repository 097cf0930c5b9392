"""Training throughput and time-to-Dice on the sample CT data, through the project's training recipe.

    python bench/train_speed.py [--target 0.90] [--budget-min 30] [--epochs 120]

Trains ct_organs from scratch (the shipped recipe: AdamW 1e-3, cosine, bf16 autocast where available,
4 patches per image) on the sample datastore's training split, validating every 5 epochs, and prints
one JSON summary: patches per second (training steps only), seconds per epoch, and the wall time at
which the mean validation Dice first reached ``--target`` (null if the budget ran out first).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lib.planning.presets import get_preset  # noqa: E402
from lib.train import datastore_items  # noqa: E402
from lib.training.engine import EpochStats, TrainConfig, TrainResult  # noqa: E402
from lib.training.model_store import ModelStore  # noqa: E402
from lib.training.recipe import run_training  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", type=float, default=0.90)
    parser.add_argument("--budget-min", type=float, default=30.0)
    parser.add_argument("--epochs", type=int, default=120)
    args = parser.parse_args()
    preset = get_preset("ct_organs")
    items = datastore_items(str(REPO / "sample-data" / "ct"))
    work = Path(tempfile.mkdtemp(prefix="train-speed-"))
    num_samples, start = 4, time.perf_counter()
    log: list[dict] = []
    reached: list[float] = []

    def on_epoch(stats: EpochStats, _: TrainResult) -> None:
        log.append({"epoch": stats.epoch, "seconds": stats.seconds, "val_dice": stats.val_mean_dice})
        if stats.val_mean_dice is not None and stats.val_mean_dice >= args.target and not reached:
            reached.append(time.perf_counter() - start)

    def should_stop() -> bool:
        return bool(reached) or time.perf_counter() - start > args.budget_min * 60

    config = TrainConfig(max_epochs=args.epochs, lr=1e-3, val_interval=5, early_stop_patience=args.epochs)
    # the split is seeded, so it is the shipped model's split (same val/test cases)
    _, _, split = run_training(
        preset,
        items,
        config,
        str(work / "train"),
        ModelStore(work / "store"),
        str(work / "split.json"),
        num_samples=num_samples,
        on_epoch=on_epoch,
        should_stop=should_stop,
    )
    patches_per_epoch = len(split["train"]) * num_samples
    train_seconds = [e["seconds"] for e in log if e["val_dice"] is None]
    print(
        json.dumps(
            {
                "train_cases": len(split["train"]),
                "patch_size": list(preset.patch_size),
                "patches_per_second": patches_per_epoch / (sum(train_seconds) / len(train_seconds))
                if train_seconds
                else None,
                "seconds_per_epoch_median": sorted(e["seconds"] for e in log)[len(log) // 2] if log else None,
                "target_dice": args.target,
                "seconds_to_target": reached[0] if reached else None,
                "epochs_run": len(log),
                "best_val_dice": max((e["val_dice"] for e in log if e["val_dice"] is not None), default=None),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
