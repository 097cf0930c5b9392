"""Property and known-answer tests for lib.data.split."""

import json
import random

import pytest

from lib.data.split import PatientSplit, split_sizes

PATTERN = r"(?P<patient>pat\d+)_"


def _cases(patients: range, per_patient: int = 2) -> list[str]:
    return [f"/data/images/pat{p:03d}_scan{s}.nii.gz" for p in patients for s in range(per_patient)]


def _patients(split: PatientSplit, subset: list) -> set[str]:
    return {split.patient_of(item) for item in subset}


def _assert_no_overlap(split: PatientSplit, result: dict[str, list]) -> None:
    train, val, test = (_patients(split, result[s]) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, (0, 0, 0)),
        (1, (1, 0, 0)),
        (2, (1, 1, 0)),
        (3, (2, 1, 0)),
        (4, (3, 1, 0)),
        (5, (3, 1, 1)),
        (10, (7, 2, 1)),
        (100, (70, 20, 10)),
    ],
)
def test_split_sizes_small_and_large(n, expected):
    assert tuple(split_sizes(n, 0.2, 0.1).values()) == expected


def test_no_overlap_sizes_and_persisted_file(tmp_path):
    split = PatientSplit(tmp_path / "split.json", patient_pattern=PATTERN, seed=3)
    items = _cases(range(50))
    result = split.assign(items)
    _assert_no_overlap(split, result)
    assert [len(_patients(split, result[s])) for s in ("train", "val", "test")] == [35, 10, 5]
    assert sorted(sum(result.values(), [])) == sorted(items)
    stored = json.loads((tmp_path / "split.json").read_text())
    assert stored["patients"] == {split.patient_of(item): s for s in result for item in result[s]}
    assert not [f for f in tmp_path.iterdir() if f.name != "split.json"]  # no temp file left behind


def test_deterministic_for_seed_and_input_order(tmp_path):
    items = _cases(range(30))
    shuffled = random.Random(1).sample(items, len(items))
    first = PatientSplit(tmp_path / "a.json", patient_pattern=PATTERN, seed=7).assign(items)
    second = PatientSplit(tmp_path / "b.json", patient_pattern=PATTERN, seed=7).assign(shuffled)
    other = PatientSplit(tmp_path / "c.json", patient_pattern=PATTERN, seed=8).assign(items)
    assert {k: sorted(v) for k, v in first.items()} == {k: sorted(v) for k, v in second.items()}
    assert first != other


def test_rerun_and_added_cases_keep_old_assignments(tmp_path):
    path = tmp_path / "split.json"
    old = PatientSplit(path, patient_pattern=PATTERN).assign(_cases(range(20)))
    split = PatientSplit(path, patient_pattern=PATTERN)
    assert split.assign(_cases(range(20))) == old
    before = split.load()

    # New patients, and a new scan of every existing patient.
    more = _cases(range(40)) + [f"/data/images/pat{p:03d}_scan9.nii.gz" for p in range(20)]
    result = split.assign(more)
    after = split.load()
    assert {p: after[p] for p in before} == before
    for subset, items in result.items():
        for item in items:
            patient = split.patient_of(item)
            if patient in before:
                assert before[patient] == subset
    for subset in ("train", "val", "test"):
        assert set(old[subset]) <= set(result[subset])
    _assert_no_overlap(split, result)
    assert [list(after.values()).count(s) for s in ("train", "val", "test")] == [28, 8, 4]


def test_growing_one_patient_at_a_time_fills_val_and_test(tmp_path):
    split = PatientSplit(tmp_path / "split.json", patient_pattern=PATTERN)
    for n in range(1, 21):
        split.assign(_cases(range(n), per_patient=1))
        stored = split.load()
        counts = [list(stored.values()).count(s) for s in ("train", "val", "test")]
        if n >= 2:
            assert counts[1] >= 1
        assert counts[0] >= 1
    assert counts == [14, 4, 2]


def test_patient_id_sources(tmp_path):
    split = PatientSplit(tmp_path / "s.json", patient_pattern=r"^case(\d+)-")
    assert split.patient_of("/x/case12-t1.nii.gz") == "12"
    assert split.patient_of({"image": "/x/case12-t2.nii.gz", "label": "/y.nii.gz"}) == "12"
    assert split.patient_of({"image": "/x/case12-t2.nii.gz", "patient_id": "DICOM^ID"}) == "DICOM^ID"
    assert split.patient_of("/x/other.nii.gz") is None
    assert PatientSplit(tmp_path / "s.json", patient_pattern=r"P\d+").patient_of("a_P77_b.nrrd") == "P77"


def test_fallback_one_patient_per_image_warns(tmp_path, caplog):
    split = PatientSplit(tmp_path / "s.json")
    items = [{"image": f"/data/img{i}.nii.gz"} for i in range(10)]
    with pytest.warns(UserWarning, match="10/10 images have no patient id"):
        result = split.assign(items)
    assert "no patient id" in caplog.text
    assert sorted(split.load()) == [f"img{i}" for i in range(10)]
    assert [len(result[s]) for s in ("train", "val", "test")] == [7, 2, 1]


def test_invalid_fractions(tmp_path):
    with pytest.raises(ValueError, match="fractions"):
        PatientSplit(tmp_path / "s.json", val_fraction=0.6, test_fraction=0.4)
