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
from tests.server import SAMPLE_CT, Server, copy_datastore, publish_random_ct_model, snapshot

pytestmark = pytest.mark.server

CASES = ["case_000.nii.gz", "case_011.nii.gz", "case_005.nii.gz"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, start_server):
    root = tmp_path_factory.mktemp("rel")
    studies = copy_datastore(SAMPLE_CT, root / "studies", CASES)
    (studies / "labels" / "final" / CASES[2]).unlink()  # one image left to label
    publish_random_ct_model(root / "model")
    conf = {"max_upload_mb": "4", "max_working_voxels": "1e6"}
    srv = start_server(studies, root / "model", root / "server.log", conf=conf)
    srv.studies, srv.model_dir, srv.root = studies, root / "model", root
    return srv


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory) -> dict[str, Path]:
    """Uploads that must be refused, by name."""
    tmp = tmp_path_factory.mktemp("hostile")
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
    # a 3-class network small enough to pass the 4 MB upload bound, so it is refused for not fitting
    torch.save(build_unet(3, 1, 3, channels=(4, 8, 16), num_res_units=1).state_dict(), tmp / "wrong_net.pt")
    out["wrong_net.pt"] = tmp / "wrong_net.pt"
    (tmp / "garbage.pt").write_bytes(os.urandom(2048))
    out["garbage.pt"] = tmp / "garbage.pt"
    (tmp / "huge.nii.gz").write_bytes(os.urandom(5 * 2**20))
    out["huge.nii.gz"] = tmp / "huge.nii.gz"
    return out


IMAGE_ID = CASES[1].replace(".nii.gz", "")


def _put_label(url, files, name, tag="final", image=IMAGE_ID):
    with open(files[name], "rb") as fh:
        return requests.put(
            f"{url}/datastore/label", params={"image": image, "tag": tag}, files={"label": (name, fh)}
        )


def _put_image(url, files, name, image_id):
    with open(files[name], "rb") as fh:
        return requests.put(f"{url}/datastore/", params={"image": image_id}, files={"file": (name, fh)})


def _put_model(url, files, name):
    with open(files[name], "rb") as fh:
        return requests.put(f"{url}/model/ct_organs", files={"file": (name, fh)})


def _infer(url, image, **kw):
    return requests.post(f"{url}/infer/ct_organs", params={"image": image}, **kw)


def _infer_upload(url, files, name):
    with open(files[name], "rb") as fh:
        return requests.post(f"{url}/infer/ct_organs", files={"file": (name, fh)}, data={"params": "{}"})


# (case, request(url, files, studies), exact status, what the detail message says; None: no JSON body)
HOSTILE = [
    ("infer traversal", lambda u, f, s: _infer(u, "../case_000"), 400, "image: '../case_000' must be a"),
    ("infer absolute path", lambda u, f, s: _infer(u, str(s / CASES[0])), 400, "image: '/"),
    ("infer unknown image", lambda u, f, s: _infer(u, "nope"), 404, "image: unknown image id 'nope'"),
    # case_000: 1.7M working voxels against the 1e6 bound
    ("infer over the memory bound", lambda u, f, s: _infer(u, "case_000"), 413, "image too large: 1.7M"),
    (
        "infer unknown model",
        lambda u, f, s: requests.post(f"{u}/infer/nope", params={"image": IMAGE_ID}),
        404,
        "model: unknown model 'nope'",
    ),
    ("infer corrupt upload", lambda u, f, s: _infer_upload(u, f, "text.nii.gz"), 422, "cannot read image"),
    (
        "infer unknown result extension",
        lambda u, f, s: _infer(u, IMAGE_ID, data={"params": json.dumps({"result_extension": ".exe"})}),
        400,
        "result_extension",
    ),
    (
        "infer malformed params",
        lambda u, f, s: _infer(u, IMAGE_ID, data={"params": "{oops"}),
        400,
        "params: malformed",
    ),
    (
        "label tag traversal",
        lambda u, f, s: _put_label(u, f, "undeclared.nii.gz", tag="../../escape"),
        400,
        "tag: '../../escape' is not a valid name",
    ),
    (
        "label image traversal",
        lambda u, f, s: _put_label(u, f, "undeclared.nii.gz", image="../x"),
        400,
        "image: '../x' is not a valid name",
    ),
    (
        "label wrong shape",
        lambda u, f, s: _put_label(u, f, "wrong_shape.nii.gz"),
        422,
        "label rejected: label shape",
    ),
    (
        "label undeclared value",
        lambda u, f, s: _put_label(u, f, "undeclared.nii.gz"),
        422,
        "label rejected: label contains undeclared values [7]",
    ),
    (
        "label wrong geometry",
        lambda u, f, s: _put_label(u, f, "shifted.nii.gz"),
        422,
        "label rejected: label geometry (affine)",
    ),
    (
        "label not an image",
        lambda u, f, s: _put_label(u, f, "text.nii.gz"),
        422,
        "label rejected: not a readable image",
    ),
    (
        "image traversal id",
        lambda u, f, s: _put_image(u, f, "nan.nii.gz", "../../evil"),
        400,
        "image: '../../evil' is not a valid name",
    ),
    (
        "image corrupt",
        lambda u, f, s: _put_image(u, f, "text.nii.gz", "corrupt"),
        422,
        "image rejected: not a readable image",
    ),
    (
        "image wrong dimensionality",
        lambda u, f, s: _put_image(u, f, "flat2d.nii.gz", "flat"),
        422,
        "image rejected: image has 2 dimensions",
    ),
    (
        "image non-finite",
        lambda u, f, s: _put_image(u, f, "nan.nii.gz", "nan"),
        422,
        "image rejected: image contains NaN",
    ),
    ("image oversize", lambda u, f, s: _put_image(u, f, "huge.nii.gz", "huge"), 413, None),
    (
        "model garbage",
        lambda u, f, s: _put_model(u, f, "garbage.pt"),
        422,
        "model rejected: not a ct_organs checkpoint",
    ),
    ("model wrong network", lambda u, f, s: _put_model(u, f, "wrong_net.pt"), 422, "model rejected:"),
    (
        "train invalid optimizer",
        lambda u, f, s: requests.post(f"{u}/train/ct_organs", json={"optimizer": "magic"}),
        400,
        "invalid train option optimizer: 'magic'; valid:",
    ),
    (
        "train invalid epochs",
        lambda u, f, s: requests.post(f"{u}/train/ct_organs", json={"max_epochs": -3}),
        400,
        "invalid train option max_epochs: -3 is outside",
    ),
    (
        "train unknown model",
        lambda u, f, s: requests.post(f"{u}/train/nope", json={}),
        404,
        "trainer: unknown model 'nope'",
    ),
    (
        "unknown strategy",
        lambda u, f, s: requests.post(f"{u}/activelearning/nope"),
        404,
        "strategy: unknown strategy 'nope'",
    ),
]


@pytest.mark.parametrize(
    ("request_of", "status", "detail"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE]
)
def test_hostile_request_gets_its_status_and_changes_nothing(
    server, hostile_files, request_of, status, detail
):
    before = snapshot(server.studies, server.model_dir)
    r = request_of(server.url, hostile_files, server.studies)
    assert r.status_code == status, r.text[:300]
    if detail is not None:
        assert detail in r.json()["detail"], r.text[:300]
    assert server.alive()
    assert requests.get(f"{server.url}/info/", timeout=10).status_code == 200
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
    delays, statuses, done = [], [], threading.Event()

    def poll():  # records only: an assert in this thread could not fail the test
        while not done.is_set():
            t = time.perf_counter()
            statuses.append(requests.get(f"{server.url}/info/", timeout=10).status_code)
            delays.append(time.perf_counter() - t)
            time.sleep(0.2)

    with ThreadPoolExecutor(1) as poll_pool:
        poller = poll_pool.submit(poll)
        try:
            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(lambda _: infer(), range(8)))
        finally:
            done.set()
        poller.result()  # re-raises what the poller raised (a timeout, a refused connection)
    assert results == [alone] * 8
    assert statuses and set(statuses) == {200}, statuses
    assert len(delays) >= 3 and max(delays) < 2.0, delays


def test_sigkill_during_label_saves_and_training_loses_nothing(tmp_path):
    studies = copy_datastore(SAMPLE_CT, tmp_path / "studies", CASES)
    model_dir = tmp_path / "model"
    publish_random_ct_model(model_dir)
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
