"""Start a real Orthanc DICOMweb server on 127.0.0.1 for tests, and write tiny synthetic CT series.

Needs the Debian packages ``orthanc`` and ``orthanc-dicomweb`` (CI installs them); without them
``Orthanc(...)`` raises, so tests fail loudly instead of skipping forever.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pydicom
import requests
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from lib.training.distributed import free_port
from tests.server import wait_until_answering

ORTHANC_BIN = Path("/usr/sbin/Orthanc")
INSTALL_HINT = "apt-get install -y orthanc orthanc-dicomweb"


def dicomweb_plugin() -> Path:
    """The DICOMweb plugin library that the ``orthanc-dicomweb`` Debian package installed."""
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"Orthanc DICOMweb plugin is not installed; run `{INSTALL_HINT}`") from exc
    libs = {
        Path(line).resolve()
        for line in listing.splitlines()
        if re.search(r"/libOrthancDicomWeb\.so[.0-9]*$", line) and Path(line).exists()
    }
    if not libs:
        raise RuntimeError(f"no libOrthancDicomWeb.so in `dpkg -L orthanc-dicomweb`; run `{INSTALL_HINT}`")
    return sorted(libs)[0]


class Orthanc:
    """An Orthanc process with the DICOMweb plugin, storing into ``workdir``; use as a context manager.

    ``stop()`` then ``start()`` brings it back on the same ports with the same storage (server down,
    then back); ``pause()``/``resume()`` freeze and thaw it with SIGSTOP/SIGCONT (a hung server).
    """

    def __init__(self, workdir: Path, timeout: float = 30.0) -> None:
        if not ORTHANC_BIN.exists():
            raise RuntimeError(f"Orthanc not found at {ORTHANC_BIN}; run `{INSTALL_HINT}`")
        self.workdir = Path(workdir)
        self.timeout = timeout
        self.http_port = free_port()
        self.dicom_port = free_port()
        while self.dicom_port == self.http_port:
            self.dicom_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.dicomweb_url = f"{self.url}/dicom-web"
        self.log = self.workdir / "orthanc.log"
        self.config = self.workdir / "orthanc.json"
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            json.dumps(
                {
                    "Name": "monailabel-tests",
                    "StorageDirectory": str(storage),
                    "IndexDirectory": str(storage),
                    "HttpPort": self.http_port,
                    "DicomPort": self.dicom_port,
                    "RemoteAccessAllowed": False,
                    "AuthenticationEnabled": False,
                    "SaveJobs": False,
                    "ConcurrentJobs": 1,
                    "HttpThreadsCount": 8,
                    "Plugins": [str(dicomweb_plugin())],
                    "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
                },
                indent=2,
            )
        )
        self.proc: subprocess.Popen | None = None
        self._paused = False
        self.start()

    def start(self) -> None:
        """Start Orthanc (again) and wait until ``GET /system`` answers."""
        if self.proc is not None:
            raise RuntimeError("Orthanc is already running")
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [str(ORTHANC_BIN), str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until_answering(self.proc, f"{self.url}/system", self.timeout, self.tail, "Orthanc")
        except RuntimeError:
            self.proc = None
            raise
        except TimeoutError:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate Orthanc (resuming it first if paused); kill it if it does not exit in ``timeout``."""
        if self.proc is None:
            return
        if self._paused:
            self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections are accepted by the kernel but never answered.

        SIGSTOP reaches each thread asynchronously, so this waits until every thread is stopped
        (state ``T`` in ``/proc``); otherwise a request sent right after could still be answered.
        """
        pid = self._pid()
        os.kill(pid, signal.SIGSTOP)
        self._paused = True
        deadline = time.monotonic() + self.timeout
        while not all(_thread_state(stat) in {"T", ""} for stat in Path(f"/proc/{pid}/task").glob("*/stat")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"Orthanc (pid {pid}) did not stop within {self.timeout:.0f} s")
            time.sleep(0.01)

    def resume(self) -> None:
        """Thaw a paused process (SIGCONT)."""
        os.kill(self._pid(), signal.SIGCONT)
        self._paused = False

    def upload(self, paths: Iterable[Path | str]) -> list[str]:
        """POST each DICOM file to ``/instances``; returns the Orthanc instance IDs."""
        ids = []
        for path in paths:
            response = requests.post(
                f"{self.url}/instances",
                data=Path(path).read_bytes(),
                headers={"Content-Type": "application/dicom"},
                timeout=30,
            )
            if response.status_code != 200:
                raise RuntimeError(f"Orthanc rejected {path}: {response.status_code} {response.text}")
            ids.append(response.json()["ID"])
        return ids

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the Orthanc log."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def _pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("Orthanc is not running")
        return self.proc.pid

    def __enter__(self) -> Orthanc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _thread_state(stat: Path) -> str:
    """The state letter of one ``/proc/<pid>/task/<tid>/stat`` ("R", "S", "T", ...); "" if it has exited."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return ""


def write_ct_series(
    folder: Path,
    pixels: np.ndarray,
    spacing: tuple[float, float, float] = (0.7, 0.8, 2.5),
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    origin: Sequence[float] = (-10.0, -20.0, 30.0),
) -> list[Path]:
    """Write ``pixels`` (slices, rows, columns; int16 HU) as a single-frame CT series in ``folder``.

    ``orientation`` is ImageOrientationPatient (row direction, column direction, LPS);
    ``spacing`` is (column spacing along the row direction, row spacing, slice spacing). Slice ``k``
    lies at ``origin + k * spacing[2] * (row x column)``. Instance numbers and file names run the
    other way (as on many scanners), so readers must sort by position. Returns paths in slice order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    row_dir, col_dir = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row_dir, col_dir)
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    n_slices = pixels.shape[0]
    paths = []
    for k in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Synthetic^CT", "SYN001", "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference, ""
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", ""
        ds.ReferringPhysicianName, ds.Manufacturer = "", "synthetic"
        ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "CT", 1, "synthetic CT"
        ds.InstanceNumber = n_slices - k
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.ImagePositionPatient = [float(v) for v in np.asarray(origin, float) + k * spacing[2] * normal]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = pixels.shape[1], pixels.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.PixelData = np.ascontiguousarray(pixels[k], dtype="<i2").tobytes()
        path = folder / f"IM{n_slices - k:04d}.dcm"
        ds.save_as(path, write_like_original=False)
        paths.append(path)
    return paths
