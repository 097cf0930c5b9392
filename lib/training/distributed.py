"""Multi-process data-parallel training (torch DDP): gloo on CPU, NCCL on GPUs."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist


def shard(items: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    """This rank's share of ``items``: every rank gets the same count (wrapping round, as
    DistributedSampler does), so all ranks run the same number of steps and never wait forever."""
    if not items:
        return []
    per_rank = math.ceil(len(items) / world_size)
    padded = [items[i % len(items)] for i in range(per_rank * world_size)]
    return padded[rank::world_size]


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, backend: str, port: int, fn: Callable[..., Any], args: tuple) -> None:
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        if backend == "nccl":
            torch.cuda.set_device(rank)
        torch.manual_seed(rank)
        fn(*args)
        dist.barrier()  # no rank tears down the group while another still talks to it
    finally:
        dist.destroy_process_group()


def run_distributed(fn: Callable[..., Any], world_size: int, args: tuple = ()) -> None:
    """Run ``fn(*args)`` in ``world_size`` spawned processes joined in one process group.

    The backend is NCCL when CUDA is available, gloo otherwise; CPU threads are split between the
    processes. ``fn`` and ``args`` must be picklable (a module-level function).
    """
    if world_size < 2:
        raise ValueError("distributed training needs at least 2 processes")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // world_size)))
    torch.multiprocessing.spawn(_worker, args=(world_size, backend, free_port(), fn, args), nprocs=world_size)
