"""Training cases from a label map without an image (``lib.data.templates``, ``python -m lib.synthesize``):
labels renamed by name, deformation applied to image and label alike, a body around the structures,
intensities that vary per case, the label untouched by the rendering, and the CLI's files and errors."""

import doctest
import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

import lib.data.templates as templates_module
from lib.data.templates import Deformation, deform, rename_template, render_ct, template_case
from lib.synthesize import main

NAMES = {"kidney": 2, "liver": 6, "stomach": 7}
LABELS = {"liver": 1, "kidney": 2}


def _template() -> tuple[np.ndarray, np.ndarray]:
    """A 4 x 4 x 8 mm RAS label map: a liver block (6), a kidney ball (2) and a stomach block (7)."""
    t = np.zeros((40, 32, 20), np.uint8)
    t[5:20, 8:24, 5:15] = 6
    i, j, k = np.ogrid[:40, :32, :20]
    t[(i - 30) ** 2 + (j - 12) ** 2 + 4 * (k - 9) ** 2 < 25] = 2
    t[22:26, 20:28, 8:12] = 7
    affine = np.diag([4.0, 4.0, 8.0, 1.0])
    affine[:3, 3] = (-80.0, -60.0, 100.0)
    return t, affine


def test_doctests():
    assert doctest.testmod(templates_module).failed == 0


def test_rename_keeps_model_labels_and_makes_the_rest_extra_tissues():
    t, _ = _template()
    tissues, n_model = rename_template(t, NAMES, LABELS)
    assert n_model == 3
    np.testing.assert_array_equal(tissues == 1, t == 6)
    np.testing.assert_array_equal(tissues == 2, t == 2)
    np.testing.assert_array_equal(tissues == 3, t == 7)  # the stomach: a tissue, not a model label
    with pytest.raises(ValueError, match="names none of the model's labels"):
        rename_template(t, {"stomach": 7}, LABELS)


def test_identity_deformation_keeps_shapes_and_world_positions():
    t, affine = _template()
    tissues, _ = rename_template(t, NAMES, LABELS)
    none = Deformation(size=(1, 1), scale=(1, 1), rotation=(0, 0), displacement=(0, 0), keep=(1, 1))
    spacing = (1.7, 1.9, 3.3)  # not a divisor of the template's: no voxel centre on a boundary
    out, out_affine = deform(tissues, affine, spacing, np.random.default_rng(0), none)
    np.testing.assert_allclose(np.abs(np.diag(out_affine)[:3]), spacing)
    voxel = {"in": 4.0 * 4.0 * 8.0, "out": float(np.prod(spacing))}
    for value in (1, 2, 3):
        volume_in = (tissues == value).sum() * voxel["in"]
        volume_out = (out == value).sum() * voxel["out"]
        assert volume_out == pytest.approx(volume_in, rel=0.1), value
        centre = lambda a, m, v: m[:3, :3] @ np.argwhere(a == v).mean(0) + m[:3, 3]  # noqa: E731
        np.testing.assert_allclose(centre(out, out_affine, value), centre(tissues, affine, value), atol=3.0)


def test_random_deformation_moves_and_scales_the_structures_and_crops_the_body_axis():
    t, affine = _template()
    tissues, _ = rename_template(t, NAMES, LABELS)
    strong = Deformation(size=(1.3, 1.3), scale=(1, 1), rotation=(0, 0), displacement=(0, 0), keep=(1, 1))
    out, out_affine = deform(tissues, affine, (4.0, 4.0, 8.0), np.random.default_rng(0), strong)
    assert (out == 1).sum() / (tissues == 1).sum() == pytest.approx(1.3**3, rel=0.15)
    cropped, _ = deform(
        tissues, affine, (4.0, 4.0, 8.0), np.random.default_rng(0), Deformation(keep=(0.6, 0.6))
    )
    assert cropped.shape[2] < out.shape[2]
    a, _ = deform(tissues, affine, (4.0, 4.0, 8.0), np.random.default_rng(3))
    b, _ = deform(tissues, affine, (4.0, 4.0, 8.0), np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)  # reproducible from the seed


def test_rendered_ct_has_a_body_around_the_structures_and_per_case_intensities():
    t, affine = _template()
    tissues, _ = rename_template(t, NAMES, LABELS)
    out, out_affine = deform(tissues, affine, (2.0, 2.0, 4.0), np.random.default_rng(0))
    means = []
    for seed in range(4):
        hu = render_ct(out, out_affine, np.random.default_rng(seed))
        assert hu.dtype == np.int16 and hu.shape == out.shape
        core = ndimage.binary_erosion(out == 1, iterations=2)
        means.append(float(hu[core].mean()))
        assert -10 - 30 < means[-1] < 260 + 30
        assert np.median(hu[0]) < -900 and np.median(hu[-1]) < -900  # air at the grid's edge
        body = ndimage.binary_dilation(out > 0, iterations=3) & ~(out > 0)
        assert np.median(hu[body]) > -500  # tissue, not air, right around the structures
    assert np.ptp(means) > 30  # the organ's intensity is drawn per case


def test_template_case_label_is_the_deformed_model_labels_and_the_image_follows_it():
    t, affine = _template()
    image, label, out_affine = template_case(
        t, affine, NAMES, LABELS, (2.0, 2.0, 4.0), np.random.default_rng(1)
    )
    assert image.shape == label.shape and label.dtype == np.uint8
    assert set(np.unique(label)) == {0, 1, 2}  # the stomach is background to the model
    # the image has the kidney's own intensity where the label says kidney: same deformation for both
    kidney = ndimage.binary_erosion(label == 2, iterations=1)
    ring = ndimage.binary_dilation(label == 2, iterations=3) & ~ndimage.binary_dilation(
        label == 2, iterations=1
    )
    assert abs(float(image[kidney].mean()) - float(image[ring].mean())) > 3 * float(image[kidney].std())


def test_cli_writes_a_datastore_and_refuses_bad_input(tmp_path, capsys):
    t, affine = _template()
    path = tmp_path / "template.nii.gz"
    nib.save(nib.Nifti1Image(t, affine), str(path))
    out = tmp_path / "cases"
    argv = ["--template", str(path), "--template-labels", json.dumps(NAMES), "--labels", "liver,kidney"]
    assert main([*argv, "--count", "2", "--out", str(out), "--spacing", "3", "3", "6"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["case"] for r in rows] == ["template_000.nii.gz", "template_001.nii.gz"]
    for row in rows:
        image, label = nib.load(out / row["case"]), nib.load(out / "labels" / "final" / row["case"])
        assert image.shape == label.shape and image.get_data_dtype() == np.int16
        np.testing.assert_allclose(image.affine, label.affine)
        assert row["voxels"]["liver"] == int((np.asarray(label.dataobj) == 1).sum()) > 0
    assert not list(out.rglob(".tmp-*"))
    with pytest.raises(SystemExit):
        main([*argv[:2], "--template-labels", '{"liver": 0}', "--labels", "liver", "--out", str(out)])
    assert "must be an integer > 0" in capsys.readouterr().err
    assert main([*argv[:3], json.dumps({"stomach": 7}), *argv[4:], "--out", str(out)]) == 1
    assert "names none of the model's labels" in capsys.readouterr().err
    halves = tmp_path / "halves.nii.gz"
    nib.save(nib.Nifti1Image(t.astype(np.float32) / 2, affine), str(halves))
    assert main(["--template", str(halves), *argv[2:], "--out", str(out)]) == 1
    assert "need a 3-D label map of integers" in capsys.readouterr().err


def test_cli_reads_an_nrrd_template(tmp_path, capsys):
    sitk = pytest.importorskip("SimpleITK")
    t, affine = _template()
    image = sitk.GetImageFromArray(np.ascontiguousarray(t.transpose(2, 1, 0)))  # ITK arrays are [k, j, i]
    image.SetSpacing((4.0, 4.0, 8.0))
    image.SetOrigin((80.0, 60.0, 100.0))  # LPS: RAS (-80, -60, 100)
    image.SetDirection((-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))  # RAS axes, as the NIfTI above
    path = tmp_path / "template.nrrd"
    sitk.WriteImage(image, str(path))
    out = tmp_path / "cases"
    argv = ["--template", str(path), "--template-labels", json.dumps(NAMES), "--labels", "liver,kidney"]
    assert main([*argv, "--count", "1", "--out", str(out)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["voxels"]["liver"] > 0 and row["voxels"]["kidney"] > 0
