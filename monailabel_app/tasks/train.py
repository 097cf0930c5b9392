"""Segmentation train task: the ``lib`` training recipe behind MONAI Label's /train."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from typing import Any

import torch
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask

from lib.io.atomic import atomic_path
from lib.planning.presets import ModelPreset
from lib.training.config import TrainConfig, info_options
from lib.training.distributed import rank_and_world, run_distributed
from lib.training.model_store import ModelStore
from lib.training.recipe import run_training
from lib.training.result import EpochStats, TrainResult

logger = logging.getLogger(__name__)


def write_json_atomic(path: str, data: Any) -> None:
    """Write JSON beside ``path`` and rename into place."""
    with atomic_path(path, suffix=".json") as tmp, open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)


def parse_options(request: dict[str, Any]) -> TrainConfig:
    """The request's train options (strings accepted) as a validated TrainConfig; ``ValueError`` names
    the offending option."""
    return TrainConfig.from_request(request)


class SegmentationTrain(TrainTask):
    """Train one preset on the datastore's final labels and publish a new model version."""

    def __init__(self, preset: ModelPreset, store: ModelStore, default_checkpoint: str) -> None:
        super().__init__(f"Train {preset.name}: {preset.description}")
        self.preset = preset
        self.store = store
        self.default_checkpoint = default_checkpoint

    @property
    def stats_file(self) -> str:
        return str(self.store.root / "train_stats.json")

    def config(self) -> dict[str, Any]:
        return info_options()

    def stats(self) -> dict[str, Any]:
        try:
            with open(self.stats_file) as fh:
                return json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _record(self, status: str, config: TrainConfig, result: TrainResult | None, **extra: Any) -> None:
        stats = {
            "status": status,
            "model": self.preset.name,
            "config": asdict(config),
            "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
            **extra,
        }
        if result is not None:
            stats.update(result.summary())
            stats["total_epochs"] = len(result.epochs)
        write_json_atomic(self.stats_file, stats)

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        config = parse_options(request)
        items = datastore.datalist()
        if not items:
            raise ValueError("no images with final labels in the datastore")
        self.store.root.mkdir(parents=True, exist_ok=True)
        latest = self.store.latest()
        init = (str(latest[1]) if latest else self.default_checkpoint) if config.pretrained else None
        if init and not os.path.exists(init):
            init = None
        self._record("running", config, None)
        if config.multi_gpu:
            world = torch.cuda.device_count() if torch.cuda.is_available() else config.num_processes
            logger.info("distributed training on %d processes", world)
            run_distributed(_distributed_entry, world, (self, items, config, init))
        else:
            self.run(items, config, init)
        stats = self.stats()
        return {
            k: stats.get(k) for k in ("model", "published_version", "best_dice", "best_epoch", "total_epochs")
        }

    def run(self, items: list[dict], config: TrainConfig, init: str | None) -> None:
        """One training (or one DDP rank of it); rank 0 records the stats."""

        def on_epoch(_: EpochStats, result: TrainResult) -> None:
            self._record("running", config, result)

        result, version, split = run_training(
            self.preset,
            items,
            config,
            work_dir=str(self.store.root / "train"),
            store=self.store,
            split_file=str(self.store.root / "split.json"),
            pretrained=init,
            on_epoch=on_epoch,
        )
        if rank_and_world()[0] == 0:
            split_names = {k: [os.path.basename(i["image"]) for i in v] for k, v in split.items()}
            self._record("finished", config, result, published_version=version, split=split_names)


def _distributed_entry(task: SegmentationTrain, items: list, config: TrainConfig, init: str | None) -> None:
    task.run(items, config, init)
