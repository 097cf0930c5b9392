"""Every training option in one typed place: its default, its valid values and a one-line help.

The server's ``/info`` lists (:meth:`TrainConfig.info`), the request parser
(:meth:`TrainConfig.from_mapping`), the CLI's arguments (``python -m lib.train``) and the engine all
read this dataclass; the key names are the same everywhere. The defaults are chosen for a user's own
model trained from a few labelled scans on a CPU workstation: a time budget, a schedule sized from the
number of training cases, validation every few dozen optimizer steps and AdamW at 2e-3 (``docs``: the
training recipe).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lib.io.options import Options
from lib.io.options import option as _option
from lib.optim.optimizers import OPTIMIZER_DEFAULTS
from lib.optim.schedulers import SCHEDULER_DEFAULTS

TARGET_STEPS = 5000  # optimizer steps of an automatic schedule (max_epochs 0); the time budget cuts it
VAL_EVERY_STEPS = 50  # optimizer steps between validations of an automatic interval (val_interval 0)
VAL_TIME_SHARE = 0.1  # an automatic interval also waits until validation is at most this share of the time


@dataclass(frozen=True)
class TrainConfig(Options):
    """Training options with their defaults; invalid values raise ``ValueError`` naming the option."""

    ERROR = "invalid train option {}"

    optimizer: str = _option(
        "adamw",
        "optimizer (weight decay and betas: lib/optim/optimizers.py)",
        choices=tuple(OPTIMIZER_DEFAULTS),
    )
    lr: float = _option(
        2e-3,
        "peak learning rate; 2e-3 suits AdamW/Adam from scratch and for "
        "fine-tuning on a few cases, SGD wants about 1e-2",
        low=1e-7,
        high=0.5,
    )
    scheduler: str = _option(
        "cosine",
        "learning-rate schedule; cosine decays to 1e-6 at max_epochs "
        "or at max_minutes, whichever comes first",
        choices=tuple(SCHEDULER_DEFAULTS),
    )
    max_epochs: int = _option(
        0,
        f"epochs; 0 = sized from the training cases: about {TARGET_STEPS} "
        "optimizer steps (e.g. 500 epochs of 10 cases), or fewer if max_minutes ends it first",
        low=0,
        high=100_000,
    )
    max_minutes: float = _option(
        12.0,
        "time budget in minutes (0 = none): the run stops before it would "
        "overrun, validates, and publishes its best; the cosine ends there",
        low=0,
        high=10_080,
    )
    warmup_epochs: int = _option(
        0, "epochs of linear learning-rate warm-up (from 0.1 x lr)", low=0, high=10_000
    )
    val_interval: int = _option(
        0,
        f"validate every N epochs; 0 = every ~{VAL_EVERY_STEPS} optimizer steps, or less often so "
        f"validation takes at most {VAL_TIME_SHARE:.0%} of the run (it is slow on a CPU); always at the "
        "start and the end",
        low=0,
        high=10_000,
    )
    early_stop_patience: int = _option(
        20, "stop after this many validations without a better model (0 = never)", low=0, high=10_000
    )
    early_stop_delta: float = _option(
        0.0, "smallest gain in (smoothed) validation Dice that counts as better", low=0, high=1
    )
    amp: bool = _option(True, "mixed precision: bf16 autocast on CPUs that have it, fp16 on GPUs")
    accumulation_steps: int = _option(1, "batches per optimizer step (gradient accumulation)", low=1, high=64)
    grad_clip: float = _option(
        12.0, "clip the gradient norm at this value (0 = no clipping)", low=0, high=1e6
    )
    train_batch_size: int = _option(
        1,
        "images per batch; on a CPU more, smaller steps reach a given Dice sooner, on a GPU raise it",
        low=1,
        high=64,
    )
    num_samples: int = _option(
        1,
        "patches drawn per image and batch (centred on each class alike); on a CPU one patch per step "
        "trains better in a time budget, on a GPU raise it",
        low=1,
        high=16,
    )
    synthesis: float = _option(
        0.0,
        "share of training patches whose image is replaced by one synthesised from its labels (random "
        "contrast, resolution, bias field, noise: SynthSeg-style domain randomisation); 0 = off",
        low=0,
        high=1,
    )
    val_split: float = _option(
        0.2,
        "share of patients held out for validation (at least one once "
        "there are two; with one labelled case it trains without validation)",
        low=0,
        high=0.8,
    )
    pretrained: bool = _option(
        True,
        "start from the latest published version, else the shipped weights (loaded partially, "
        "reported); they stay the result unless a trained epoch beats them on validation",
        server_only=True,
    )
    replan: bool = _option(
        False,
        "re-plan a user model from the labelled images now (new grid and network; the newest version "
        "still warm-starts what fits)",
        server_only=True,
    )
    multi_gpu: bool = _option(
        False, "data-parallel training over all GPUs (or num_processes CPU processes)", server_only=True
    )
    num_processes: int = _option(
        2, "processes for multi_gpu training without GPUs", low=2, high=16, server_only=True
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_epochs and self.warmup_epochs >= self.max_epochs:
            raise ValueError("invalid train option warmup_epochs: must be below max_epochs")

    def epochs_for(self, steps_per_epoch: int) -> int:
        """``max_epochs``, or for 0 the epochs that make about ``TARGET_STEPS`` optimizer steps."""
        return self.max_epochs or max(1, math.ceil(TARGET_STEPS / max(steps_per_epoch, 1)))

    def val_interval_for(self, steps_per_epoch: int) -> int:
        """``val_interval``, or for 0 the epochs that make about ``VAL_EVERY_STEPS`` optimizer steps
        (the least between validations; see :meth:`validation_due`)."""
        return self.val_interval or max(1, round(VAL_EVERY_STEPS / max(steps_per_epoch, 1)))

    def validation_due(
        self, epochs_since: int, interval: int, train_seconds: float, val_seconds: float
    ) -> bool:
        """Whether to validate after ``epochs_since`` epochs (``train_seconds`` of training) since the last
        validation, which took ``val_seconds``: every ``interval`` epochs, and for an automatic interval
        (``val_interval`` 0) only once validation would be at most ``VAL_TIME_SHARE`` of the time.

        >>> auto = TrainConfig(val_interval=0)
        >>> auto.validation_due(6, 6, 60.0, 5.0), auto.validation_due(6, 6, 60.0, 12.0)
        (True, False)
        >>> TrainConfig(val_interval=6).validation_due(6, 6, 60.0, 12.0)
        True
        """
        if epochs_since < interval:
            return False
        share = val_seconds / max(val_seconds + train_seconds, 1e-9)
        return bool(self.val_interval) or share <= VAL_TIME_SHARE
