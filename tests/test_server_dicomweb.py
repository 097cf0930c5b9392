"""End to end on DICOMweb: the real MONAI Label server on a real Orthanc, driven as OHIF and 3D Slicer
drive it: next sample, infer on the series grid, DICOM SEG out, labels saved as SEG, outages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pydicom_seg
import pytest
import requests
from monai.transforms import LoadImage

from lib.io import read_dicom_seg
from lib.planning.presets import build_network, get_preset
from lib.training.model_store import ModelStore
from lib.training.recipe import checkpoint_for
from monailabel_app.main import PRETRAINED_DIR
from tests.orthanc import Orthanc
from tests.server import REPO_ROOT, Server, slicer_client_module

pytestmark = pytest.mark.server

SERIES_DIR = REPO_ROOT / "sample-data" / "ct-dicom" / "case_011"
SAME_AS_NIFTI = REPO_ROOT / "sample-data" / "ct" / "case_011.nii.gz"
ORGANS = dict(get_preset("ct_organs").labels)
TIMEOUTS = {"MONAI_LABEL_DICOMWEB_READ_TIMEOUT": "3", "MONAI_LABEL_DICOMWEB_PROXY_TIMEOUT": "3"}
BOUND_S = 20  # an answer (any answer) within this many seconds while Orthanc is hung or down


def model_dir(root: Path) -> Path:
    """The test's model folder: empty when the shipped default model exists, else a random-init one."""
    folder = root / "model"
    if not (Path(PRETRAINED_DIR) / "ct_organs.pt").exists():
        preset = get_preset("ct_organs")
        state = build_network(preset).state_dict()
        ModelStore(folder / preset.name).publish(checkpoint_for(preset, state, {"note": "random init"}))
    return folder


def itk_grid(path) -> tuple[tuple[int, ...], np.ndarray]:
    image = LoadImage(image_only=True)(str(path))
    return tuple(image.shape), np.asarray(image.affine, np.float64)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Dice over the labels present in either map (1.0 when both are empty)."""
    values = sorted((set(np.unique(a)) | set(np.unique(b))) - {0})
    scores = [2 * np.sum((a == v) & (b == v)) / (np.sum(a == v) + np.sum(b == v)) for v in values]
    return float(np.mean(scores)) if scores else 1.0


def infer(url: str, image: str, output: str = "image", params: dict | None = None, **kw) -> requests.Response:
    return requests.post(
        f"{url}/infer/ct_organs",
        params={"image": image, "output": output},
        data={"params": json.dumps(params or {})},
        timeout=300,
        **kw,
    )


def save_bin(url: str, image: str, label: np.ndarray, timeout: float = 120) -> requests.Response:
    """PUT a label as OHIF does: ``label.bin``, raw uint8 voxels, X fastest."""
    blob = np.asarray(label, np.uint8).tobytes(order="F")
    return requests.put(
        f"{url}/datastore/label",
        params={"image": image},
        files={"label": ("label.bin", blob)},
        data={"params": json.dumps({"label_info": [{"name": n, "idx": v} for n, v in ORGANS.items()]})},
        timeout=timeout,
    )


def segs_in(orthanc: Orthanc) -> list[pydicom.Dataset]:
    found = requests.get(f"{orthanc.dicomweb_url}/series", params={"Modality": "SEG"}, timeout=10).json()
    return [pydicom.Dataset.from_json(s) for s in found]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("dicomweb")
        for key, value in TIMEOUTS.items():
            mp.setenv(key, value)
        mp.setenv("MONAI_LABEL_DICOMWEB_CACHE_PATH", str(root / "cache"))
        orthanc = Orthanc(root / "orthanc")
        orthanc.upload(sorted(SERIES_DIR.iterdir()))
        server = Server(orthanc.dicomweb_url, model_dir(root), root / "server.log")
        server.orthanc, server.root = orthanc, root
        try:
            yield server
        finally:
            server.stop()
            orthanc.stop()


@pytest.fixture(scope="module")
def series_uid() -> str:
    return str(pydicom.dcmread(next(SERIES_DIR.iterdir()), stop_before_pixels=True).SeriesInstanceUID)


def test_next_sample_infer_seg_save_label(env, series_uid, tmp_path):
    client = slicer_client_module().MONAILabelClient(env.url, tmpdir=str(tmp_path))
    sample = client.next_sample("random", {})
    assert sample["id"] == sample["SeriesInstanceUID"] == series_uid
    assert sample["Modality"] == "CT" and sample["PatientID"] == "case_011"
    assert sample["StudyInstanceUID"] and sample["StudyDate"] == "20240101"

    # infer: the label lies on the series' own grid, as ITK reads the series
    path, params = client.infer("ct_organs", series_uid, {"result_extension": ".nii.gz"})
    shape, affine = itk_grid(SERIES_DIR)
    out = nib.load(path)
    assert out.shape == shape
    np.testing.assert_allclose(out.affine, affine, atol=1e-3)
    label = np.asarray(out.dataobj)

    # output=dicom_seg: a valid SEG on the source geometry, one named, coded, coloured segment per label
    r = infer(env.url, series_uid, "dicom_seg", {"label_info": []})
    assert r.status_code == 200, r.text
    seg_file = tmp_path / "seg.dcm"
    seg_file.write_bytes(r.content)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(SERIES_DIR.iterdir())]
    seg = hd.seg.segread(seg_file)
    assert [(d.SegmentNumber, d.SegmentLabel) for d in seg.SegmentSequence] == [
        (v, n) for n, v in ORGANS.items()
    ]
    for d in seg.SegmentSequence:
        assert d.SegmentedPropertyTypeCodeSequence[0].CodeValue and len(d.RecommendedDisplayCIELabValue) == 3
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert {uids[2] for uids in seg.get_source_image_uids()} <= {ds.SOPInstanceUID for ds in sources}
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert (seg.Rows, seg.Columns) == (sources[0].Rows, sources[0].Columns)
    back, _ = read_dicom_seg(seg_file, SERIES_DIR)
    np.testing.assert_array_equal(back, label)  # geometry identical to the source: voxel for voxel
    pydicom_seg.MultiClassReader().read(pydicom.dcmread(seg_file))

    # save as OHIF does: the raw voxel blob; Orthanc then holds a SEG of it and the series is labelled
    truth = np.zeros(shape, np.uint8)
    truth[100:180, 60:140, 4:10] = ORGANS["liver"]
    truth[200:240, 60:100, 5:9] = ORGANS["spleen"]
    r = save_bin(env.url, series_uid, truth)
    assert r.status_code == 200, r.text
    stored = [s for s in segs_in(env.orthanc) if s.SeriesDescription == "MONAI Label annotation"]
    assert len(stored) == 1
    study = sample["StudyInstanceUID"]
    url = f"{env.orthanc.dicomweb_url}/studies/{study}/series/{stored[0].SeriesInstanceUID}/instances"
    instance = requests.get(url, timeout=10).json()[0]["00080018"]["Value"][0]
    raw = requests.get(
        f"{url}/{instance}", headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=10
    )
    assert raw.status_code == 200
    assert client.datastore()["objects"][series_uid]["labels"]["final"]["info"]["SeriesInstanceUID"] == (
        stored[0].SeriesInstanceUID
    )
    stats = requests.get(f"{env.url}/datastore/", params={"output": "stats"}, timeout=30).json()
    assert stats["total"] == 1 and stats["completed"] == 1
    assert requests.post(f"{env.url}/activelearning/random", timeout=30).json() == {}  # nothing left

    # training's view: the SEG, back as a NIfTI label on the series grid
    items = requests.get(f"{env.url}/datastore/", params={"output": "train"}, timeout=60).json()
    assert len(items) == 1
    np.testing.assert_array_equal(np.asarray(nib.load(items[0]["label"]).dataobj), truth)

    # a blob of the wrong size is a clear 422
    r = save_bin(env.url, series_uid, truth[:, :, :-1])
    assert r.status_code == 422 and "label.bin" in r.json()["detail"]


def test_dicom_series_and_nifti_give_the_same_label(env, series_uid):
    on_dicom = infer(env.url, series_uid, params={"result_extension": ".nii.gz"})
    assert on_dicom.status_code == 200, on_dicom.text
    with open(SAME_AS_NIFTI, "rb") as fh:
        on_nifti = infer(
            env.url, "", params={"result_extension": ".nii.gz"}, files={"file": ("case_011.nii.gz", fh)}
        )
    assert on_nifti.status_code == 200, on_nifti.text
    a = np.asarray(nib.Nifti1Image.from_bytes(_gunzip(on_dicom.content)).dataobj)
    b = np.asarray(nib.Nifti1Image.from_bytes(_gunzip(on_nifti.content)).dataobj)
    assert a.shape == b.shape
    assert dice(a, b) >= 0.99


def _gunzip(data: bytes) -> bytes:
    import gzip

    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _timed(call) -> tuple[requests.Response, float]:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def test_hung_or_stopped_orthanc_gives_clear_errors_and_recovers(env, series_uid):
    url, orthanc = env.url, env.orthanc
    truth = np.zeros(itk_grid(SERIES_DIR)[0], np.uint8)
    truth[10:20, 10:20, 2:4] = ORGANS["kidney_left"]
    for down, up in ((orthanc.pause, orthanc.resume), (orthanc.stop, orthanc.start)):
        down()
        try:
            r, took = _timed(lambda: save_bin(url, series_uid, truth, timeout=BOUND_S + 10))
            assert r.status_code == 503 and "DICOMweb server" in r.json()["detail"], r.text
            assert took < BOUND_S
            r, took = _timed(lambda: requests.get(f"{url}/proxy/dicom/qido/studies", timeout=BOUND_S + 10))
            assert r.status_code == 503 and "DICOMweb server" in r.json()["detail"], r.text
            assert took < BOUND_S
            r, took = _timed(lambda: requests.get(f"{url}/info/", timeout=BOUND_S + 10))
            assert r.status_code == 200 and took < BOUND_S
        finally:
            up()
        r = save_bin(url, series_uid, truth)
        assert r.status_code == 200, r.text
    assert requests.get(f"{url}/proxy/dicom/qido/studies", timeout=10).status_code == 200
