"""One training run end to end: split, data, network, engine, publish. Used by the app and the CLI."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict

import torch
from monai.utils import set_determinism

from lib.data.loaders import training_loader, validation_cases
from lib.data.split import PatientSplit
from lib.interactive.training import ClickRounds
from lib.io.model_store import ModelStore
from lib.networks.pretrained import load_pretrained
from lib.planning.presets import ModelPreset, build_network, checkpoint_for
from lib.training.config import TrainConfig
from lib.training.distributed import rank_and_world, shard
from lib.training.engine import Trainer
from lib.training.result import EpochStats, TrainResult

logger = logging.getLogger(__name__)

FROM_SCRATCH = "from scratch (random initialisation)"


def run_training(
    preset: ModelPreset,
    items: Sequence[dict],
    config: TrainConfig,
    work_dir: str,
    store: ModelStore,
    split_file: str,
    test_fraction: float = 0.1,
    pretrained: str | dict | None = None,
    seed: int = 0,
    on_epoch: Callable[[EpochStats, TrainResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    train_also: Sequence[dict] = (),
) -> tuple[TrainResult, int | None, dict[str, list], str]:
    """Train ``preset`` on labelled ``items`` ({"image", "label"} paths) and publish the best weights.

    The patient-level split is read from / persisted to ``split_file`` so retraining never moves a
    val/test case into training; ``train_also`` (e.g. cases synthesised from a template,
    :mod:`lib.synthesize`) are added to the training cases only, outside the split. ``pretrained``
    (path or checkpoint) is loaded partially (output channels matched by label name) and its report
    logged; weights widened to more inputs (a twin started from its segmentation model) are not a
    candidate for publishing. Inside a DDP process
    group each rank trains on its shard of the training cases and only rank 0 publishes. Returns
    (result, published version or None when cancelled or not rank 0, split, the starting weights'
    load report or ``FROM_SCRATCH``).
    """
    rank, world_size = rank_and_world()
    set_determinism(seed + rank)
    split = PatientSplit(
        split_file, val_fraction=config.val_split, test_fraction=test_fraction, seed=seed
    ).assign(list(items))
    split["train"] = split["train"] + list(train_also)
    if not split["train"]:
        raise ValueError("no training cases: label more images first")
    logger.info("split: %d train, %d val, %d test", *(len(split[k]) for k in ("train", "val", "test")))
    network = build_network(preset)
    report, widened = FROM_SCRATCH, False
    if pretrained is not None:
        loaded = load_pretrained(network, pretrained, labels=preset.labels)
        report, widened = str(loaded), bool(loaded.widened)
    logger.info("starting weights: %s", report)
    train_items = split["train"]
    if world_size > 1:
        train_items = shard(train_items, rank, world_size)
        network = torch.nn.parallel.DistributedDataParallel(network)
    trainer = Trainer(
        network,
        config,
        training_loader(
            train_items,
            preset,
            batch_size=config.train_batch_size,
            num_samples=config.num_samples,
            synthesis_prob=config.synthesis,
        ),
        validation_cases(split["val"], preset),
        preset.labels,
        preset.patch_size,
        os.path.join(work_dir, "tensorboard"),
        on_epoch=on_epoch if rank == 0 else None,
        should_stop=should_stop,
        is_main=rank == 0,
        prepare_batch=ClickRounds(preset.labels, seed=seed + rank) if preset.interactive else None,
        start_is_candidate=not widened,  # a widened start is the segmentation model, not yet a twin
    )
    result = trainer.fit()
    if result.cancelled or result.best_state is None or rank != 0:
        return result, None, split, report
    meta = {
        "config": asdict(config),
        "best_epoch": result.best_epoch,
        "best_dice": result.best_dice,
        "notes": result.notes,
        "train_cases": [os.path.basename(i["image"]) for i in split["train"]],
        "val_cases": [os.path.basename(i["image"]) for i in split["val"]],
        "pretrained": report,
    }
    version = store.publish(checkpoint_for(preset, result.best_state, meta))
    logger.info(
        "published %s version %d (best val dice %.4f at epoch %d)",
        preset.name,
        version,
        result.best_dice,
        result.best_epoch,
    )
    return result, version, split, report
