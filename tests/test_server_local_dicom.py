"""End to end: a local folder of DICOM series (one folder per series) works like a NIfTI folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests

from tests.server import Server, slicer_client_module
from tests.test_server_dicomweb import SAME_AS_NIFTI, SERIES_DIR, boxes, itk_grid, model_dir, save_bin

pytestmark = pytest.mark.server

DOTTED = "1.2.826.0.1.3680043.11"  # series folders are often named by UID


@pytest.fixture(scope="module")
def local_dicom(tmp_path_factory):
    root = tmp_path_factory.mktemp("local-dicom")
    studies = root / "studies"
    shutil.copytree(SERIES_DIR, studies / "case_011")
    shutil.copytree(SERIES_DIR, studies / DOTTED)
    server = Server(studies, model_dir(root), root / "server.log")
    server.studies = studies
    yield server
    server.stop()


def test_local_folder_of_dicom_series_works_like_a_nifti_folder(local_dicom, tmp_path):
    client = slicer_client_module().MONAILabelClient(local_dicom.url, tmpdir=str(tmp_path))
    assert set(client.datastore()["objects"]) == {"case_011", DOTTED}
    sample = client.next_sample("random", {})
    assert sample["id"] in {"case_011", DOTTED} and sample["path"].endswith(f"{sample['id']}.nii.gz")
    path, _ = client.infer("ct_organs", "case_011", {"result_extension": ".nii.gz"})
    shape, affine = itk_grid(local_dicom.studies / "case_011")
    out = nib.load(path)
    assert out.shape == shape
    np.testing.assert_allclose(out.affine, affine, atol=1e-3)
    r = requests.get(f"{local_dicom.url}/datastore/image", params={"image": "case_011"}, timeout=30)
    assert r.status_code == 200  # what 3D Slicer downloads

    truth = boxes(shape)
    r = save_bin(local_dicom.url, "case_011", truth)
    assert r.status_code == 200, r.text
    assert "final" in client.datastore()["objects"]["case_011"]["labels"]
    items = requests.get(f"{local_dicom.url}/datastore/", params={"output": "train"}, timeout=30).json()
    assert [Path(i["image"]).name for i in items] == ["case_011"]  # the series folder, read by ITK
    np.testing.assert_array_equal(np.asarray(nib.load(items[0]["label"]).dataobj), truth)

    r = requests.put(
        f"{local_dicom.url}/datastore/image",
        files={"file": ("x.nii.gz", SAME_AS_NIFTI.read_bytes())},
        timeout=30,
    )
    assert r.status_code == 409 and "DICOM series" in r.json()["detail"]
