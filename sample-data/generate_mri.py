"""Deterministic synthetic T1-weighted head MRI phantoms with brain masks for the sample datastore.

Run ``python sample-data/generate_mri.py`` from the repository root to regenerate, bit for bit,
``sample-data/mri/head_NNN.nii.gz`` (int16, arbitrary scanner units, a different scale per case) and
``sample-data/mri/labels/final/head_NNN.nii.gz`` (uint8, 1 = brain). This file holds the committed
cases and the writer; the phantom is the ``mri_phantom`` package beside it (tissues and contrast, shape
helpers, the head's anatomy, the scan). ``generate_case`` is importable (with ``sample-data`` on
``sys.path``) for tests that need variants.

Anatomy is a set of implicit shapes in a head frame (mm; +x right, +y anterior, +z superior, origin
near the centre of the cerebrum), smoothly warped, rigidly placed in world RAS and sampled at the voxel
centres of each case's affine, so any axis-aligned orientation gets correct geometry. From outside in:
scalp (skin/galea and bright subcutaneous fat) over face and neck soft tissue, eyes in orbital fat,
skull (dark cortical tables around slightly brighter diploe), extra-cerebral CSF, then the brain:
cerebrum (cortical grey matter around white matter, folded by band-limited random fields so that CSF
filled sulci cut into the cortex, split by the interhemispheric fissure above the corpus callosum),
cerebellum (finer folia), brainstem, deep grey nuclei and the lateral and third ventricles.

Brain mask definition (the skull-stripping convention of BET / FreeSurfer brain masks: the brain's
envelope, not its tissue classes): a voxel is brain when its centre lies in cerebral or cerebellar
grey or white matter, a deep grey nucleus, a ventricle (lateral or third, CSF included), the
brainstem above the foramen magnum, or the CSF of a sulcus (inside the pial hull of the cerebrum or
cerebellum). The subarachnoid space outside that hull, the interhemispheric fissure, skull, scalp,
eyes and the spinal cord are not brain.

Image: T1 contrast (fat > WM > deep GM > GM > soft tissue > diploe > CSF > cortical bone), averaged
over sub-slices (box slice profile, partial volume), in-plane Gaussian PSF, a smooth multiplicative
bias field (quadratic in world coordinates, +-25-40 % over the head), Rician noise, then int16.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from mri_phantom.scan import generate_case
from phantom_utils import nifti_gz_bytes


@dataclass(frozen=True)
class CaseSpec:
    """One committed case: anatomy seed, voxel spacing (mm, per voxel axis) and axis code."""

    name: str
    seed: int
    spacing: tuple[float, float, float]
    orientation: str
    labelled: bool = True  # False: the image is shipped without its brain mask


CASES: tuple[CaseSpec, ...] = (
    CaseSpec("head_000", 100, (1.3, 1.3, 3.0), "RAS"),
    CaseSpec("head_001", 101, (1.5, 1.5, 1.25), "LPS"),
    CaseSpec("head_002", 102, (1.0, 1.0, 3.0), "LAS"),
    CaseSpec("head_003", 103, (1.25, 1.25, 2.5), "PIR"),  # sagittal
    CaseSpec("head_004", 104, (1.4, 1.4, 3.0), "RSA"),  # coronal
    CaseSpec("head_005", 105, (1.5, 1.5, 3.0), "RAS"),
    CaseSpec("head_006", 106, (1.3, 1.3, 2.5), "LPI"),
    CaseSpec("head_007", 107, (1.2, 1.2, 2.5), "ASL"),  # sagittal
    CaseSpec("head_008", 108, (1.5, 1.5, 2.0), "RPI"),
    CaseSpec("head_009", 109, (1.4, 1.4, 2.5), "LIP"),  # coronal
    CaseSpec("head_010", 110, (1.5, 1.5, 2.0), "LPS"),
    CaseSpec("head_011", 111, (1.5, 1.5, 2.0), "PSR"),  # sagittal
)

# Shipped without a mask, so Next Sample has an image to offer on first start; not part of any split.
UNLABELLED: tuple[CaseSpec, ...] = (CaseSpec("new_000", 112, (1.5, 1.5, 3.0), "RAS", labelled=False),)


def write_case(spec: CaseSpec, root: Path) -> dict:
    """Generate ``spec`` and write its image and brain mask (unless unlabelled) under ``root`` (``mri``)."""
    start = time.perf_counter()
    case = generate_case(spec.seed, spec.spacing, spec.orientation)
    (root / "labels" / "final").mkdir(parents=True, exist_ok=True)
    (root / f"{spec.name}.nii.gz").write_bytes(nifti_gz_bytes(case.image, case.affine))
    if spec.labelled:
        (root / "labels" / "final" / f"{spec.name}.nii.gz").write_bytes(
            nifti_gz_bytes(case.mask, case.affine)
        )
    return {"shape": case.image.shape, "seconds": time.perf_counter() - start}


def main() -> None:
    """Regenerate the committed MRI sample cases (all, or those named)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "mri")
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    for spec in (*CASES, *UNLABELLED):
        if not args.cases or spec.name in args.cases:
            info = write_case(spec, args.out)
            print(f"{spec.name}: {info['shape']} {spec.spacing} {spec.orientation} {info['seconds']:.1f}s")


if __name__ == "__main__":
    main()
