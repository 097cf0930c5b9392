"""End to end: OHIF's route to the archive, ``/proxy/dicom``, on the real server and a real Orthanc: big STOW
bodies pass, a hung archive gives 504 within the deadline, a closed client frees the archive connection,
SIGTERM stops the server; the next sample's RetrieveURL is a working link."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import numpy as np
import psutil
import pydicom
import pytest
import requests

from tests.orthanc import Orthanc, write_ct_series
from tests.server import REPO_ROOT, Server, slicer_client_module

pytestmark = pytest.mark.server

SERIES_DIR = REPO_ROOT / "sample-data" / "ct-dicom" / "case_011"
DEADLINE_S = 4  # MONAI_LABEL_DICOMWEB_PROXY_TIMEOUT of the server under test
BOUNDARY = "monailabel-test-boundary"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("proxy")
    orthanc = Orthanc(root / "orthanc")
    orthanc.upload(sorted(SERIES_DIR.iterdir()))
    settings = {
        "MONAI_LABEL_DICOMWEB_PROXY_TIMEOUT": str(DEADLINE_S),
        "MONAI_LABEL_DICOMWEB_READ_TIMEOUT": "2",
        "MONAI_LABEL_DICOMWEB_CACHE_PATH": str(root / "cache"),
    }
    server = Server(orthanc.dicomweb_url, root / "model", root / "server.log", env=settings)
    server.orthanc, server.root = orthanc, root
    try:
        yield server
    finally:
        server.stop()
        orthanc.stop()


def stow_body(path: Path) -> bytes:
    """One DICOM instance as a STOW-RS multipart/related body (what OHIF's SEG export posts)."""
    head = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    return head + path.read_bytes() + f"\r\n--{BOUNDARY}--\r\n".encode()


STOW_HEADERS = {
    "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
    "Accept": "application/dicom+json",
}


def archive_connections(server: Server, port: int) -> int:
    """Open TCP connections from the server's processes to ``port``."""
    procs = [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid).children(recursive=True)]
    return sum(
        1
        for p in procs
        for c in p.net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def wait_for_connections(server: Server, port: int, count: int, within: float) -> int:
    """The number of connections to ``port`` once it equals ``count``, or the last reading after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while (seen := archive_connections(server, port)) != count and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def settled_connections(server: Server, port: int) -> int:
    """The number of connections to ``port`` once it stays the same for a second (at most 10 s)."""
    deadline, last, since = time.monotonic() + 10, -1, time.monotonic()
    while time.monotonic() < deadline:
        seen = archive_connections(server, port)
        if seen != last:
            last, since = seen, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            break
        time.sleep(0.1)
    return last


def test_ten_big_stow_posts_through_the_proxy_each_answer_quickly(env, tmp_path):
    rng = np.random.default_rng(0)
    uids = []
    for i in range(10):
        pixels = rng.integers(-1000, 1000, (1, 420, 420), dtype=np.int16)  # 353 kB of pixel data
        path = write_ct_series(tmp_path / f"s{i}", pixels)[0]
        body = stow_body(path)
        assert len(body) >= 340_000
        start = time.monotonic()
        r = requests.post(f"{env.url}/proxy/dicom/wado/studies", data=body, headers=STOW_HEADERS, timeout=30)
        elapsed = time.monotonic() - start
        assert r.status_code == 200, r.text[:300]
        assert elapsed < 5, (i, elapsed)
        uids.append(str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID))
    found = requests.post(
        f"{env.orthanc.url}/tools/find", json={"Level": "Instance", "Query": {}}, timeout=10
    )
    stored = {
        requests.get(f"{env.orthanc.url}/instances/{i}", timeout=10).json()["MainDicomTags"]["SOPInstanceUID"]
        for i in found.json()
    }
    assert set(uids) <= stored
    # the query string reaches the archive (QIDO filters)
    patient = str(pydicom.dcmread(next(SERIES_DIR.iterdir()), stop_before_pixels=True).PatientID)
    r = requests.get(f"{env.url}/proxy/dicom/qido/studies", params={"PatientID": patient}, timeout=10)
    assert r.status_code == 200 and len(r.json()) == 1, r.text[:300]


def test_next_sample_retrieve_url_carries_the_archive_port(env, tmp_path):
    client = slicer_client_module().MONAILabelClient(env.url, tmpdir=str(tmp_path))
    sample = client.next_sample("random", {})
    url = sample["RetrieveURL"]
    assert url.startswith(f"{env.orthanc.url}/dicom-web/studies/"), url
    assert requests.get(f"{url}/metadata", timeout=10).status_code == 200  # the link works


def test_hung_archive_gives_504_within_the_deadline_and_a_closed_client_frees_it(env, tmp_path):
    body = stow_body(write_ct_series(tmp_path / "s", np.zeros((1, 420, 420), np.int16))[0])
    port = env.orthanc.http_port
    env.orthanc.pause()  # Orthanc's socket still accepts (kernel backlog) but nothing answers
    try:
        for method, kw in (("get", {}), ("post", {"data": body, "headers": STOW_HEADERS})):
            start = time.monotonic()
            r = getattr(requests, method)(f"{env.url}/proxy/dicom/wado/studies", timeout=30, **kw)
            elapsed = time.monotonic() - start
            assert r.status_code == 504, (method, r.text)
            assert r.json()["detail"].startswith("DICOMweb server"), r.text
            assert DEADLINE_S - 0.5 < elapsed < DEADLINE_S + 2, (method, elapsed)

        before = settled_connections(env, port)  # the timed-out requests' connections may still close
        with socket.create_connection(("127.0.0.1", env.port)) as raw:
            raw.sendall(
                f"GET /proxy/dicom/qido/studies HTTP/1.1\r\nHost: 127.0.0.1:{env.port}\r\n\r\n".encode()
            )
            during = wait_for_connections(env, port, before + 1, within=3.0)
        closed_at = time.monotonic()
        after = wait_for_connections(env, port, before, within=3.0)
        assert during == before + 1 and after == before, (before, during, after)
        assert time.monotonic() - closed_at < DEADLINE_S  # freed well inside the deadline
        assert "client closed the connection" in env.tail(200)
    finally:
        env.orthanc.resume()
    env.orthanc.stop()
    try:  # nothing listens: unreachable
        r = requests.get(f"{env.url}/proxy/dicom/qido/studies", timeout=30)
        assert r.status_code == 503 and "unreachable" in r.json()["detail"], r.text
    finally:
        env.orthanc.start()
    assert requests.get(f"{env.url}/proxy/dicom/qido/studies", timeout=10).status_code == 200


def test_sigterm_stops_the_server_within_seconds(env):
    assert env.alive()
    os.killpg(env.proc.pid, signal.SIGTERM)
    start = time.monotonic()
    env.proc.wait(timeout=15)  # raises if it does not stop
    assert time.monotonic() - start < 15
