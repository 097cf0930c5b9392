"""End to end on DICOMweb: the real MONAI Label server on a real Orthanc, driven as OHIF and 3D Slicer
drive it: next sample, infer on the series grid, DICOM SEG out, labels saved as SEG, outages."""

from __future__ import annotations

import gzip
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
from lib.planning.presets import get_preset, shipped_checkpoint
from tests.orthanc import Orthanc, write_ct_series
from tests.server import REPO_ROOT, mean_dice, publish_random_ct_model

pytestmark = pytest.mark.server

SERIES_DIR = REPO_ROOT / "sample-data" / "ct-dicom" / "case_011"
SAME_AS_NIFTI = REPO_ROOT / "sample-data" / "ct" / "case_011.nii.gz"
ORGANS = dict(get_preset("ct_organs").labels)
TIMEOUTS = {"MONAI_LABEL_DICOMWEB_READ_TIMEOUT": "2", "MONAI_LABEL_DICOMWEB_PROXY_TIMEOUT": "2"}
BOUND_S = 20  # an answer (any answer) within this many seconds while Orthanc is hung or down
_A, _B = np.radians(20), np.radians(15)  # rotated 20 deg about z, then tilted 15 deg
OBLIQUE = tuple(
    np.round([np.cos(_A), np.sin(_A), 0, -np.sin(_A) * np.cos(_B), np.cos(_A) * np.cos(_B), np.sin(_B)], 6)
)


def model_dir(root: Path) -> Path:
    """The test's model folder: empty when the shipped default model exists, else a random-init one."""
    folder = root / "model"
    if not shipped_checkpoint("ct_organs").exists():
        publish_random_ct_model(folder)
    return folder


def itk_grid(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    """(shape, RAS affine) of a series folder as MONAI's ITK reader sees it: the series' own grid."""
    image = LoadImage(image_only=True)(str(path))
    return tuple(image.shape), np.asarray(image.affine, np.float64)


def infer(
    url: str, image: str, output: str = "image", params: dict | None = None, timeout: float = 300, **kw
) -> requests.Response:
    return requests.post(
        f"{url}/infer/ct_organs",
        params={"image": image, "output": output},
        data={"params": json.dumps(params or {})},
        timeout=timeout,
        **kw,
    )


def save_bin(url: str, image: str, label: np.ndarray, timeout: float = 120) -> requests.Response:
    """PUT a label as OHIF does: ``label.bin``, raw uint8 voxels, X fastest."""
    return requests.put(
        f"{url}/datastore/label",
        params={"image": image},
        files={"label": ("label.bin", np.asarray(label, np.uint8).tobytes(order="F"))},
        data={"params": "{}"},
        timeout=timeout,
    )


def boxes(shape: tuple[int, ...]) -> np.ndarray:
    """A label map with a liver and a spleen box, on a grid of ``shape``."""
    x, y, z = shape
    truth = np.zeros(shape, np.uint8)
    truth[x // 4 : x // 2, y // 4 : y // 2, 1 : z - 1] = ORGANS["liver"]
    truth[x // 2 + 5 : 3 * x // 4, y // 2 : 3 * y // 4, 2 : z - 2] = ORGANS["spleen"]
    return truth


def oblique_copy(folder: Path) -> list[Path]:
    """A doubly oblique series cut from the sample CT (a new study, patient ``SYN001``)."""
    data = np.asarray(nib.load(SAME_AS_NIFTI).dataobj)[40:200, 30:150, 2:12]
    return write_ct_series(folder, data.transpose(2, 1, 0).astype(np.int16), (1.0, 1.0, 5.0), OBLIQUE)


def series_uid(folder: Path) -> str:
    return str(pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).SeriesInstanceUID)


def stored_segs(orthanc: Orthanc) -> dict[str, pydicom.Dataset]:
    """Referenced SeriesInstanceUID -> the SEG instance Orthanc holds for it."""
    out = {}
    for series in requests.get(f"{orthanc.url}/series", timeout=10).json():
        info = requests.get(f"{orthanc.url}/series/{series}", timeout=10).json()
        if info["MainDicomTags"].get("Modality") == "SEG":
            raw = requests.get(f"{orthanc.url}/instances/{info['Instances'][0]}/file", timeout=10).content
            seg = pydicom.dcmread(pydicom.filebase.DicomBytesIO(raw))
            out[str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)] = seg
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory, start_server):
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("dicomweb")
        for key, value in TIMEOUTS.items():
            mp.setenv(key, value)
        mp.setenv("MONAI_LABEL_DICOMWEB_CACHE_PATH", str(root / "cache"))
        orthanc = Orthanc(root / "orthanc")
        orthanc.upload(sorted(SERIES_DIR.iterdir()))
        orthanc.upload(oblique_copy(root / "oblique"))
        server = start_server(orthanc.dicomweb_url, model_dir(root), root / "server.log")
        server.orthanc = orthanc
        server.series = {"lps": SERIES_DIR, "oblique": root / "oblique"}
        try:
            yield server
        finally:
            server.stop()
            orthanc.stop()


@pytest.fixture(scope="module")
def client(env, slicer_client):
    return slicer_client(env.url)


def test_next_sample_is_a_series_with_the_fields_ohif_shows(client, env):
    sample = client.next_sample("random", {})
    folder = next(f for f in env.series.values() if series_uid(f) == sample["id"])
    source = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True)
    assert sample["SeriesInstanceUID"] == sample["id"]
    for field in ("StudyInstanceUID", "PatientID", "Modality", "StudyDate", "StudyTime"):
        assert sample[field] == str(source[field].value), field
    assert sample["RetrieveURL"].endswith(f"/series/{sample['id']}")


@pytest.mark.parametrize("name", ["lps", "oblique"])
def test_infer_and_dicom_seg_on_the_series_grid(client, env, name, tmp_path):
    folder = env.series[name]
    uid = series_uid(folder)
    path, params = client.infer("ct_organs", uid, {"result_extension": ".nii.gz"})
    shape, affine = itk_grid(folder)
    out = nib.load(path)
    assert out.shape == shape
    np.testing.assert_allclose(out.affine, affine, atol=1e-3)
    label = np.asarray(out.dataobj)

    ohif = {"result_extension": ".nrrd", "result_dtype": "uint8", "result_compress": False}  # OHIF's params
    r = infer(env.url, uid, "dicom_seg", {**ohif, "restore_label_idx": False, "label_info": []})
    assert r.status_code == 200, r.text
    seg_file = tmp_path / "seg.dcm"
    seg_file.write_bytes(r.content)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]
    seg = hd.seg.segread(seg_file)
    assert [(d.SegmentNumber, d.SegmentLabel) for d in seg.SegmentSequence] == [
        (v, n) for n, v in ORGANS.items()
    ]
    for d in seg.SegmentSequence:
        assert d.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
        assert len(d.RecommendedDisplayCIELabValue) == 3
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uid
    assert {uids[2] for uids in seg.get_source_image_uids()} <= {ds.SOPInstanceUID for ds in sources}
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert (seg.Rows, seg.Columns) == (sources[0].Rows, sources[0].Columns)
    back, _ = read_dicom_seg(seg_file, folder)  # frames placed by position and orientation
    np.testing.assert_array_equal(back, label)
    pydicom_seg.MultiClassReader().read(pydicom.dcmread(seg_file))


def test_dicom_series_and_nifti_give_the_same_label(env):
    on_dicom = infer(env.url, series_uid(SERIES_DIR), params={"result_extension": ".nii.gz"})
    assert on_dicom.status_code == 200, on_dicom.text
    with open(SAME_AS_NIFTI, "rb") as fh:
        on_nifti = infer(
            env.url, "", params={"result_extension": ".nii.gz"}, files={"file": ("case_011.nii.gz", fh)}
        )
    assert on_nifti.status_code == 200, on_nifti.text
    a, b = (
        np.asarray(nib.Nifti1Image.from_bytes(gzip.decompress(r.content)).dataobj)
        for r in (on_dicom, on_nifti)
    )
    assert a.shape == b.shape
    assert mean_dice(a, b) >= 0.99


def test_saved_labels_become_segs_in_orthanc_and_training_data(client, env, tmp_path):
    lps, oblique = (series_uid(env.series[n]) for n in ("lps", "oblique"))
    truths = {uid: boxes(itk_grid(env.series[n])[0]) for uid, n in ((lps, "lps"), (oblique, "oblique"))}

    r = save_bin(env.url, lps, truths[lps])  # as OHIF sends it
    assert r.status_code == 200, r.text
    nifti = tmp_path / "label.nii.gz"  # as 3D Slicer sends it
    nib.save(nib.Nifti1Image(truths[oblique], itk_grid(env.series["oblique"])[1]), nifti)
    client.save_label(oblique, str(nifti), tag="final", params={"label_info": []})

    segs = stored_segs(env.orthanc)
    assert set(segs) == {lps, oblique}
    for name, uid in (("lps", lps), ("oblique", oblique)):
        sources = {
            pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in env.series[name].iterdir()
        }
        refs = segs[uid].ReferencedSeriesSequence[0].ReferencedInstanceSequence
        assert {item.ReferencedSOPInstanceUID for item in refs} <= sources
        path = tmp_path / f"{name}.dcm"
        segs[uid].save_as(path)
        np.testing.assert_array_equal(read_dicom_seg(path, env.series[name])[0], truths[uid])

    stats = requests.get(f"{env.url}/datastore/", params={"output": "stats"}, timeout=30).json()
    assert stats["total"] == 2 and stats["completed"] == 2
    objects = requests.get(f"{env.url}/datastore/", params={"output": "all"}, timeout=30).json()["objects"]
    for uid in (lps, oblique):
        info = objects[uid]["labels"]["final"]["info"]
        assert info["SeriesInstanceUID"] == segs[uid].SeriesInstanceUID
    r = requests.post(f"{env.url}/activelearning/random", timeout=30)  # nothing left to label
    assert r.status_code == 404 and "every image is labelled (2 of 2" in r.json()["detail"]

    items = requests.get(f"{env.url}/datastore/", params={"output": "train"}, timeout=60).json()
    assert len(items) == 2
    for item in items:
        uid = Path(item["image"]).name.removesuffix(".nii.gz")
        np.testing.assert_array_equal(np.asarray(nib.load(item["label"]).dataobj), truths[uid])

    r = save_bin(env.url, lps, truths[lps][:, :, :-1])
    assert r.status_code == 422 and "label.bin" in r.json()["detail"]
    r = save_bin(env.url, lps, truths[lps] * 9)
    assert r.status_code == 422 and "undeclared" in r.json()["detail"]


def test_training_uses_the_seg_labels(env):
    options = {"max_epochs": 1, "train_batch_size": 1, "num_samples": 1, "amp": False, "val_split": 0.5}
    r = requests.post(f"{env.url}/train/ct_organs", json=options, timeout=60)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 300
    while requests.get(f"{env.url}/train/", timeout=30).json().get("status") in ("SUBMITTED", "RUNNING"):
        assert time.monotonic() < deadline, "training did not finish in 300 s"
        time.sleep(2)
    stats = requests.get(f"{env.url}/info/", timeout=30).json()["train_stats"]["ct_organs"]
    assert stats["status"] == "finished", stats
    trained_on = {name.removesuffix(".nii.gz") for names in stats["split"].values() for name in names}
    assert trained_on == {series_uid(folder) for folder in env.series.values()}


def test_hung_or_stopped_orthanc_gives_clear_errors_and_recovers(env):
    url, orthanc = env.url, env.orthanc
    uid = series_uid(SERIES_DIR)
    truth = boxes(itk_grid(SERIES_DIR)[0])
    wait = BOUND_S + 10
    calls = {  # what needs Orthanc fails fast and clearly; what does not keeps working
        "save label": (lambda: save_bin(url, uid, truth, timeout=wait), 503),
        "infer on a series not seen yet": (lambda: infer(url, "1.2.3.4.5", timeout=wait), 503),
        "training data": (lambda: requests.get(f"{url}/datastore/?output=train", timeout=wait), 503),
        # the proxy is a gateway: 504 when the archive hangs, 503 when it is down
        "OHIF's proxy": (
            lambda: requests.get(f"{url}/proxy/dicom/qido/studies", timeout=wait),
            {"pause": 504, "stop": 503},
        ),
        "info": (lambda: requests.get(f"{url}/info/", timeout=wait), 200),
        "infer on a cached series": (lambda: infer(url, uid, timeout=wait), 200),
    }
    for down, up in ((orthanc.pause, orthanc.resume), (orthanc.stop, orthanc.start)):
        down()
        try:
            for what, (call, status) in calls.items():
                status = status[down.__name__] if isinstance(status, dict) else status
                start = time.monotonic()
                r = call()
                assert r.status_code == status, (down.__name__, what, r.text[:300])
                if status in (503, 504):
                    assert r.json()["detail"].startswith("DICOMweb server"), r.text
                assert time.monotonic() - start < BOUND_S, (down.__name__, what)
        finally:
            up()
        r = save_bin(url, uid, truth)
        assert r.status_code == 200, r.text
    assert requests.get(f"{url}/proxy/dicom/qido/studies", timeout=10).status_code == 200
    assert requests.get(f"{url}/datastore/?output=train", timeout=60).status_code == 200
