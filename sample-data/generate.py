"""Deterministic synthetic abdominal CT generator for the sample datastore.

Run ``python sample-data/generate.py`` from the repository root to regenerate, bit for bit,
``sample-data/ct`` (NIfTI images and ``labels/final``) and ``sample-data/ct-dicom`` (one case
also written as a DICOM CT series); ``--wide N`` writes full-FOV training volumes instead. This file
holds the committed cases and the writers; the phantom itself is the ``ct_phantom`` package beside it
(one module per anatomical region). ``generate_ct_case`` is importable (load this file with
``importlib``, ``sample-data`` on ``sys.path``) for code that needs more volumes.

The anatomy is a set of implicit shapes in a patient frame (mm; +x towards the patient's right,
+y anterior, +z superior, i.e. RAS) that is rigidly placed (small yaw, table offset) in world RAS
coordinates and sampled at the voxel centres of each case's affine, so any axis-aligned orientation
gets correct geometry. Labels: 0 background, 1 liver, 2 spleen, 3 kidney_left, 4 kidney_right
(patient's left: smaller RAS x, larger DICOM/LPS x); a label is the organ membership at the voxel
centre (renal sinus fat and pelvis excluded, intrahepatic vessels included, IVC excluded). The
image averages the tissue over the slice thickness (box slice profile), adds per-tissue texture,
an in-plane PSF and correlated noise (sigma 7-14 HU depending on thickness); the committed cases are
portal-venous, the full-FOV ones (``--wide``) in any of four contrast phases.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ct_phantom.dicom_series import dicom_series
from ct_phantom.scan import generate_ct_case
from ct_phantom.tissues import PHASES
from phantom_utils import nifti_gz_bytes


@dataclass(frozen=True)
class CaseSpec:
    """One committed case: anatomy seed, sampling and z coverage (None = whole organ span)."""

    name: str
    seed: int
    inplane: float
    thickness: float
    orientation: str
    z_extent: float | None = None
    dicom: bool = False
    labelled: bool = True  # False: the image is shipped without its label


# In-plane spacings are FOV/512 for FOVs of 310-510 mm. Most cases are thick-slice; thin or
# fine-pixel cases cover a z slab centred on the four organs to respect the 30 MB budget.
CASES: tuple[CaseSpec, ...] = (
    CaseSpec("case_000", 131, 0.996094, 5.0, "LPS"),
    CaseSpec("case_001", 208, 0.976562, 5.0, "RAS"),
    CaseSpec("case_002", 206, 0.976562, 5.0, "LPI"),
    CaseSpec("case_003", 255, 0.605469, 5.0, "RAS", 60.0),
    CaseSpec("case_004", 139, 0.976562, 1.5, "LPS", 40.0),
    CaseSpec("case_005", 150, 0.859375, 3.0, "RAS", 60.0),
    CaseSpec("case_006", 175, 0.703125, 5.0, "LPS", 80.0),
    CaseSpec("case_007", 143, 0.78125, 4.0, "RAS", 80.0),
    CaseSpec("case_008", 225, 0.9375, 2.0, "LPS", 50.0),
    CaseSpec("case_009", 241, 0.839844, 5.0, "RAS", 90.0),
    CaseSpec("case_010", 251, 0.878906, 3.75, "RAI", 100.0),
    CaseSpec("case_011", 275, 0.996094, 5.0, "LPS", 70.0, dicom=True),
)

# Shipped without labels, so Next Sample has images to offer on first start; not part of any split.
UNLABELLED: tuple[CaseSpec, ...] = (
    CaseSpec("new_000", 281, 0.996094, 5.0, "RAS", 70.0, labelled=False),
    CaseSpec("new_001", 287, 0.976562, 5.0, "LPS", 70.0, labelled=False),
)


def write_case(spec: CaseSpec, root: Path) -> dict:
    """Generate ``spec`` and write its image, label (unless unlabelled) and DICOM series under ``root``."""
    start = time.perf_counter()
    hu, label, affine = generate_ct_case(
        spec.seed,
        (spec.inplane, spec.inplane, spec.thickness),
        orientation=spec.orientation,
        z_extent=spec.z_extent,
    )
    (root / "ct" / "labels" / "final").mkdir(parents=True, exist_ok=True)
    (root / "ct" / f"{spec.name}.nii.gz").write_bytes(nifti_gz_bytes(hu, affine))
    if spec.labelled:
        (root / "ct" / "labels" / "final" / f"{spec.name}.nii.gz").write_bytes(nifti_gz_bytes(label, affine))
    if spec.dicom:
        folder = root / "ct-dicom" / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("IM*.dcm"):
            old.unlink()
        for k, ds in enumerate(dicom_series(hu, affine, spec.name, spec.thickness)):
            ds.save_as(folder / f"IM{k:04d}.dcm", write_like_original=False)
    return {
        "case": spec.name,
        "shape": hu.shape,
        "spacing": (spec.inplane, spec.thickness),
        "orientation": spec.orientation,
        "seconds": round(time.perf_counter() - start, 1),
    }


def write_wide_cases(root: Path, count: int, first_seed: int = 300) -> list[dict]:
    """Write ``count`` full-FOV 512x512 training volumes (``wide_NNN``) into the datastore ``root``.

    Chest to pelvis around the organs (lungs, heart, bowel, bladder, femoral heads: what a clinical
    abdominal CT shows and the committed organ-span slabs do not); 0.7-0.9 mm pixels, 2.5-5 mm
    slices over 400-650 mm, each in a contrast phase drawn from ``PHASES`` (the committed cases are all
    portal-venous). Not committed (about 25 MB each): the full-FOV fine-tune recipe in the
    README generates them.
    """
    (root / "labels" / "final").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(count):
        rng = np.random.default_rng(first_seed + k)
        inplane = float(rng.uniform(0.7, 0.9))
        thickness = float(rng.choice([2.5, 3.0, 5.0]))
        slices = int(rng.uniform(400.0, 650.0) / thickness)
        phase = str(rng.choice(PHASES))
        hu, label, affine = generate_ct_case(
            first_seed + k, (inplane, inplane, thickness), shape=(512, 512, slices), phase=phase
        )
        name = f"wide_{k:03d}.nii.gz"
        (root / name).write_bytes(nifti_gz_bytes(hu, affine))
        (root / "labels" / "final" / name).write_bytes(nifti_gz_bytes(label, affine))
        spacing = (round(inplane, 3), thickness)
        rows.append({"case": name, "shape": hu.shape, "spacing": spacing, "phase": phase})
    return rows


def main() -> None:
    """Regenerate the committed sample data (all cases, or those named with --case)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output root")
    parser.add_argument("--case", action="append", help="only this case (repeatable)")
    parser.add_argument(
        "--wide", type=int, default=0, help="write N full-FOV training volumes into the datastore --out"
    )
    args = parser.parse_args()
    if args.wide:
        for row in write_wide_cases(args.out, args.wide):
            print(row, flush=True)
        return
    for spec in (*CASES, *UNLABELLED):
        if args.case is None or spec.name in args.case:
            print(write_case(spec, args.out), flush=True)


if __name__ == "__main__":
    main()
