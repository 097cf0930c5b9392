"""The sample datastores ship a few images without labels, so Next Sample has something to offer on
first start; they are generated deterministically and leave the labelled cases (and splits) as they were."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "sample-data"
FOLDERS = {
    "generate": ("ct", ".nii.gz"),
    "generate_mri": ("mri", ".nii.gz"),
    "generate_xray": ("xray", ".png"),
}


def _generator(name: str):
    if str(SAMPLE) not in sys.path:  # the generators import phantom_utils from their own folder
        sys.path.insert(0, str(SAMPLE))
    return importlib.import_module(name)


@pytest.mark.parametrize("module", sorted(FOLDERS))
def test_each_sample_folder_ships_unlabelled_images_beside_all_labelled_cases(module):
    gen = _generator(module)
    folder, ext = FOLDERS[module]
    root = SAMPLE / folder
    labelled = {p.name for p in (root / "labels" / "final").glob(f"*{ext}")}
    images = {p.name for p in root.glob(f"*{ext}")}
    assert labelled == {f"{s.name}{ext}" for s in gen.CASES}  # every committed case keeps its label
    unlabelled = images - labelled
    assert unlabelled == {f"{s.name}{ext}" for s in gen.UNLABELLED} and 1 <= len(unlabelled) <= 2
    assert not {s.name for s in gen.UNLABELLED} & {s.name for s in gen.CASES}
    assert all(not s.labelled for s in gen.UNLABELLED) and all(s.labelled for s in gen.CASES)


@pytest.mark.parametrize("module", sorted(FOLDERS))
def test_unlabelled_images_regenerate_bit_for_bit_and_without_a_label(module, tmp_path):
    gen = _generator(module)
    folder, ext = FOLDERS[module]
    spec = gen.UNLABELLED[-1]
    out = tmp_path if module == "generate" else tmp_path / folder  # generate.py writes <root>/ct/...
    gen.write_case(spec, out)
    name = f"{spec.name}{ext}"
    assert (tmp_path / folder / name).read_bytes() == (SAMPLE / folder / name).read_bytes()
    assert not (tmp_path / folder / "labels" / "final" / name).exists()
