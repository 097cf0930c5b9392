"""Segmentation train task: the ``lib`` training recipe behind MONAI Label's /train."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask

from lib.io.atomic import write_json_atomic
from lib.io.model_store import ModelStore
from lib.planning.fingerprint import fingerprint
from lib.planning.plan_store import PlanStore
from lib.planning.planner import plan_model
from lib.planning.presets import ModelPreset, can_warm_start, plan_summary
from lib.training.config import TrainConfig
from lib.training.distributed import rank_and_world, run_distributed
from lib.training.recipe import run_training
from lib.training.result import EpochStats, TrainResult

logger = logging.getLogger(__name__)


# A training yields the CPU to inference requests on the same machine (bench/serve_while_training.py:
# on the 2-core CPU a training at niceness 0 made an auto-segmentation 1.97x slower, at 10 1.73x, at 19
# not measurably slower). Niceness only weighs against processes of the same session (autogroup) where
# the kernel groups them, so other programs see the training as before.
TRAIN_NICENESS = 19


def yield_cpu_to_serving() -> None:
    """Give every thread of this (training) process niceness ``TRAIN_NICENESS``; threads it starts
    later inherit it (Linux applies nice per thread). Never in the server process itself."""
    if "monailabel.app" in sys.modules or not hasattr(os, "setpriority"):  # in the server; Windows
        return
    tasks = "/proc/self/task"
    for tid in [int(t) for t in os.listdir(tasks)] if os.path.isdir(tasks) else [0]:
        os.setpriority(os.PRIO_PROCESS, tid, max(TRAIN_NICENESS, os.getpriority(os.PRIO_PROCESS, tid)))


def parse_options(request: dict[str, Any]) -> TrainConfig:
    """The request's train options (strings accepted) as a validated TrainConfig; ``ValueError`` names
    the offending option."""
    return TrainConfig.from_mapping(request)


class SegmentationTrain(TrainTask):
    """Train one model on the datastore's final labels and publish a new model version.

    A user model is planned from its labelled images at its first training (or when the request says
    ``replan``); the plan is kept as ``plan.json`` and stamped into every published version. Weights
    start from the newest version (``pretrained``), else the shipped checkpoint: the preset's own, or
    for a user model the first of ``warm_start`` ((shipped plan, checkpoint) pairs) whose modality and
    network match its plan (:func:`~lib.planning.presets.can_warm_start`), loaded partially with the
    report in the log and in ``train_stats``; without one it trains from scratch and says so. An
    interactive twin without a version or shipped checkpoint of its own starts from its segmentation
    model (``base``: that model's store and shipped checkpoint), its guidance inputs at zero.
    """

    def __init__(
        self,
        plans: PlanStore,
        store: ModelStore,
        default_checkpoint: str | None,
        warm_start: Sequence[tuple[ModelPreset, str | None]] = (),
        base: tuple[ModelStore, str | None] | None = None,
    ) -> None:
        definition = plans.definition
        what = definition.description or ", ".join(definition.labels)
        super().__init__(f"Train {plans.name}: {what}" + (" (interactive)" if plans.interactive else ""))
        self.name = plans.name
        self.plans = plans
        self.store = store
        self.default_checkpoint = default_checkpoint
        self.warm_start = list(warm_start)
        self.base = base

    @property
    def stats_file(self) -> str:
        return str(self.store.root / "train_stats.json")

    def config(self) -> dict[str, Any]:
        return TrainConfig.info()

    def stats(self) -> dict[str, Any]:
        try:
            with open(self.stats_file) as fh:
                return json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _record(self, status: str, config: TrainConfig, result: TrainResult | None, **extra: Any) -> None:
        stats = {
            "status": status,
            "model": self.name,
            "config": asdict(config),
            "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
            **extra,
        }
        if result is not None:
            stats.update(result.summary())
            stats["total_epochs"] = len(result.epochs)
        write_json_atomic(self.stats_file, stats)

    def plan(self, items: list[dict], replan: bool) -> ModelPreset:
        """The plan to train with: the current one, or (user model, first training or ``replan``) one
        derived from the labelled ``items`` and saved."""
        plan = self.plans.current()
        if plan is None or (replan and self.plans.definition.planned_from_data):
            definition = self.plans.definition
            plan = plan_model(
                definition.name,
                definition.labels,
                fingerprint(items, len(definition.labels)),
                modality=definition.modality,
                description=definition.description,
                n4=definition.n4,
            )
            self.plans.save(plan)
            logger.info("%s: planned from %d labelled images: %s", self.name, len(items), plan_summary(plan))
            plan = self.plans.current()
        return plan

    def initial_weights(self, plan: ModelPreset) -> str | None:
        """Newest published version, else the shipped checkpoint for this plan, else (a twin) its
        segmentation model's, else a matching shipped model (None if there is none)."""
        stores = [(self.store, self.default_checkpoint), *([self.base] if self.base else [])]
        for store, default in stores:
            latest = store.latest()
            if latest:
                return str(latest[1])
            if default and os.path.exists(default):
                return default
        for shipped, path in self.warm_start:
            if path and os.path.exists(path) and can_warm_start(plan, shipped):
                return path
        return None

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        """Train; a failure is recorded in the stats (``status: failed``, ``error``: the reason, the
        epochs this run completed) and logged with its cause, then re-raised."""
        before = self.stats()
        try:
            return self._train(request, datastore)
        except Exception as e:
            reason = f"{type(e).__name__}: {e}"
            logger.error("%s: training failed: %s", self.name, reason)
            progress = self.stats()
            progress = progress if progress != before else {}  # only what this run recorded
            stats = {**progress, "status": "failed", "model": self.name, "error": reason}
            write_json_atomic(self.stats_file, {**stats, "updated": time.strftime("%Y-%m-%d %H:%M:%S")})
            raise

    def _train(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        config = parse_options(request)
        items = datastore.datalist()
        if not items:
            raise ValueError("no images with final labels in the datastore")
        self.store.root.mkdir(parents=True, exist_ok=True)
        plan = self.plan(items, config.replan)
        init = self.initial_weights(plan) if config.pretrained else None
        self._record("running", config, None, plan=plan_summary(plan))
        if config.multi_gpu:
            world = torch.cuda.device_count() if torch.cuda.is_available() else config.num_processes
            logger.info("distributed training on %d processes", world)
            run_distributed(_distributed_entry, world, (self, plan, items, config, init))
        else:
            self.run(plan, items, config, init)
        stats = self.stats()
        return {
            k: stats.get(k) for k in ("model", "published_version", "best_dice", "best_epoch", "total_epochs")
        }

    def run(self, plan: ModelPreset, items: list[dict], config: TrainConfig, init: str | None) -> None:
        """One training (or one DDP rank of it); rank 0 records the stats."""
        yield_cpu_to_serving()
        summary = plan_summary(plan)

        def on_epoch(_: EpochStats, result: TrainResult) -> None:
            self._record("running", config, result, plan=summary)

        result, version, split, report = run_training(
            plan,
            items,
            config,
            work_dir=str(self.store.root / "train"),
            store=self.store,
            split_file=str(self.store.root / "split.json"),
            test_fraction=0.0,  # the server scores no test split: every labelled case trains or validates
            pretrained=init,
            on_epoch=on_epoch,
        )
        if rank_and_world()[0] == 0:
            split_names = {k: [os.path.basename(i["image"]) for i in v] for k, v in split.items()}
            self._record(
                "finished",
                config,
                result,
                published_version=version,
                split=split_names,
                plan=summary,
                pretrained={"checkpoint": init and os.path.basename(init), "report": report},
            )


def _distributed_entry(
    task: SegmentationTrain, plan: ModelPreset, items: list, config: TrainConfig, init: str | None
) -> None:
    task.run(plan, items, config, init)
