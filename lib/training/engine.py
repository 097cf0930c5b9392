"""The training engine: AMP, gradient accumulation and clipping, LR schedule, early stopping,
validation with per-label Dice/IoU, TensorBoard, prediction pictures and diagnostics."""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from monai.losses import DiceCELoss
from torch.utils.tensorboard import SummaryWriter

from lib.inference.geometry import restore_labels
from lib.inference.predictor import keep_largest_components, predict_logits
from lib.metrics.dice import dice
from lib.metrics.iou import iou
from lib.optim.optimizers import build_optimizer
from lib.optim.schedulers import build_scheduler, needs_metric, scheduler_step
from lib.training.amp import amp_dtype, autocast, grad_scaler
from lib.training.diagnostics import diagnose
from lib.training.early_stopping import EarlyStopping
from lib.training.pictures import save_prediction_png

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Training options with the documented defaults (see README)."""

    max_epochs: int = 50
    optimizer: str = "adamw"
    lr: float | None = None  # None: the optimizer's documented default
    weight_decay: float | None = None
    scheduler: str = "cosine"
    warmup_epochs: int = 0
    early_stop_patience: int = 20
    early_stop_delta: float = 0.0
    amp: bool = True
    accumulation_steps: int = 1
    grad_clip: float | None = 12.0
    val_interval: int = 1
    sw_batch_size: int = 2

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ValueError("max_epochs must be >= 1")
        if self.accumulation_steps < 1:
            raise ValueError("accumulation_steps must be >= 1")
        if self.early_stop_patience < 1:
            raise ValueError("early_stop_patience must be >= 1")
        if self.lr is not None and not 0 < self.lr < 1:
            raise ValueError("lr must be in (0, 1)")
        if self.val_interval < 1:
            raise ValueError("val_interval must be >= 1")


@dataclass
class EpochStats:
    """What one epoch produced (validation fields are None on epochs without validation)."""

    epoch: int
    train_loss: float
    lr: float
    grad_norm: float
    seconds: float
    val_loss: float | None = None
    val_dice: dict[str, float] | None = None
    val_iou: dict[str, float] | None = None
    val_mean_dice: float | None = None


@dataclass
class TrainResult:
    """The history, the best epoch and the best weights of a finished (or stopped) training."""

    epochs: list[EpochStats] = field(default_factory=list)
    best_epoch: int = -1
    best_dice: float = float("nan")
    best_state: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False
    cancelled: bool = False
    diagnostics: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable view (without weights)."""
        return {
            "epochs": [asdict(e) for e in self.epochs],
            "best_epoch": self.best_epoch,
            "best_dice": self.best_dice,
            "stopped_early": self.stopped_early,
            "cancelled": self.cancelled,
            "diagnostics": self.diagnostics,
        }


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


class Trainer:
    """Train ``network`` on patch batches and validate on whole volumes as inference serves them.

    ``train_loader`` yields dicts with "image"/"label" tensors (B, 1, *patch); ``val_cases`` are dicts
    as :func:`lib.data.loaders.validation_cases` builds them: "image" (1, *spatial) float MetaTensor
    and "label" (1, *spatial) integer tensor on the working grid, "reference" (the label on its own
    grid, integer array) and "reference_affine" (4x4).
    ``labels`` maps names to values 1..N. ``out_dir`` receives TensorBoard events and PNG panels.
    ``on_epoch`` is called with (EpochStats, TrainResult) after every epoch; ``should_stop`` is polled
    between epochs for a cancellation request. Under DDP every rank validates (weights are identical,
    so scheduler and early-stopping decisions agree) and only the main rank writes monitoring output.
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
    ) -> None:
        self.network = network
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
        self.loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
        self.optimizer = build_optimizer(
            config.optimizer, network.parameters(), config.lr, config.weight_decay
        )
        self.scheduler = build_scheduler(
            config.scheduler, self.optimizer, config.max_epochs, warmup_epochs=config.warmup_epochs
        )
        self.dtype = amp_dtype(self.device, config.amp)
        self.scaler = grad_scaler(self.device, self.dtype)
        self.early_stopping = EarlyStopping(config.early_stop_patience, config.early_stop_delta, mode="max")

    def validate(self, epoch: int) -> tuple[float, dict[str, float], dict[str, float]]:
        """Mean val loss (working grid) and per-label mean Dice / IoU of what inference would serve
        (largest component per class, restored onto the reference label's grid) against the reference
        label; writes one PNG panel."""
        self.network.eval()
        backend = "bf16" if self.dtype == torch.bfloat16 else "fp32"
        losses, dices, ious = [], {k: [] for k in self.labels}, {k: [] for k in self.labels}
        for i, case in enumerate(self.val_cases):
            image = case["image"]
            logits = predict_logits(
                self.model, image.to(self.device), self.roi_size, backend, self.config.sw_batch_size
            )
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
                    os.path.join(self.out_dir, f"val_epoch{epoch:04d}.png"),
                    np.asarray(image[0].cpu()),
                    np.asarray(case["label"][0].cpu()),
                    working,
                    self.labels,
                )
        mean = {k: float(np.mean(v)) for k, v in dices.items()}
        return float(np.mean(losses)), mean, {k: float(np.mean(v)) for k, v in ious.items()}

    def fit(self) -> TrainResult:
        """Run up to ``max_epochs``; returns the history and the best weights (by mean val Dice)."""
        cfg, result = self.config, TrainResult()
        os.makedirs(self.out_dir, exist_ok=True)
        writer = SummaryWriter(log_dir=self.out_dir) if self.is_main else _NullWriter()
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_dice": []}
        all_norms: list[float] = []
        try:
            for epoch in range(cfg.max_epochs):
                if self.should_stop():
                    result.cancelled = True
                    break
                t0 = time.perf_counter()
                self.network.train()
                batches = ((b["image"], b["label"]) for b in self.train_loader)
                loss, norms = accumulate_step(
                    batches,
                    self.network,
                    self.loss_fn,
                    self.optimizer,
                    cfg.accumulation_steps,
                    self.device,
                    self.dtype,
                    self.scaler,
                    cfg.grad_clip,
                )
                all_norms.extend(norms)
                lr = float(self.optimizer.param_groups[0]["lr"])
                stats = EpochStats(
                    epoch=epoch,
                    train_loss=loss,
                    lr=lr,
                    grad_norm=float(np.mean(norms)) if norms else float("nan"),
                    seconds=0.0,
                )
                writer.add_scalar("Loss/train", loss, epoch)
                writer.add_scalar("Learning_rate", lr, epoch)
                history["train_loss"].append(loss)
                metric = None
                if self.val_cases and ((epoch + 1) % cfg.val_interval == 0 or epoch == cfg.max_epochs - 1):
                    val_loss, val_dice, val_iou = self.validate(epoch)
                    metric = float(np.mean(list(val_dice.values())))
                    stats.val_loss, stats.val_dice, stats.val_iou, stats.val_mean_dice = (
                        val_loss,
                        val_dice,
                        val_iou,
                        metric,
                    )
                    writer.add_scalar("Loss/val", val_loss, epoch)
                    writer.add_scalar("Metrics/dice", metric, epoch)
                    writer.add_scalar("Metrics/iou", float(np.mean(list(val_iou.values()))), epoch)
                    history["val_loss"].append(val_loss)
                    history["val_dice"].append(metric)
                    stop = self.early_stopping.step(metric)
                    if self.early_stopping.best_epoch == self.early_stopping.epoch:
                        result.best_epoch, result.best_dice = epoch, metric
                        result.best_state = copy.deepcopy(self.model.state_dict())
                    result.stopped_early = stop
                if metric is not None or not needs_metric(self.scheduler):
                    scheduler_step(self.scheduler, metric)
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
                if result.stopped_early:
                    break
        finally:
            writer.close()
        if result.best_state is None:
            result.best_state = copy.deepcopy(self.model.state_dict())
        return result
