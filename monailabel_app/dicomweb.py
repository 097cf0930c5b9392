"""DICOMweb for the MONAI Label app: a datastore over a DICOMweb archive that stores labels as DICOM SEG.

Every DICOMweb request has a connect and a read timeout; an unreachable or hung server becomes HTTP 503
(an error answer from it 502) with a one-line reason, never a hang.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import urlparse

import numpy as np
import pydicom
import requests
from cachetools import TTLCache
from dicomweb_client import DICOMwebClient
from fastapi import HTTPException
from monailabel.config import settings
from monailabel.datastore.dicom import DICOMwebClientX, DICOMWebDatastore
from monailabel.datastore.local import LocalDatastore
from monailabel.datastore.utils.dicom import dicom_web_download_series
from monailabel.interfaces.datastore import DefaultLabelTag
from pydicom import Dataset

from lib.inference.writer import write_label
from lib.io.dicom_seg import read_dicom_seg
from lib.io.validate import read_volume
from monailabel_app.dicom_labels import checked_label, convert_series, write_seg

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
SEG_LIST_TTL_S = 30.0  # SEGs stored by other clients (OHIF's own export) are seen within this time
STATUS_RETRY_S = 15.0
_FINAL = DefaultLabelTag.FINAL.value


@contextmanager
def remote_errors(server: str, operation: str) -> Iterator[None]:
    """Turn a failed DICOMweb request into an HTTPException with a one-line reason."""
    try:
        yield
    except requests.Timeout:
        raise HTTPException(503, f"DICOMweb server {server} did not answer in time ({operation})") from None
    except requests.ConnectionError:
        raise HTTPException(503, f"DICOMweb server {server} is unreachable ({operation})") from None
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else "an error"
        raise HTTPException(502, f"DICOMweb server {server} answered {status} ({operation})") from None


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Applies a default (connect, read) timeout to every request of a session."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request, timeout=None, **kwargs):
        return super().send(request, timeout=timeout or self.timeout, **kwargs)


def dicomweb_client(url: str) -> DICOMwebClient:
    """A DICOMweb client built as MONAI Label builds it, every request bounded by a timeout and retried
    at most once (a hung server fails in about 2 x read timeout + 2 s)."""
    if "googleapis.com" in url:
        from dicomweb_client.ext.gcp.session_utils import create_session_from_gcp_credentials

        session = create_session_from_gcp_credentials()
    elif settings.MONAI_LABEL_DICOMWEB_USERNAME and settings.MONAI_LABEL_DICOMWEB_PASSWORD:
        from dicomweb_client.session_utils import create_session_from_user_pass

        session = create_session_from_user_pass(
            settings.MONAI_LABEL_DICOMWEB_USERNAME, settings.MONAI_LABEL_DICOMWEB_PASSWORD
        )
    else:
        session = requests.Session()
    adapter = _TimeoutAdapter((CONNECT_TIMEOUT_S, settings.MONAI_LABEL_DICOMWEB_READ_TIMEOUT))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if "googleapis.com" in url:
        client = DICOMwebClient(url=url, session=session)
    else:
        client = DICOMwebClientX(
            url=url,
            session=session,
            qido_url_prefix=settings.MONAI_LABEL_QIDO_PREFIX,
            wado_url_prefix=settings.MONAI_LABEL_WADO_PREFIX,
            stow_url_prefix=settings.MONAI_LABEL_STOW_PREFIX,
        )
    # dicomweb-client retries every failed request 5 times with growing waits (45 s on a hung server)
    client.set_http_retry_params(max_attempts=2)
    # it sends ``Host`` without the port, so the archive's RetrieveURLs (OHIF's links) would lack it too
    client.host = urlparse(url).netloc
    return client


def dicomweb_datastore(studies: str, labels: Mapping[str, int]) -> DicomWebDatastore:
    """The DICOMweb datastore for ``--studies http(s)://...``, configured by MONAI Label's settings."""
    url = studies.rstrip("/").strip()
    logger.info("Using DICOMweb: %s", url)
    cache_path = (settings.MONAI_LABEL_DICOMWEB_CACHE_PATH or "").strip()
    return DicomWebDatastore(
        dicomweb_client(url),
        search_filter=settings.MONAI_LABEL_DICOMWEB_SEARCH_FILTER,
        labels=labels,
        cache_path=cache_path or None,
        fetch_by_frame=settings.MONAI_LABEL_DICOMWEB_FETCH_BY_FRAME,
    )


class SegRef(NamedTuple):
    """What a SEG series in the archive labels."""

    image: str  # referenced SeriesInstanceUID ("" when the SEG names none)
    study: str
    stamp: str  # ContentDate + ContentTime: the newest SEG of an image is its label


class DicomWebDatastore(DICOMWebDatastore):
    """Images are the archive's series (``search_filter``); an image is labelled when a DICOM SEG in the
    archive references it (the newest one is its label).

    A series is downloaded once into the cache and read as NIfTI from there. ``save_label`` stores a SEG
    (``final`` tag) in the archive and keeps the label as NIfTI in the cache; ``datalist()`` brings every
    SEG of the archive into the cache as NIfTI on its series' grid, so training uses SEGs from any client.
    ``labels`` (the model's name -> value) names segments and maps SEG segments back to values.
    """

    def __init__(
        self,
        client: DICOMwebClient,
        search_filter: dict[str, Any],
        labels: Mapping[str, int],
        cache_path: str | None = None,
        fetch_by_frame: bool = False,
    ) -> None:
        super().__init__(client, search_filter, cache_path, fetch_by_frame, convert_to_nifti=True)
        self.labels = dict(labels)
        self._lock = threading.RLock()
        self._series_cache: TTLCache = TTLCache(maxsize=1, ttl=settings.MONAI_LABEL_DICOMWEB_CACHE_EXPIRY)
        self._seg_cache: TTLCache = TTLCache(maxsize=1, ttl=SEG_LIST_TTL_S)
        self._seg_refs: dict[str, SegRef] = {}  # SEG series UID -> reference (a SEG never changes)
        self._last_failure = (-float("inf"), "")  # (monotonic time, reason) of the last failed request

    @contextmanager
    def _remote(self, operation: str) -> Iterator[None]:
        try:
            with remote_errors(self._client.base_url, operation):
                yield
        except HTTPException as e:
            self._last_failure = (time.monotonic(), e.detail)
            raise

    def _series(self) -> dict[str, Dataset]:
        """SeriesInstanceUID -> QIDO attributes of every image series (cached)."""
        if "series" not in self._series_cache:
            with self._remote("search series"):
                found = [
                    Dataset.from_json(d)
                    for d in self._client.search_for_series(search_filters=self._search_filter)
                ]
            self._series_cache["series"] = {str(ds.SeriesInstanceUID): ds for ds in found}
        return self._series_cache["series"]

    def _seg_references(self) -> dict[str, str]:
        """Image SeriesInstanceUID -> its newest SEG's SeriesInstanceUID (cached ``SEG_LIST_TTL_S``)."""
        if "segs" not in self._seg_cache:
            with self._remote("search SEG series"):
                segs = [
                    Dataset.from_json(d)
                    for d in self._client.search_for_series(search_filters={"Modality": "SEG"})
                ]
                for seg in segs:
                    uid = str(seg.SeriesInstanceUID)
                    if uid not in self._seg_refs:
                        self._seg_refs[uid] = self._seg_reference(str(seg.StudyInstanceUID), uid)
            newest: dict[str, tuple[str, str]] = {}
            for uid in (str(seg.SeriesInstanceUID) for seg in segs):
                ref = self._seg_refs[uid]
                if ref.image and ref.stamp >= newest.get(ref.image, ("", ""))[1]:
                    newest[ref.image] = (uid, ref.stamp)
            self._seg_cache["segs"] = {image: uid for image, (uid, _) in newest.items()}
        return self._seg_cache["segs"]

    def _seg_reference(self, study: str, seg_uid: str) -> SegRef:
        meta = Dataset.from_json(
            self._client.retrieve_series_metadata(study, seg_uid)[0], bulk_data_uri_handler=lambda *_: b""
        )
        refs = meta.get("ReferencedSeriesSequence")
        image = str(refs[0].SeriesInstanceUID) if refs else ""
        if not image:
            logger.warning("SEG %s references no series; ignored", seg_uid)
        return SegRef(image, study, f"{meta.get('ContentDate', '')}{meta.get('ContentTime', '')}")

    def list_images(self) -> list[str]:
        return list(self._series())

    def get_labeled_images(self, label_tag: str | None = None, labels: Any = None) -> list[str]:
        series = self._series()
        return [image for image in self._seg_references() if image in series]

    def get_unlabeled_images(self, label_tag: str | None = None, labels: Any = None) -> list[str]:
        labeled = set(self.get_labeled_images())
        return [image for image in self.list_images() if image not in labeled]

    def get_labels_by_image_id(self, image_id: str) -> dict[str, str]:
        labels = LocalDatastore.get_labels_by_image_id(self, image_id)
        if image_id in self._seg_references():
            labels[_FINAL] = image_id
        return labels

    def status(self) -> dict[str, Any]:
        """Counts for ``/info`` (which every infer also calls): a failing archive is reported, not raised,
        and not asked again for ``STATUS_RETRY_S`` after a failure, so ``/info`` answers at once."""
        failed_at, reason = self._last_failure
        if time.monotonic() - failed_at >= STATUS_RETRY_S:
            try:
                return super().status()
            except HTTPException as e:
                reason = e.detail
        return {"total": 0, "completed": 0, "label_tags": {}, "error": reason}

    def _dicom_info(self, series_id: str) -> dict[str, str]:
        """The DICOM fields OHIF shows for a next sample, from the cached series search."""
        ds = self._series().get(series_id, Dataset())
        info = {"SeriesInstanceUID": series_id}
        for field in ("StudyDate", "StudyTime", "Modality", "RetrieveURL", "PatientID", "StudyInstanceUID"):
            info[field] = str(ds[field].value) if ds.get(field) else "UNK"
        return info

    def _series_dir(self, image_id: str) -> str:
        return os.path.realpath(os.path.join(self._datastore.image_path(), image_id))

    def _find_series(self, image_id: str) -> Dataset | None:
        found = self._series().get(image_id)
        if found is None:  # maybe stored since the last search
            self._series_cache.clear()
            found = self._series().get(image_id)
        return found

    def get_image_uri(self, image_id: str) -> str:
        """The cached NIfTI of a series (downloaded and converted on first use); "" for unknown ids."""
        with self._lock:
            uri = LocalDatastore.get_image_uri(self, image_id)
            series_dir = self._series_dir(image_id)
            if uri and os.path.exists(uri) and os.path.isdir(series_dir):
                if "SeriesInstanceUID" not in LocalDatastore.get_image_info(self, image_id):  # found on disk
                    LocalDatastore.update_image_info(self, image_id, self._dicom_info(image_id))
                return uri
            series = self._find_series(image_id)
            if series is None:
                return ""
            if not os.path.isdir(series_dir):
                partial_dir = tempfile.mkdtemp(dir=self._datastore.image_path(), prefix=".download-")
                try:
                    with self._remote(f"download series {image_id}"):
                        dicom_web_download_series(
                            str(series.StudyInstanceUID),
                            image_id,
                            partial_dir,
                            self._client,
                            self._fetch_by_frame,
                        )
                    # a folder of files: renamed whole (lib.io.atomic writes single files)
                    os.replace(partial_dir, series_dir)
                finally:
                    shutil.rmtree(partial_dir, ignore_errors=True)
            with tempfile.TemporaryDirectory() as tmp:
                nifti = os.path.join(tmp, f"{image_id}.nii.gz")
                convert_series(series_dir, nifti)
                LocalDatastore.add_image(self, image_id, nifti, self._dicom_info(image_id))
            return LocalDatastore.get_image_uri(self, image_id)

    def get_label_uri(self, label_id: str, label_tag: str, image_id: str = "") -> str:
        """The label (NIfTI on the series grid) of image ``label_id``; a ``final`` label comes from the
        image's newest SEG in the archive."""
        if label_tag == _FINAL:
            seg = self._seg_references().get(label_id)
            if seg:
                try:
                    self._sync_label(label_id, seg)
                except ValueError as e:
                    raise HTTPException(422, f"SEG {seg} of {label_id}: {e}") from None
        return LocalDatastore.get_label_uri(self, label_id, label_tag)

    def _sync_label(self, image_id: str, seg_uid: str) -> None:
        """Bring SEG ``seg_uid`` into the cache as ``image_id``'s final label, unless it already is.

        Segments named like the model's labels take those values; others keep their segment number."""
        if LocalDatastore.get_label_info(self, image_id, _FINAL).get("SeriesInstanceUID") == seg_uid:
            return
        image_uri = self.get_image_uri(image_id)
        ref = self._seg_refs[seg_uid]
        with tempfile.TemporaryDirectory() as tmp:
            with self._remote(f"download SEG {seg_uid}"):
                seg = self._client.retrieve_series(ref.study, seg_uid)[0]
            seg.save_as(os.path.join(tmp, "seg.dcm"))
            numbers, names = read_dicom_seg(os.path.join(tmp, "seg.dcm"), self._series_dir(image_id))
            lut = np.arange(max(names.values(), default=0) + 1)
            for name, number in names.items():
                lut[number] = self.labels.get(name, number)
            label = lut[numbers]
            dtype = "uint8" if label.max(initial=0) < 256 else "uint16"
            nifti = os.path.join(tmp, f"{image_id}.nii.gz")
            write_label(label, read_volume(image_uri)[1], nifti, dtype)
            info = {"SeriesInstanceUID": seg_uid, "segments": names}
            LocalDatastore.save_label(self, image_id, nifti, _FINAL, info)

    def save_label(
        self,
        image_id: str,
        label_filename: str,
        label_tag: str,
        label_info: dict[str, Any],
        label_id: str = "",
    ) -> str:
        """Keep the label (NIfTI/NRRD/``.bin`` on the series grid) in the cache as NIfTI; a ``final``
        label is also stored in the archive as a DICOM SEG, which makes the series labelled."""
        image_uri = self.get_image_uri(image_id)
        if not image_uri:
            raise HTTPException(404, f"image: unknown series {image_id!r}")
        label, affine = checked_label(image_uri, label_filename, self.labels.values())
        info = dict(label_info or {})
        with tempfile.TemporaryDirectory() as tmp:
            if label_tag == _FINAL:
                seg_path = os.path.join(tmp, "seg.dcm")
                write_seg(label, self._series_dir(image_id), self.labels, seg_path, "MONAI Label annotation")
                seg = pydicom.dcmread(seg_path)
                with self._remote(f"store SEG for {image_id}"):
                    self._client.store_instances([seg])
                seg_uid = str(seg.SeriesInstanceUID)
                stamp = f"{seg.ContentDate}{seg.ContentTime}"
                self._seg_refs[seg_uid] = SegRef(image_id, str(seg.StudyInstanceUID), stamp)
                self._seg_cache.clear()
                info.update({"SeriesInstanceUID": seg_uid, "StudyInstanceUID": str(seg.StudyInstanceUID)})
            nifti = os.path.join(tmp, f"{image_id}.nii.gz")
            write_label(label, affine, nifti, str(label.dtype))
            return LocalDatastore.save_label(self, image_id, nifti, label_tag, info)

    def datalist(self, full_path: bool = True) -> list[dict[str, Any]]:
        """Image/label pairs of every series with a SEG in the archive (fresh search, SEGs cached as NIfTI);
        cached labels whose SEG left the archive are dropped."""
        self._seg_cache.clear()
        refs = self._seg_references()
        series = self._series()
        for image_id, seg_uid in refs.items():
            if image_id not in series:
                continue
            try:
                self._sync_label(image_id, seg_uid)
            except ValueError as e:
                logger.warning("SEG %s of %s skipped: %s", seg_uid, image_id, e)
        gone = [i for i in LocalDatastore.get_labeled_images(self) if i not in refs]
        for image_id in gone:
            logger.info("final label of %s has no SEG in the archive any more; removed", image_id)
            LocalDatastore.remove_label(self, image_id, _FINAL)
        if gone:
            self.refresh()
        return LocalDatastore.datalist(self, full_path)
