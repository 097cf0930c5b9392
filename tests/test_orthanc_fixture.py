"""The Orthanc test server: serves an uploaded series over DICOMweb, and can hang and go down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.orthanc import Orthanc, write_ct_series

DICOM_JSON = {"Accept": "application/dicom+json"}


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    with Orthanc(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture
def series(tmp_path: Path) -> list[pydicom.Dataset]:
    pixels = (np.arange(3 * 12 * 16).reshape(3, 12, 16) - 200).astype(np.int16)
    return [pydicom.dcmread(p) for p in write_ct_series(tmp_path / "ct", pixels)]


def qido(url: str, timeout: float = 10) -> list[dict]:
    response = requests.get(url, headers=DICOM_JSON, timeout=timeout)
    response.raise_for_status()
    return response.json()


def test_uploaded_series_is_served_over_dicomweb(orthanc, series, tmp_path):
    orthanc.upload(sorted((tmp_path / "ct").iterdir()))
    study, series_uid = series[0].StudyInstanceUID, series[0].SeriesInstanceUID

    studies = qido(f"{orthanc.dicomweb_url}/studies")
    assert [s["0020000D"]["Value"][0] for s in studies] == [study]
    found = qido(f"{orthanc.dicomweb_url}/studies/{study}/series")
    assert [s["0020000E"]["Value"][0] for s in found] == [series_uid]
    instances = qido(f"{orthanc.dicomweb_url}/studies/{study}/series/{series_uid}/instances")
    assert {i["00080018"]["Value"][0] for i in instances} == {ds.SOPInstanceUID for ds in series}

    middle = series[1]
    client = DICOMwebClient(orthanc.dicomweb_url)
    retrieved = client.retrieve_instance(study, series_uid, middle.SOPInstanceUID)
    assert retrieved.ImagePositionPatient == middle.ImagePositionPatient
    np.testing.assert_array_equal(retrieved.pixel_array, middle.pixel_array)


def test_pause_hangs_requests_until_resume(orthanc):
    orthanc.pause()
    with pytest.raises(requests.Timeout):
        requests.get(f"{orthanc.dicomweb_url}/studies", timeout=2)
    orthanc.resume()
    assert qido(f"{orthanc.dicomweb_url}/studies", timeout=2) == []


def test_stop_refuses_connections_and_start_keeps_storage(orthanc, series, tmp_path):
    orthanc.upload(sorted((tmp_path / "ct").iterdir()))
    orthanc.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{orthanc.dicomweb_url}/studies", timeout=2)
    orthanc.start()
    studies = qido(f"{orthanc.dicomweb_url}/studies")
    assert [s["0020000D"]["Value"][0] for s in studies] == [series[0].StudyInstanceUID]
