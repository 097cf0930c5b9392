"""Server-side auto-segmentation latency, peak memory and accuracy on realistic CT volumes.

    python bench/infer_latency.py [--repeats 3] [--big 1] [--backend auto]

Starts the real `monailabel start_server` on a temporary datastore holding the held-out sample CT
cases plus ``--big`` generated 512x512x(150-300) volumes (0.7-0.9 mm, 1.5-5 mm slices), infers each
``--repeats`` times through the HTTP API, and prints one JSON summary: per-stage latency (pre / infer /
invert / post / write / total, seconds, median over repeats), end-to-end HTTP time, peak server RSS
(MB, server process tree, sampled every 0.2 s), and Dice against the labels.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "sample-data"))

from tests.server import SAMPLE_CT, Server, copy_datastore  # noqa: E402

HELD_OUT = ["case_000.nii.gz", "case_006.nii.gz", "case_011.nii.gz"]  # val/test of the shipped model


def generator():
    spec = importlib.util.spec_from_file_location("ct_generate", REPO / "sample-data" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def peak_rss(pid: int, stop: threading.Event, out: list[float]) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
            out.append(rss / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.2)


def mean_dice(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean(
            [
                2 * ((pred == v) & (truth == v)).sum() / max((pred == v).sum() + (truth == v).sum(), 1)
                for v in range(1, 5)
            ]
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", type=int, default=1, help="generated 512x512 volumes to add")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    studies = copy_datastore(SAMPLE_CT, tmp / "studies", HELD_OUT)
    gen = generator()
    rng = np.random.default_rng(7)
    for i in range(args.big):
        spacing = (float(rng.uniform(0.7, 0.9)),) * 2 + (float(rng.choice([1.5, 2.5, 5.0])),)
        slices = int(rng.integers(150, 301)) if spacing[2] < 3 else int(rng.integers(150, 301)) // 2
        hu, label, affine = gen.generate_ct_case(100 + i, spacing=spacing, shape=(512, 512, slices))
        nib.save(nib.Nifti1Image(hu, affine), studies / f"big_{i}.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), studies / "labels" / "final" / f"big_{i}.nii.gz")
    server = Server(studies, tmp / "model", tmp / "server.log", conf={"backend": args.backend})
    samples: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=peak_rss, args=(server.proc.pid, stop, samples))
    sampler.start()
    cases = {}
    try:
        for image in sorted(studies.glob("*.nii.gz")):
            name = image.name.replace(".nii.gz", "")
            truth = np.asarray(nib.load(studies / "labels" / "final" / image.name).dataobj)
            runs, http = [], []
            for _ in range(args.repeats):
                t = time.perf_counter()
                r = requests.post(f"{server.url}/infer/ct_organs", params={"image": name}, timeout=900)
                http.append(time.perf_counter() - t)
                r.raise_for_status()
                boundary = r.headers["content-type"].split("boundary=")[1].encode()
                parts = r.content.split(b"--" + boundary)
                params = json.loads(
                    next(p for p in parts if b'name="params"' in p).split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n")
                )
                blob = next(p for p in parts if b'name="image"' in p).split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n")
                runs.append(params["latencies"])
            pred = np.asarray(nib.Nifti1Image.from_bytes(gzip.decompress(blob)).dataobj)
            cases[name] = {
                "shape": list(truth.shape),
                "latency": {k: float(np.median([run[k] for run in runs])) for k in runs[0]},
                "http_seconds": float(np.median(http)),
                "dice": mean_dice(pred, truth),
                "backend": params["backend"],
            }
    finally:
        stop.set()
        sampler.join()
        server.stop()
    summary = {
        "cases": cases,
        "mean_dice": float(np.mean([c["dice"] for c in cases.values()])),
        "median_total_seconds": float(np.median([c["latency"]["total"] for c in cases.values()])),
        "peak_server_rss_mb": max(samples) if samples else None,
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
