"""Helpers for end-to-end tests: start the real ``monailabel start_server`` on 127.0.0.1, load the
3D Slicer plugin's own client from the monailabel installation, prepare datastores and models, and
compare label maps (fixtures built on these are in ``tests/conftest.py``)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests
import torch

from lib.io.model_store import ModelStore
from lib.metrics import dice
from lib.planning.presets import CT_ORGANS, build_network, checkpoint_for
from lib.training.distributed import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CT = REPO_ROOT / "sample-data" / "ct"


def slicer_client_module():
    """The MONAILabelLib/client.py the 3D Slicer plugin ships (inside the monailabel wheel)."""
    path = Path(sys.prefix) / "monailabel/plugins/slicer/MONAILabel/MONAILabelLib/client.py"
    if not path.exists():
        raise FileNotFoundError(f"3D Slicer plugin client not found at {path}")
    spec = importlib.util.spec_from_file_location("slicer_monailabel_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_datastore(src: Path, dst: Path, names: list[str] | None = None) -> Path:
    """Copy images (and their final labels) of a folder datastore; ``names`` limits which."""
    (dst / "labels" / "final").mkdir(parents=True, exist_ok=True)
    for image in sorted([*src.glob("*.nii.gz"), *src.glob("*.png")]):
        if names is not None and image.name not in names:
            continue
        shutil.copy(image, dst / image.name)
        label = src / "labels" / "final" / image.name
        if label.exists():
            shutil.copy(label, dst / "labels" / "final" / image.name)
    return dst


def publish_random_ct_model(model_dir: Path) -> int:
    """Publish a seeded random-init ``ct_organs`` network into ``model_dir``; returns its version."""
    torch.manual_seed(0)
    state = build_network(CT_ORGANS).state_dict()
    return ModelStore(model_dir / CT_ORGANS.name).publish(
        checkpoint_for(CT_ORGANS, state, {"note": "random init"})
    )


def mean_dice(a: np.ndarray, b: np.ndarray, values: list[int] | None = None) -> float:
    """Mean :func:`lib.metrics.dice` of two label maps over ``values`` (default: the non-zero values in
    either map; 1.0 when there are none)."""
    if values is None:
        values = sorted((set(np.unique(a).tolist()) | set(np.unique(b).tolist())) - {0})
    return float(np.mean([dice(a == v, b == v) for v in values])) if values else 1.0


def snapshot(*folders: Path) -> dict[str, str]:
    """sha256 of every file below ``folders`` (the lock file aside)."""
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.name != ".lock":
                out[str(p.relative_to(folder.parent))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def wait_until_answering(
    proc: subprocess.Popen,
    url: str,
    timeout: float,
    tail: Callable[[], str],
    name: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Poll ``url`` (with ``headers``) until it answers 200; RuntimeError if ``proc`` exits first,
    TimeoutError after ``timeout`` seconds (both with the log tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail()}")
        try:
            if requests.get(url, headers=headers, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{name} did not answer {url} within {timeout}s:\n{tail()}")


def annotator_datastore(
    src: Path, root: Path, labelled: list[str], unlabelled: list[str]
) -> tuple[Path, Path]:
    """A datastore copy where ``unlabelled`` images have no final label yet; their true labels are moved
    to ``root/truth`` (what the annotator will submit). Returns (studies, truth) folders."""
    studies = copy_datastore(src, root / "studies", labelled + unlabelled)
    truth = root / "truth"
    truth.mkdir()
    for name in unlabelled:
        (studies / "labels" / "final" / name).rename(truth / name)
    return studies, truth


class Server:
    """A running ``monailabel start_server`` process (our app unless ``app`` names another app
    folder); ``env`` adds environment settings (e.g. MONAI Label's auth), ``headers`` go with the
    start-up probe of ``/info/``; ``stop()`` ends it."""

    def __init__(
        self,
        studies: Path,
        model_dir: Path,
        log: Path,
        conf: dict[str, str] | None = None,
        timeout: float = 180.0,
        app: str = "monailabel_app",
        env: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [
            str(Path(sys.executable).parent / "monailabel"),
            "start_server",
            "--app",
            app,
            "--studies",
            str(studies),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--conf",
            "model_dir",
            str(model_dir),
        ]
        for key, value in (conf or {}).items():
            cmd += ["--conf", key, value]
        env = dict(os.environ, MONAI_LABEL_AUTO_UPDATE_SCORING="false", **(env or {}))
        self._log_fh = open(log, "w")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=self._log_fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            wait_until_answering(self.proc, f"{self.url}/info/", timeout, self.tail, "server", headers)
        except TimeoutError:
            self.stop()
            raise

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log_fh.close()


def wait_for_task(url: str, method: str = "train", timeout: float = 600.0) -> dict:
    """Poll ``GET /<method>/`` until the latest task has finished; returns its status record."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(f"{url}/{method}/", timeout=30)
        if r.status_code == 200 and r.json().get("status") not in ("SUBMITTED", "RUNNING"):
            return r.json()
        time.sleep(2)
    raise TimeoutError(f"{method} task did not finish within {timeout}s")
