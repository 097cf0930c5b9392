"""The training engine: AMP, gradient accumulation and clipping, LR schedule, early stopping,
validation with per-label Dice/IoU, TensorBoard, prediction pictures and diagnostics."""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from monai.losses import DiceCELoss
from torch.utils.tensorboard import SummaryWriter

from lib.inference.geometry import restore_labels
from lib.inference.predictor import keep_largest_components, predict_logits
from lib.metrics.dice import dice
from lib.metrics.iou import iou
from lib.networks.onednn import onednn_convolutions
from lib.optim.optimizers import build_optimizer
from lib.optim.schedulers import build_scheduler, needs_metric, scheduler_step
from lib.training.amp import amp_dtype, autocast, grad_scaler
from lib.training.config import TrainConfig
from lib.training.diagnostics import diagnose
from lib.training.early_stopping import EarlyStopping
from lib.training.pictures import save_prediction_png
from lib.training.result import EpochStats, TrainResult, run_notes

logger = logging.getLogger(__name__)

VAL_SW_BATCH = 2  # sliding-window patches per forward pass in validation


def accumulate_step(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    network: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    accumulation_steps: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
) -> tuple[float, list[float]]:
    """One epoch of optimisation with gradient accumulation.

    Each loss is scaled by 1/N and the optimizer steps every N batches; a remainder of k < N batches at
    the end of the epoch is flushed with its losses scaled by 1/k, so every step averages the batches it
    saw. Returns (mean loss, gradient norms before clipping, one per optimizer step).
    """
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=False)
    batches = list(batches)
    losses, norms = [], []
    optimizer.zero_grad(set_to_none=True)
    for start in range(0, len(batches), accumulation_steps):
        group = batches[start : start + accumulation_steps]
        for x, y in group:
            with autocast(device, dtype):
                loss = loss_fn(network(x.to(device)), y.to(device))
            scaler.scale(loss / len(group)).backward()
            losses.append(float(loss.detach()))
        scaler.unscale_(optimizer)
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip else float("inf"))
        norms.append(float(norm))
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
    return (float(np.mean(losses)) if losses else float("nan")), norms


class _NullWriter:
    """Stands in for SummaryWriter on non-main ranks."""

    def add_scalar(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _is_out_of_memory(error: BaseException) -> bool:
    """True for torch's GPU out-of-memory error and a CPU allocator's failure."""
    text = str(error)
    return isinstance(error, torch.OutOfMemoryError) or (
        "can't allocate memory" in text or "not enough memory" in text
    )


def _from_main_rank(value: float, device: torch.device) -> float:
    """``value`` as rank 0 has it (under DDP every rank must take the same time-based decisions)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    tensor = torch.tensor(
        [value], dtype=torch.float64, device=device if dist.get_backend() == "nccl" else "cpu"
    )
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


class Trainer:
    """Train ``network`` on patch batches and validate on whole volumes as inference serves them.

    ``train_loader`` yields dicts with "image"/"label" tensors (B, 1, *patch) and has a length;
    ``val_cases`` are dicts as :func:`lib.data.loaders.validation_cases` builds them: "image"
    (1, *spatial) float MetaTensor and "label" (1, *spatial) integer tensor on the working grid,
    "reference" (the label on its own grid, integer array) and "reference_affine" (4x4).
    ``labels`` maps names to values 1..N. ``out_dir`` receives TensorBoard events and PNG panels.
    ``prepare_batch`` (network, image, label) -> image, when given, changes each training batch's image
    just before its step (an interactive twin's simulated click rounds,
    :class:`lib.interactive.training.ClickRounds`).
    ``on_epoch`` is called with (EpochStats, TrainResult) after every epoch; ``should_stop`` is polled
    between epochs for a cancellation request. Under DDP every rank validates (weights are identical,
    so scheduler and early-stopping decisions agree), time-based decisions are rank 0's, and only the
    main rank writes monitoring output.

    Model selection (:meth:`fit`): the starting weights are validated first and are the best until a
    trained epoch beats them, so a run never publishes a model worse on validation than the one it
    started from. A validation's selection score is the mean of its Dice and the previous trained
    validation's (one noisy case cannot crown a lucky epoch); a score counts as better when it exceeds
    the best by more than ``early_stop_delta``. Without validation cases the last epoch is kept.
    ``start_is_candidate`` False (a twin started from its segmentation model, whose weights ignore
    clicks) validates the starting weights for the record only; the best trained epoch is kept.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        config: TrainConfig,
        train_loader: Iterable[Mapping[str, torch.Tensor]],
        val_cases: list[Mapping[str, torch.Tensor]],
        labels: Mapping[str, int],
        roi_size: tuple[int, ...],
        out_dir: str,
        device: str | torch.device = "cpu",
        on_epoch: Callable[[EpochStats, TrainResult], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        is_main: bool = True,
        prepare_batch: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        start_is_candidate: bool = True,
    ) -> None:
        # 3-D: channels-last memory, which trains the U-Nets here faster on a CPU (133 -> 182 epochs in
        # the 12 minutes of bench/own_task.py); the weights and what they compute are unchanged. Not under
        # DDP: it must not change the parameters' layout after wrapping (gloo then aborts now and then)
        distributed = hasattr(network, "module")
        channels_last = len(roi_size) == 3 and not distributed
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        self.network = network.to(memory_format=self.memory_format)
        self.model = getattr(network, "module", network)  # unwrapped (DDP) for validation and weights
        self.is_main = is_main
        self.config = config
        self.train_loader = train_loader
        self.val_cases = val_cases
        self.labels = dict(labels)
        self.roi_size = roi_size
        self.out_dir = out_dir
        self.device = torch.device(device)
        self.on_epoch = on_epoch
        self.should_stop = should_stop or (lambda: False)
        self.prepare_batch = prepare_batch
        self.start_is_candidate = start_is_candidate
        self.loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
        steps_per_epoch = math.ceil(len(train_loader) / config.accumulation_steps)
        self.epochs = max(config.epochs_for(steps_per_epoch), config.warmup_epochs + 1)
        self.val_interval = config.val_interval_for(steps_per_epoch)
        self.optimizer = build_optimizer(config.optimizer, network.parameters(), config.lr)
        self.scheduler = build_scheduler(
            config.scheduler, self.optimizer, self.epochs, warmup_epochs=config.warmup_epochs
        )
        self.dtype = amp_dtype(self.device, config.amp)
        self.scaler = grad_scaler(self.device, self.dtype)

    def validate(self, epoch: int) -> tuple[float, dict[str, float], dict[str, float]]:
        """Mean val loss (working grid) and per-label mean Dice / IoU of what inference would serve
        (largest component per class, restored onto the reference label's grid) against the reference
        label; writes one PNG panel (``val_start.png`` for the starting weights, epoch -1)."""
        self.network.eval()
        backend = "bf16" if self.dtype == torch.bfloat16 else "fp32"
        losses, dices, ious = [], {k: [] for k in self.labels}, {k: [] for k in self.labels}
        for i, case in enumerate(self.val_cases):
            image = case["image"]
            logits = predict_logits(self.model, image.to(self.device), self.roi_size, backend, VAL_SW_BATCH)
            losses.append(float(self.loss_fn(logits[None], case["label"][None].to(self.device))))
            logits = logits.cpu()
            working = keep_largest_components(logits)  # suppresses the dropped components in logits
            truth = case["reference"]
            pred = restore_labels(
                logits,
                np.asarray(image.affine, np.float64),
                case["reference_affine"],
                truth.shape,
                label=working,
            )
            for name, value in self.labels.items():
                dices[name].append(dice(pred == value, truth == value))
                ious[name].append(iou(pred == value, truth == value))
            if i == 0 and self.is_main:
                save_prediction_png(
                    os.path.join(self.out_dir, "val_start.png" if epoch < 0 else f"val_epoch{epoch:04d}.png"),
                    np.asarray(image[0].cpu()),
                    np.asarray(case["label"][0].cpu()),
                    working,
                    self.labels,
                )
        mean = {k: float(np.mean(v)) for k, v in dices.items()}
        return float(np.mean(losses)), mean, {k: float(np.mean(v)) for k, v in ious.items()}

    def _batches(self, seen: list[int]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(image, label) batches of one epoch, adding their patch count to ``seen[0]``."""
        for batch in self.train_loader:
            seen[0] += len(batch["image"])
            image = batch["image"].to(memory_format=self.memory_format)
            if self.prepare_batch is not None:
                image = self.prepare_batch(self.network, image.to(self.device), batch["label"])
            yield image, batch["label"]

    def _keep_best(self, result: TrainResult, epoch: int, metric: float) -> None:
        result.best_epoch, result.best_dice = epoch, metric
        result.best_state = copy.deepcopy(self.model.state_dict())

    def fit(self) -> TrainResult:
        """Train up to the planned epochs or the time budget; returns the history and the selected
        weights (see the class docstring) with notes on what was kept. One-sample fp32 3-D
        convolutions run on oneDNN throughout (:mod:`lib.networks.onednn`)."""
        with onednn_convolutions(self.network):
            return self._fit()

    def _fit(self) -> TrainResult:
        cfg = self.config
        result = TrainResult(planned_epochs=self.epochs, val_interval=self.val_interval)
        budget = cfg.max_minutes * 60
        start = time.perf_counter()
        os.makedirs(self.out_dir, exist_ok=True)
        writer = SummaryWriter(log_dir=self.out_dir) if self.is_main else _NullWriter()
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_dice": [], "val_epoch": []}
        selector = EarlyStopping(cfg.early_stop_patience or None, cfg.early_stop_delta, mode="max")
        all_norms: list[float] = []
        train_seconds: list[float] = []
        val_seconds, previous = 0.0, None
        epochs_since, seconds_since = 0, 0.0  # training since the last validation

        def record_validation(epoch: int, stats: EpochStats | None = None) -> float:
            """Validate, add to the history and to ``stats`` (None: the starting weights)."""
            val_loss, val_dice, val_iou = self.validate(epoch)
            metric = float(np.mean(list(val_dice.values())))
            history["val_loss"].append(val_loss)
            history["val_dice"].append(metric)
            history["val_epoch"].append(epoch)
            if stats is not None:
                stats.val_loss, stats.val_dice, stats.val_iou, stats.val_mean_dice = (
                    val_loss,
                    val_dice,
                    val_iou,
                    metric,
                )
                writer.add_scalar("Loss/val", val_loss, epoch)
                writer.add_scalar("Metrics/dice", metric, epoch)
                writer.add_scalar("Metrics/iou", float(np.mean(list(val_iou.values()))), epoch)
            return metric

        try:
            if self.val_cases:
                t0 = time.perf_counter()
                result.baseline_dice = record_validation(-1)
                val_seconds = time.perf_counter() - t0
                if self.start_is_candidate:
                    selector.step(result.baseline_dice)
                    self._keep_best(result, -1, result.baseline_dice)
                logger.info("starting weights: val dice %.4f (%.1fs)", result.baseline_dice, val_seconds)
            for epoch in range(self.epochs):
                if self.should_stop():
                    result.stop_reason = "cancelled"
                    break
                t0 = time.perf_counter()
                self.network.train()
                seen = [0]
                loss, norms = accumulate_step(
                    self._batches(seen),
                    self.network,
                    self.loss_fn,
                    self.optimizer,
                    cfg.accumulation_steps,
                    self.device,
                    self.dtype,
                    self.scaler,
                    cfg.grad_clip or None,
                )
                train_seconds.append(time.perf_counter() - t0)
                epochs_since, seconds_since = epochs_since + 1, seconds_since + train_seconds[-1]
                all_norms.extend(norms)
                # stop when one more epoch and its validation would overrun the budget
                projected = time.perf_counter() - start + float(np.mean(train_seconds[-3:])) + val_seconds
                out_of_time = bool(_from_main_rank(float(budget > 0 and projected > budget), self.device))
                last = out_of_time or epoch == self.epochs - 1
                lr = float(self.optimizer.param_groups[0]["lr"])
                stats = EpochStats(
                    epoch=epoch,
                    train_loss=loss,
                    lr=lr,
                    grad_norm=float(np.mean(norms)) if norms else float("nan"),
                    seconds=0.0,
                    patches=seen[0],
                )
                writer.add_scalar("Loss/train", loss, epoch)
                writer.add_scalar("Learning_rate", lr, epoch)
                history["train_loss"].append(loss)
                metric = None
                due = cfg.validation_due(epochs_since, self.val_interval, seconds_since, val_seconds)
                if self.val_cases and (due or last):
                    epochs_since, seconds_since = 0, 0.0
                    tv = time.perf_counter()
                    metric = record_validation(epoch, stats)
                    val_seconds = time.perf_counter() - tv
                    score = metric if previous is None else (metric + previous) / 2
                    previous = metric
                    if selector.step(score):
                        result.stop_reason = "early_stop"
                    if selector.best_epoch == selector.epoch:
                        self._keep_best(result, epoch, metric)
                elif not self.val_cases and last:
                    self._keep_best(result, epoch, float("nan"))
                elapsed_share = (time.perf_counter() - start) / budget if budget > 0 else 0.0
                progress = _from_main_rank(max((epoch + 1) / self.epochs, elapsed_share), self.device)
                if metric is not None or not needs_metric(self.scheduler):
                    scheduler_step(self.scheduler, metric, progress)
                stats.seconds = time.perf_counter() - t0
                result.epochs.append(stats)
                result.diagnostics = [asdict(d) for d in diagnose(history, all_norms)] if epoch >= 2 else []
                logger.info(
                    "epoch %d loss %.4f val dice %s lr %.2e (%.1fs)",
                    epoch,
                    loss,
                    "-" if metric is None else f"{metric:.4f}",
                    lr,
                    stats.seconds,
                )
                if self.on_epoch:
                    self.on_epoch(stats, result)
                if result.stop_reason == "early_stop":
                    break
                if out_of_time:
                    result.stop_reason = "time_budget"
                    break
            if result.epochs:
                result.last_state = copy.deepcopy(self.model.state_dict())
        except RuntimeError as error:
            if not _is_out_of_memory(error):
                raise
            self.optimizer.zero_grad(set_to_none=True)
            result.stop_reason = "out_of_memory"
            result.diagnostics = [asdict(d) for d in diagnose(history, all_norms, oom=True)]
            logger.error("out of memory after %d epochs: %s", len(result.epochs), error)
            if result.best_epoch < 0:
                result.best_state = None  # nothing trained is worth publishing
        finally:
            writer.close()
        result.notes = run_notes(result, cfg, bool(self.val_cases))
        return result
