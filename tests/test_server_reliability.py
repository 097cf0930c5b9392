"""Hostile input, concurrent users and crashes against the real server: 4xx, nothing changed, nothing lost."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests
import torch

from lib.io.model_store import ModelStore
from lib.networks.unet import build_unet
from lib.planning.presets import CT_ORGANS, build_network
from lib.training.recipe import checkpoint_for
from tests.server import SAMPLE_CT, Server, copy_datastore, snapshot

pytestmark = pytest.mark.server

CASES = ["case_000.nii.gz", "case_011.nii.gz", "case_005.nii.gz"]


def publish_random_model(model_dir: Path) -> None:
    torch.manual_seed(0)
    ModelStore(model_dir / "ct_organs").publish(
        checkpoint_for(CT_ORGANS, build_network(CT_ORGANS).state_dict(), {})
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel")
    studies = copy_datastore(SAMPLE_CT, root / "studies", CASES)
    (studies / "labels" / "final" / CASES[2]).unlink()  # one image left to label
    publish_random_model(root / "model")
    conf = {"max_upload_mb": "4", "max_working_voxels": "1e6"}
    srv = Server(studies, root / "model", root / "server.log", conf=conf)
    srv.studies, srv.model_dir, srv.root = studies, root / "model", root
    yield srv
    srv.stop()


def _files(tmp: Path) -> dict[str, Path]:
    img = nib.load(SAMPLE_CT / CASES[1])
    good = np.asarray(nib.load(SAMPLE_CT / "labels" / "final" / CASES[1]).dataobj)
    out = {}

    def save(name, data, affine=img.affine):
        nib.save(nib.Nifti1Image(data, affine), tmp / name)
        out[name] = tmp / name

    save("wrong_shape.nii.gz", good[:-1])
    bad = good.copy()
    bad[0, 0, 0] = 7
    save("undeclared.nii.gz", bad)
    shifted = img.affine.copy()
    shifted[0, 3] += 5.0  # same grid, 5 mm off
    save("shifted.nii.gz", good, shifted)
    save("flat2d.nii.gz", np.zeros((64, 64), np.int16), np.eye(4))
    nan = np.asarray(img.dataobj).astype(np.float32)
    nan[5, 5, 5] = np.nan
    save("nan.nii.gz", nan)
    (tmp / "text.nii.gz").write_text("not an image")
    out["text.nii.gz"] = tmp / "text.nii.gz"
    torch.save(build_unet(3, 1, 3).state_dict(), tmp / "wrong_net.pt")
    out["wrong_net.pt"] = tmp / "wrong_net.pt"
    (tmp / "garbage.pt").write_bytes(os.urandom(2048))
    out["garbage.pt"] = tmp / "garbage.pt"
    (tmp / "huge.nii.gz").write_bytes(os.urandom(5 * 2**20))
    out["huge.nii.gz"] = tmp / "huge.nii.gz"
    return out


def test_hostile_requests_get_4xx_and_change_nothing(server, tmp_path):
    files = _files(tmp_path)
    url = server.url
    image_id = CASES[1].replace(".nii.gz", "")
    before = snapshot(server.studies, server.model_dir)

    def put_label(name, tag="final", image=image_id):
        with open(files[name], "rb") as fh:
            return requests.put(
                f"{url}/datastore/label", params={"image": image, "tag": tag}, files={"label": (name, fh)}
            )

    def put_image(name, image_id):
        with open(files[name], "rb") as fh:
            return requests.put(f"{url}/datastore/", params={"image": image_id}, files={"file": (name, fh)})

    def put_model(name):
        with open(files[name], "rb") as fh:
            return requests.put(f"{url}/model/ct_organs", files={"file": (name, fh)})

    cases = {
        "infer traversal": lambda: requests.post(f"{url}/infer/ct_organs", params={"image": "../case_000"}),
        "infer absolute path": lambda: requests.post(
            f"{url}/infer/ct_organs", params={"image": str(server.studies / CASES[0])}
        ),
        "infer unknown image": lambda: requests.post(f"{url}/infer/ct_organs", params={"image": "nope"}),
        "infer over the memory bound": lambda: requests.post(  # case_000: 1.7M working voxels
            f"{url}/infer/ct_organs", params={"image": CASES[0].replace(".nii.gz", "")}
        ),
        "infer unknown model": lambda: requests.post(f"{url}/infer/nope", params={"image": image_id}),
        "infer malformed params": lambda: requests.post(
            f"{url}/infer/ct_organs", params={"image": image_id}, data={"params": "{oops"}
        ),
        "label tag traversal": lambda: put_label("undeclared.nii.gz", tag="../../escape"),
        "label image traversal": lambda: put_label("undeclared.nii.gz", image="../x"),
        "label wrong shape": lambda: put_label("wrong_shape.nii.gz"),
        "label undeclared value": lambda: put_label("undeclared.nii.gz"),
        "label wrong geometry": lambda: put_label("shifted.nii.gz"),
        "label not an image": lambda: put_label("text.nii.gz"),
        "image traversal id": lambda: put_image("nan.nii.gz", "../../evil"),
        "image corrupt": lambda: put_image("text.nii.gz", "corrupt"),
        "image wrong dimensionality": lambda: put_image("flat2d.nii.gz", "flat"),
        "image non-finite": lambda: put_image("nan.nii.gz", "nan"),
        "image oversize": lambda: put_image("huge.nii.gz", "huge"),
        "model garbage": lambda: put_model("garbage.pt"),
        "model wrong network": lambda: put_model("wrong_net.pt"),
        "train invalid optimizer": lambda: requests.post(
            f"{url}/train/ct_organs", json={"optimizer": "magic"}
        ),
        "train invalid epochs": lambda: requests.post(f"{url}/train/ct_organs", json={"max_epochs": -3}),
        "train unknown model": lambda: requests.post(f"{url}/train/nope", json={}),
        "unknown strategy": lambda: requests.post(f"{url}/activelearning/nope"),
    }
    for name, call in cases.items():
        r = call()
        assert 400 <= r.status_code < 500, f"{name}: {r.status_code} {r.text[:200]}"
        assert r.status_code == 413 or r.json().get("detail"), name
    assert server.alive()
    assert requests.get(f"{url}/info/", timeout=10).status_code == 200
    assert snapshot(server.studies, server.model_dir) == before
    assert not list(server.root.rglob("escape")) and not list(server.root.rglob("evil*"))


def test_concurrent_inferences_while_info_stays_responsive(server):
    image_id = CASES[1].replace(".nii.gz", "")

    def infer():
        r = requests.post(
            f"{server.url}/infer/ct_organs", params={"image": image_id, "output": "image"}, timeout=600
        )
        assert r.status_code == 200, r.text[:200]
        label = np.asarray(nib.Nifti1Image.from_bytes(gzip.decompress(r.content)).dataobj)
        return hashlib.sha256(label.tobytes()).hexdigest()

    alone = infer()
    delays, done = [], threading.Event()

    def poll():
        while not done.is_set():
            t = time.perf_counter()
            assert requests.get(f"{server.url}/info/", timeout=10).status_code == 200
            delays.append(time.perf_counter() - t)
            time.sleep(0.2)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: infer(), range(8)))
    finally:
        done.set()
        poller.join()
    assert results == [alone] * 8
    assert len(delays) >= 3 and max(delays) < 2.0, delays


def test_sigkill_during_label_saves_and_training_loses_nothing(tmp_path):
    studies = copy_datastore(SAMPLE_CT, tmp_path / "studies", CASES)
    model_dir = tmp_path / "model"
    publish_random_model(model_dir)
    served = ModelStore(model_dir / "ct_organs").latest()
    served_bytes = served[1].read_bytes()
    label = studies / "labels" / "final" / CASES[0]
    first = Server(studies, model_dir, tmp_path / "a.log")
    try:
        stop = threading.Event()

        def hammer():  # label saves in a loop until the server dies
            while not stop.is_set():
                try:
                    with open(label, "rb") as fh:
                        requests.put(
                            f"{first.url}/datastore/label",
                            params={"image": "case_011", "tag": "final"},
                            files={"label": ("l.nii.gz", fh)},
                            timeout=30,
                        )
                except requests.RequestException:
                    return

        r = requests.post(f"{first.url}/train/ct_organs", json={"max_epochs": 50, "val_split": 0.34})
        assert r.status_code == 200, r.text
        stats = model_dir / "ct_organs" / "train_stats.json"
        deadline = time.time() + 240
        while time.time() < deadline and not (stats.exists() and json.loads(stats.read_text()).get("epochs")):
            time.sleep(1)
        assert stats.exists(), first.tail()
        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        os.killpg(first.proc.pid, signal.SIGKILL)  # server and its training subprocess
        first.proc.wait()
        stop.set()
        for t in threads:
            t.join()
    finally:
        first.stop()

    index = json.loads((studies / "datastore_v2.json").read_text())  # never truncated
    assert "case_011" in index["objects"]
    saved = nib.load(studies / "labels" / "final" / "case_011.nii.gz")  # old or new, never partial
    assert saved.shape == nib.load(studies / "case_011.nii.gz").shape
    np.asarray(saved.dataobj)
    assert ModelStore(model_dir / "ct_organs").latest()[1].read_bytes() == served_bytes

    second = Server(studies, model_dir, tmp_path / "b.log")
    try:
        info = requests.get(f"{second.url}/info/").json()
        assert info["models"]["ct_organs"]["model_version"] == served[0]
        r = requests.post(f"{second.url}/infer/ct_organs", params={"image": "case_005", "output": "json"})
        assert r.status_code == 200 and r.json()["model_version"] == served[0]
        ds = requests.get(f"{second.url}/datastore/", params={"output": "all"}).json()
        assert "final" in ds["objects"]["case_011"]["labels"]
    finally:
        second.stop()
