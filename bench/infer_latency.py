"""Server-side auto-segmentation latency, peak memory and accuracy on realistic CT volumes.

    python bench/infer_latency.py [--repeats 3] [--big 2] [--backend auto] [--compare-radiology]

Starts the real `monailabel start_server` on a temporary datastore holding the held-out sample CT
cases plus ``--big`` (at most 3) generated 512x512 full-FOV volumes (0.78 x 0.78 x 2.5 mm x 160
slices, the reference volume of issue 8; 0.7 x 0.7 x 1.5 mm x 200; 0.9 x 0.9 x 5 mm x 150), infers
each ``--repeats`` times through the HTTP API, and prints one JSON summary: per-stage latency
(pre / infer / invert / post / write / total, seconds, median over repeats), end-to-end HTTP time,
peak server RSS (MB, server process tree, sampled every 0.2 s), and Dice against the labels.

``--compare-radiology`` also starts the MONAI Label radiology sample app shipped in the monailabel
wheel (``segmentation_spleen``, no pretrained weights, no SAM2), first trains it for
``--radiology-epochs`` epochs on ``--radiology-volumes`` generated full-FOV training studies (spleen
labels only, value 1; the same generator as our full-FOV training data) so that it produces a label,
then infers the same volumes alternating A/B with our server, and adds its figures (spleen Dice) and
the ratios ours / radiology (per-case total latency, peak RSS).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import importlib.util
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import psutil
import requests
from requests_toolbelt.multipart.decoder import MultipartDecoder

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.radiology import MODEL as RADIOLOGY_MODEL  # noqa: E402
from bench.radiology import SPLEEN, start_server, write_spleen_label  # noqa: E402
from lib.metrics.dice import dice as metric_dice  # noqa: E402
from tests.server import SAMPLE_CT, Server, copy_datastore, wait_for_task  # noqa: E402

HELD_OUT = ["case_000.nii.gz", "case_006.nii.gz", "case_011.nii.gz"]  # val/test of the shipped model


@functools.cache
def generator():
    """The sample-data CT generator module (``sample-data/generate.py``), loaded once."""
    sys.path.insert(0, str(REPO / "sample-data"))
    spec = importlib.util.spec_from_file_location("ct_generate", REPO / "sample-data" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class PeakRss:
    """Samples the RSS of a process tree every 0.2 s in a thread; ``peak_mb`` after ``stop()``."""

    def __init__(self, pid: int) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._proc = psutil.Process(pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self._proc, *self._proc.children(recursive=True)]
                self.samples.append(sum(p.memory_info().rss for p in procs) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        return max(self.samples) if self.samples else None


def dice(pred: np.ndarray, truth: np.ndarray, value_pred: int, value_truth: int) -> float:
    return metric_dice(pred == value_pred, truth == value_truth)


BIG = ((0.78, 2.5, 160), (0.7, 1.5, 200), (0.9, 5.0, 150))  # (pixel mm, slice mm, slices)


def add_big_volumes(studies: Path, count: int) -> None:
    """Write ``count`` generated full-FOV 512x512 CT volumes (with labels) into a datastore: the first
    is issue 8's reference grid, the others thin and thick-slice studies (see ``BIG``)."""
    gen = generator()
    for i, (pixel, thickness, slices) in enumerate(BIG[:count]):
        spacing = (pixel, pixel, thickness)
        hu, label, affine = gen.generate_ct_case(100 + i, spacing=spacing, shape=(512, 512, slices))
        nib.save(nib.Nifti1Image(hu, affine), studies / f"big_{i}.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), studies / "labels" / "final" / f"big_{i}.nii.gz")


def infer(url: str, model: str, image: str) -> tuple[np.ndarray, dict, float]:
    """POST /infer/{model}?image=...: (label array, result params, HTTP seconds)."""
    t = time.perf_counter()
    r = requests.post(f"{url}/infer/{model}", params={"image": image}, timeout=1800)
    seconds = time.perf_counter() - t
    r.raise_for_status()
    parts = {
        part.headers[b"Content-Disposition"].split(b'name="')[1].split(b'"')[0]: part.content
        for part in MultipartDecoder.from_response(r).parts
    }
    body, blob = parts[b"params"], parts[b"image"]
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    label = np.asarray(nib.Nifti1Image.from_bytes(blob).dataobj)
    return label, json.loads(body), seconds


def summarise(runs: list[tuple[np.ndarray, dict, float]], truth: np.ndarray, spleen: int) -> dict:
    """Median stage latencies, HTTP time and Dice (mean over our four organs; spleen) of repeated runs."""
    stages = ("pre", "infer", "invert", "post", "write", "total")
    label, params, _ = runs[-1]
    out = {
        "latency": {k: float(np.median([r[1]["latencies"][k] for r in runs])) for k in stages},
        "http_seconds": float(np.median([r[2] for r in runs])),
        "spleen_dice": dice(label, truth, spleen, SPLEEN),
    }
    if spleen == SPLEEN:
        out["dice"] = float(np.mean([dice(label, truth, v, v) for v in range(1, 5)]))
        out["backend"] = params.get("backend")
    return out


def train_radiology(server: Server, epochs: int) -> float:
    """Train the radiology app's segmentation_spleen briefly; returns the wall seconds it took."""
    t = time.perf_counter()
    r = requests.post(
        f"{server.url}/train/{RADIOLOGY_MODEL}", json={"max_epochs": epochs, "val_split": 0.0}, timeout=60
    )
    r.raise_for_status()
    info = wait_for_task(server.url, "train", timeout=3600)
    if info.get("status") != "DONE":
        raise RuntimeError(f"radiology training failed: {info}\n{server.tail()}")
    return time.perf_counter() - t


def radiology_server(tmp: Path, names: list[str], epochs: int, volumes: int) -> tuple[Server, float]:
    """The radiology sample app on the benchmark volumes, trained briefly on ``volumes`` generated
    full-FOV training studies with spleen-only labels (its trainer cannot use the committed sample
    slabs: 96^3 crops of 15-34-slice volumes come out too thin for its U-Net and it crashes)."""
    studies = tmp / "radiology-studies"
    generator().write_wide_cases(studies, volumes)
    for label in (studies / "labels" / "final").glob("*.nii.gz"):
        write_spleen_label(label, label)
    for name in names:  # the benchmark volumes, unlabelled (their truth stays with our datastore)
        shutil.copy(tmp / "studies" / name, studies / name)
    server = start_server(studies, tmp)
    try:
        return server, train_radiology(server, epochs)
    except BaseException:
        server.stop()
        raise


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", type=int, default=2, help="generated 512x512 volumes to add")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--compare-radiology", action="store_true")
    parser.add_argument("--radiology-epochs", type=int, default=4)
    parser.add_argument("--radiology-volumes", type=int, default=2, help="its generated training studies")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    studies = copy_datastore(SAMPLE_CT, tmp / "studies", HELD_OUT)
    add_big_volumes(studies, args.big)
    names = sorted(p.name for p in studies.glob("*.nii.gz"))
    servers = {}
    meters = {}
    summary: dict = {"date": time.strftime("%Y-%m-%d"), "repeats": args.repeats}
    try:
        if args.compare_radiology:
            servers["radiology"], summary["radiology_train_seconds"] = radiology_server(
                tmp, names, args.radiology_epochs, args.radiology_volumes
            )
        servers["ours"] = Server(studies, tmp / "model", tmp / "server.log", conf={"backend": args.backend})
        meters = {key: PeakRss(server.proc.pid) for key, server in servers.items()}
        models = {"ours": ("ct_organs", SPLEEN), "radiology": (RADIOLOGY_MODEL, 1)}
        cases: dict = {}
        for name in names:
            image = name.replace(".nii.gz", "")
            truth = np.asarray(nib.load(studies / "labels" / "final" / name).dataobj)
            runs: dict[str, list] = {key: [] for key in servers}
            for _ in range(args.repeats):  # alternate A/B so both see the same machine state
                for key, server in servers.items():
                    runs[key].append(infer(server.url, models[key][0], image))
            cases[image] = {"shape": list(truth.shape)} | {
                key: summarise(r, truth, models[key][1]) for key, r in runs.items()
            }
    finally:
        peaks = {key: meter.stop() for key, meter in meters.items()}
        for server in servers.values():
            server.stop()
    for key in servers:
        summary[key] = {
            "median_total_seconds": float(np.median([c[key]["latency"]["total"] for c in cases.values()])),
            "peak_server_rss_mb": peaks[key],
            "mean_spleen_dice": float(np.mean([c[key]["spleen_dice"] for c in cases.values()])),
        }
    summary["ours"]["mean_dice"] = float(np.mean([c["ours"]["dice"] for c in cases.values()]))
    if "radiology" in servers:
        ratios = {
            n: c["ours"]["latency"]["total"] / c["radiology"]["latency"]["total"] for n, c in cases.items()
        }
        summary["ratios"] = {
            "total_latency_per_case": ratios,
            "total_latency_max": max(ratios.values()),
            "peak_rss": summary["ours"]["peak_server_rss_mb"] / summary["radiology"]["peak_server_rss_mb"],
        }
    summary["cases"] = cases
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
