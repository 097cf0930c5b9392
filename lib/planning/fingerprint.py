"""Dataset fingerprint: what the planner needs to know about a user's labelled images.

Per case: voxel spacing and shape in RAS axis order, a deterministic sample of foreground (label > 0)
and whole-image intensities, and the DICOM Modality when the reader reports one. Summaries: the
foreground 0.5/99.5 percentiles, mean and std (nnU-Net's CT normalisation statistics) and the
whole-image 1st percentile (air at about -1000 HU tells CT apart). For volumes, also how well each
label's left-right mirror image overlaps each label (:func:`lib.planning.laterality.mirror_overlaps`,
the median over cases), from which the planner decides whether the anatomy is symmetric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from monai.transforms import Compose, LoadImaged, Orientationd

from lib.planning.laterality import mirror_overlaps

#: DICOM Modality values -> the app's modality names.
DICOM_MODALITIES = {"CT": "CT", "MR": "MR", "CR": "XR", "DX": "XR", "DR": "XR", "RG": "XR"}


@dataclass
class Fingerprint:
    """Summary of labelled images: per-case ``spacings``/``shapes`` (RAS) and intensity statistics."""

    spacings: list[list[float]]
    shapes: list[list[int]]
    foreground: dict[str, float]
    image_low: float
    dicom_modality: str | None = None
    mirror_overlap: list[list[float]] | None = None

    @property
    def spatial_dims(self) -> int:
        """2 when every case is a 2-D image (e.g. a PNG radiograph), else 3."""
        return 2 if all(len(s) == 2 for s in self.shapes) else 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the plan)."""
        return asdict(self)


def dicom_modality(image: str) -> str | None:
    """The app's modality name for a DICOM series folder (or file) from its first file's Modality tag;
    None for other images or unknown values."""
    path = Path(image)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for candidate in files[:1]:
        try:
            value = pydicom.dcmread(candidate, stop_before_pixels=True, specific_tags=["Modality"]).Modality
        except (pydicom.errors.InvalidDicomError, AttributeError, OSError):
            return None
        return DICOM_MODALITIES.get(str(value).strip().upper())
    return None


def fingerprint(
    items: Sequence[dict[str, str]],
    n_labels: int | None = None,
    max_cases: int = 50,
    samples_per_case: int = 10_000,
    seed: int = 0,
) -> Fingerprint:
    """Fingerprint labelled ``items`` ({"image", "label"} paths); at most ``max_cases`` evenly spaced
    cases are read; the mirror overlaps of labels 1..``n_labels`` are measured when it is given and the
    images are volumes. Raises ``ValueError`` when there is no case or no foreground at all."""
    if not items:
        raise ValueError("no labelled images to plan from: label some images first")
    chosen = [items[int(i)] for i in np.linspace(0, len(items) - 1, min(max_cases, len(items)))]
    load = LoadImaged(keys=["image", "label"], ensure_channel_first=True, image_only=True)
    rng = np.random.default_rng(seed)
    spacings, shapes, foreground, whole, modalities, overlaps = [], [], [], [], set(), []
    for item in chosen:
        data = load({"image": item["image"], "label": item["label"]})
        modalities.add(dicom_modality(item["image"]))
        if data["image"].ndim == 4:
            data = Compose([Orientationd(keys=["image", "label"], axcodes="RAS")])(data)
        image = np.asarray(data["image"], np.float32).mean(axis=0)  # colour -> one channel
        label = np.asarray(data["label"][0])
        spacings.append([round(float(s), 4) for s in data["image"].pixdim[: image.ndim]])
        shapes.append([int(s) for s in image.shape])
        values = image[label > 0]
        if values.size:
            foreground.append(rng.choice(values, min(samples_per_case, values.size), replace=False))
        if n_labels and image.ndim == 3:
            overlaps.append(mirror_overlaps(image, label.astype(np.int64), n_labels))
        flat = image.ravel()
        whole.append(rng.choice(flat, min(samples_per_case, flat.size), replace=False))
    if not foreground:
        raise ValueError("the labelled images have no foreground voxels: nothing to plan from")
    fg = np.concatenate(foreground).astype(np.float64)
    known = {m for m in modalities if m}
    return Fingerprint(
        spacings=spacings,
        shapes=shapes,
        foreground={
            "percentile_00_5": float(np.percentile(fg, 0.5)),
            "percentile_99_5": float(np.percentile(fg, 99.5)),
            "mean": float(fg.mean()),
            "std": float(fg.std()),
        },
        image_low=float(np.percentile(np.concatenate(whole), 1.0)),
        dicom_modality=known.pop() if len(known) == 1 else None,
        mirror_overlap=np.median(overlaps, axis=0).round(3).tolist() if overlaps else None,
    )


def infer_modality(fp: Fingerprint) -> tuple[str, str]:
    """(modality, how it was found): DICOM Modality when the series say so, else 2-D images are
    radiographs (XR), volumes with air near -1000 (whole-image 1st percentile below -500) CT, others MR."""
    if fp.dicom_modality:
        return fp.dicom_modality, "DICOM Modality"
    if fp.spatial_dims == 2:
        return "XR", "2-D images"
    if fp.image_low < -500:
        return "CT", "intensities (air at about -1000 HU)"
    return "MR", "intensities (no air at -1000, 3-D)"
