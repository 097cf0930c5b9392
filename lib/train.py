"""Train a preset on a folder datastore and (optionally) export the shipped default checkpoint.

    python -m lib.train --preset ct_organs --data sample-data/ct --model-dir runs/ct_organs \
        --max-epochs 160 --max-minutes 0 --export monailabel_app/pretrained/ct_organs.pt

``--interactive`` trains the preset's click-guided twin instead (``<preset>_deepedit``: simulated click
rounds, :mod:`lib.interactive.training`), best started from the preset's checkpoint with ``--init``
(its guidance inputs start at zero); its held-out table scores the auto mode (no clicks).

The training options and their defaults are the server's (``lib.training.config``), spelled with
dashes (``--max-epochs``, ``--train-batch-size``, ...); ``--epochs`` and ``--batch-size`` are kept as
older spellings.
Images are ``<data>/*.nii.gz`` with labels in ``<data>/labels/final/`` (a MONAI Label datastore).
After training, every val/test case (never trained on) is segmented at full resolution on its own
grid and scored with ``lib.metrics``; the JSON summary is printed. The published version is the
best on validation; the weights of the last epoch are also written, as ``<model-dir>/last.pt``.
``--evaluate CHECKPOINT`` skips training and prints that table for any checkpoint (e.g. the shipped
one, or ``last.pt``) on the persisted split.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace

import numpy as np
import torch

from lib.data.datastore_folder import datastore_items
from lib.data.split import PatientSplit
from lib.hardware import bf16_supported
from lib.inference.predictor import Predictor
from lib.io.model_store import ModelStore, save_atomic
from lib.io.validate import read_volume
from lib.metrics.table import SegmentationMetrics, json_safe
from lib.planning.presets import (
    PRESETS,
    ModelPreset,
    checkpoint_for,
    get_preset,
    interactive_twin,
    load_model,
)
from lib.training.config import TrainConfig
from lib.training.recipe import run_training


def evaluate_held_out(preset: ModelPreset, checkpoint: str, items: list[dict[str, str]]) -> dict:
    """Segment ``items`` with ``checkpoint`` (on the working grid it was trained on) through the
    inference path and score them."""
    preset, network, _ = load_model(checkpoint, preset)
    predictor = Predictor(preset, network, backend="bf16" if bf16_supported() else "fp32")
    metrics = SegmentationMetrics(preset.labels)
    for item in items:
        truth, affine = read_volume(item["label"])  # the reader inference uses: same array layout
        spacing = np.linalg.norm(affine[: truth.ndim, : truth.ndim], axis=0)
        metrics.add(
            os.path.basename(item["image"]), predictor(item["image"]).label, truth.astype(np.int64), spacing
        )
    return json_safe(metrics.to_dict())


_OLD_SPELLINGS = {"max_epochs": "--epochs", "train_batch_size": "--batch-size"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="ct_organs", choices=sorted(PRESETS))
    parser.add_argument("--data", required=True, help="folder datastore with labels/final")
    parser.add_argument("--model-dir", required=True, help="model store folder (versions, split, logs)")
    parser.add_argument("--spacing", type=float, nargs="+", help="override the preset's working spacing (mm)")
    parser.add_argument("--patch", type=int, nargs="+", help="override the preset's patch size (voxels)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    parser.add_argument(
        "--train-also", help="another folder datastore whose cases only train (e.g. from lib.synthesize)"
    )
    parser.add_argument("--init", help="start from this checkpoint (partial loading, report logged)")
    parser.add_argument("--interactive", action="store_true", help="train the preset's click-guided twin")
    parser.add_argument("--export", help="copy the published checkpoint here (fp16 weights)")
    parser.add_argument(
        "--evaluate",
        metavar="CHECKPOINT",
        help="no training: score CHECKPOINT on the val/test cases of --model-dir's persisted split",
    )
    TrainConfig.add_arguments(parser, "training options (as the server's /train takes them)", _OLD_SPELLINGS)
    args = parser.parse_args(argv)
    try:
        config = TrainConfig.from_arguments(args)
    except ValueError as e:
        parser.error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)

    preset = get_preset(args.preset)
    if args.interactive:
        preset = interactive_twin(preset)
    if args.spacing or args.patch:  # e.g. a coarse first stage before fine-tuning at the preset's grid
        preset = replace(
            preset,
            spacing=tuple(args.spacing or preset.spacing),
            patch_size=tuple(args.patch or preset.patch_size),
        )
    items = datastore_items(args.data)
    if not items:
        print(f"error: no labelled images in {args.data}", file=sys.stderr)
        return 1
    split_file = os.path.join(args.model_dir, "split.json")
    if args.evaluate:
        if not os.path.exists(split_file):
            print(f"error: no persisted split in {args.model_dir} (train there first)", file=sys.stderr)
            return 1
        split = PatientSplit(split_file).assign(items)
        held_out = evaluate_held_out(preset, args.evaluate, split["val"] + split["test"])
        print(json.dumps({"checkpoint": args.evaluate, "held_out": held_out}, indent=1, default=str))
        return 0
    store = ModelStore(args.model_dir)
    result, version, split, _ = run_training(
        preset,
        items,
        config,
        os.path.join(args.model_dir, "train"),
        store,
        split_file,
        pretrained=args.init,
        train_also=datastore_items(args.train_also) if args.train_also else (),
    )
    checkpoint = str(store.path(version))
    last = os.path.join(args.model_dir, "last.pt")
    if result.last_state is not None:  # the run's end, whatever validation chose (nnU-Net's final)
        save_atomic(checkpoint_for(preset, result.last_state, {"epoch": len(result.epochs) - 1}), last)
    held_out = split["val"] + split["test"]
    summary = {
        "train_cases": len(split["train"]),
        "last": last if result.last_state is not None else None,
        "version": version,
        "best_epoch": result.best_epoch,
        "best_val_dice": result.best_dice,  # served output vs the labels as annotated
        "held_out": evaluate_held_out(preset, checkpoint, held_out),
    }
    if args.export:
        shipped = torch.load(checkpoint, map_location="cpu", weights_only=True)
        # fp16 weights halve the shipped file; loading casts them back into the fp32 network
        shipped["state_dict"] = {
            k: v.half() if v.is_floating_point() else v for k, v in shipped["state_dict"].items()
        }
        # a shipped file names no case (file names may name patients): the case lists become counts
        meta = shipped.get("meta", {})
        for key in ("train_cases", "val_cases"):
            if isinstance(meta.get(key), list):
                meta[key] = len(meta[key])
        save_atomic(shipped, args.export)
    print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
