"""Inference latency on a sample case while a training runs on the same machine, against idle.

    python bench/serve_while_training.py [--repeats 5] [--case case_000.nii.gz]

Starts the real `monailabel start_server` on a temporary copy of five labelled sample CT cases,
infers ``--case`` through the HTTP API ``--repeats`` times (after one warm-up), then starts a training
(``POST /train/ct_organs``, as the viewers' Train / Update Model do) and waits until its first epoch
is done (data cached, training in its steady state). Then, ``--repeats`` times, it pauses the training
process (SIGSTOP) and infers the case (idle), resumes it and infers again (while training): paired
A/B requests, so the machine's other load, which drifts slowly, weighs on both alike. It stops the
training and prints one JSON summary: HTTP seconds and the server's own ``total`` latency per request
and their medians (before the training, idle, while training), the ratios while-training / idle, the
first epoch's time, and the training process's niceness and thread count as seen from outside.
A few minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.infer_latency import infer  # noqa: E402
from tests.server import SAMPLE_CT, Server, copy_datastore  # noqa: E402

CASES = ["case_000.nii.gz", "case_004.nii.gz", "case_006.nii.gz", "case_008.nii.gz", "case_011.nii.gz"]
MODEL = "ct_organs"
LONG_TRAINING = {"max_epochs": 500, "early_stop_patience": 500}  # stopped by the bench, never finished
PAUSE_S = 2.0  # after pausing or resuming the training, before the next request


def timed_infer(url: str, image: str) -> tuple[float, float]:
    """One inference of ``image``: (HTTP seconds, the server's own ``total`` seconds)."""
    _, params, seconds = infer(url, MODEL, image)
    return round(seconds, 3), params["latencies"]["total"]


def summarise(samples: list[tuple[float, float]]) -> dict[str, object]:
    http, server = [s[0] for s in samples], [s[1] for s in samples]
    return {
        "http_s": http,
        "server_total_s": server,
        "median_http_s": statistics.median(http),
        "median_server_total_s": statistics.median(server),
    }


def train_stats(url: str) -> dict:
    return requests.get(f"{url}/info/", timeout=30).json().get("train_stats", {}).get(MODEL, {})


def training_processes(server_pid: int) -> list[psutil.Process]:
    """The server's child process running the training task (MONAI Label starts one per training)
    and its own children (data loader workers, DDP ranks)."""
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if "monailabel.interfaces.utils.app" in cmd and "train" in cmd:
            return [child, *child.children(recursive=True)]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", default="case_000.nii.gz", choices=CASES)
    parser.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for epoch 1")
    args = parser.parse_args()
    image = args.case.removesuffix(".nii.gz")
    with tempfile.TemporaryDirectory() as tmp:
        studies = copy_datastore(SAMPLE_CT, Path(tmp) / "studies", CASES)
        server = Server(studies, Path(tmp) / "model", Path(tmp) / "server.log")
        try:
            timed_infer(server.url, image)  # warm-up: model load, backend choice
            before = [timed_infer(server.url, image) for _ in range(args.repeats)]
            r = requests.post(f"{server.url}/train/{MODEL}", json=LONG_TRAINING, timeout=60)
            r.raise_for_status()
            deadline = time.time() + args.start_timeout
            while not train_stats(server.url).get("epochs"):
                if time.time() > deadline:
                    raise TimeoutError(f"no training epoch within {args.start_timeout} s:\n{server.tail()}")
                time.sleep(2)
            trainer = training_processes(server.proc.pid)
            if not trainer:
                raise RuntimeError(f"no training process found:\n{server.tail()}")
            trainer_info = {"niceness": trainer[0].nice(), "threads": trainer[0].num_threads()}
            idle, busy = [], []
            for _ in range(args.repeats):  # A/B: the machine's other load changes slowly, so pair them
                for p in trainer:
                    p.suspend()
                time.sleep(PAUSE_S)
                idle.append(timed_infer(server.url, image))
                for p in trainer:
                    p.resume()
                time.sleep(PAUSE_S)
                busy.append(timed_infer(server.url, image))
            stats = train_stats(server.url)
            requests.delete(f"{server.url}/train/", timeout=60)
        finally:
            server.stop()
    epochs = stats.get("epochs", [])
    summary = {
        "case": args.case,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "before_training": summarise(before),
        "idle": summarise(idle),
        "while_training": summarise(busy),
        "ratio_http": round(statistics.median(b[0] for b in busy) / statistics.median(i[0] for i in idle), 2),
        "ratio_server_total": round(
            statistics.median(b[1] for b in busy) / statistics.median(i[1] for i in idle), 2
        ),
        "training_process": trainer_info,
        "first_epoch_seconds": round(epochs[0]["seconds"], 2) if epochs else None,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
