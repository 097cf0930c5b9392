"""End to end: the real MONAI Label server with the CT model, driven by the 3D Slicer plugin's client."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.server import SAMPLE_CT, annotator_datastore, mean_dice

pytestmark = pytest.mark.server

ORGANS = {"liver": 1, "spleen": 2, "kidney_left": 3, "kidney_right": 4}
LABELLED = ["case_001.nii.gz"]  # starts with a final label; the others are for the annotator
UNLABELLED = ["case_006.nii.gz", "case_011.nii.gz"]  # held out from the shipped model


def reoriented_copies(src: str, folder) -> dict[str, str]:
    """The same scan stored differently: flipped voxel order, LPS affine, half the slices."""
    img = nib.load(src)
    data, affine = np.asarray(img.dataobj), img.affine
    out = {}

    def flipped(axes):  # voxel order reversed along ``axes``; world geometry unchanged
        f = np.eye(4)
        for ax in axes:
            f[ax, ax], f[ax, 3] = -1, data.shape[ax] - 1
        return data[tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(3))], affine @ f

    variants = {
        "flipped": flipped((0,)),
        "lps": flipped((0, 1)),  # RAS <-> LPS voxel axes
        "thick": (data[:, :, ::2], affine @ np.diag([1, 1, 2, 1])),
    }
    for name, (arr, aff) in variants.items():
        path = folder / f"variant_{name}.nii.gz"
        nib.save(nib.Nifti1Image(np.ascontiguousarray(arr), aff), path)
        out[name] = str(path)
    return out


def to_grid(label: np.ndarray, affine: np.ndarray, ref_affine: np.ndarray, ref_shape) -> np.ndarray:
    """Nearest-neighbour resample of ``label`` onto a reference grid via world coordinates."""
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in ref_shape], indexing="ij"), -1).reshape(-1, 3)
    world = idx @ ref_affine[:3, :3].T + ref_affine[:3, 3]
    src = np.rint((world - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T).astype(int)
    inside = np.all((src >= 0) & (src < np.array(label.shape)), axis=1)
    out = np.zeros(len(idx), label.dtype)
    out[inside] = label[tuple(src[inside].T)]
    return out.reshape(ref_shape)


@pytest.fixture(scope="module")
def ct_server(tmp_path_factory, start_server):
    root = tmp_path_factory.mktemp("ct")
    studies, truth = annotator_datastore(SAMPLE_CT, root, LABELLED, UNLABELLED)
    variants = reoriented_copies(str(studies / UNLABELLED[0]), studies)
    server = start_server(studies, root / "model", root / "server.log")
    server.studies, server.truth, server.variants = studies, truth, variants
    return server


@pytest.fixture(scope="module")
def client(ct_server, slicer_client):
    return slicer_client(ct_server.url)


def test_info_suits_slicer_and_ohif(client):
    info = client.info()
    assert "config" not in info  # 3D Slicer refuses a server with a top-level config
    assert info["labels"] == list(ORGANS)
    model = info["models"]["ct_organs"]
    assert model["type"] == "segmentation" and model["dimension"] == 3 and model["description"]
    assert model["labels"] == ORGANS
    train = info["trainers"]["ct_organs"]["config"]
    assert train["optimizer"][0] == "adamw" and train["scheduler"][0] == "cosine"


def _infer(client, image_id, ext, dtype="uint8"):
    path, params = client.infer("ct_organs", image_id, {"result_extension": ext, "result_dtype": dtype})
    return path, params


def test_slicer_loop_next_sample_infer_submit(client, ct_server):
    sample = client.next_sample("random", {})
    assert sample["id"] in [n.replace(".nii.gz", "") for n in UNLABELLED] + [
        f"variant_{v}" for v in ct_server.variants
    ]
    image_id = UNLABELLED[0].replace(".nii.gz", "")
    src = nib.load(ct_server.studies / UNLABELLED[0])
    truth = np.asarray(nib.load(ct_server.truth / UNLABELLED[0]).dataobj)

    nrrd_path, params = _infer(client, image_id, ".nrrd")
    assert nrrd_path.endswith(".nrrd")
    assert set(params["latencies"]) >= {"pre", "infer", "invert", "post", "write", "total"}
    assert params["model_version"] == "default" and params["label_names"] == ORGANS
    import nrrd

    data, header = nrrd.read(nrrd_path)
    assert data.dtype == np.uint8 and data.shape == src.shape
    lps = np.diag([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(lps @ header["space directions"].T, src.affine[:3, :3], atol=1e-4)
    np.testing.assert_allclose(lps @ header["space origin"], src.affine[:3, 3], atol=1e-3)

    nii_path, _ = _infer(client, image_id, ".nii.gz")
    out = nib.load(nii_path)
    assert out.shape == src.shape
    np.testing.assert_allclose(out.affine, src.affine, atol=1e-4)
    pred = np.asarray(out.dataobj)
    np.testing.assert_array_equal(pred, data)
    assert mean_dice(pred, truth, list(ORGANS.values())) >= 0.85

    # the annotator corrects and submits: the image becomes labelled
    before = client.datastore()
    assert not before["objects"][image_id]["labels"].get("final")
    client.save_label(image_id, str(ct_server.truth / UNLABELLED[0]), tag="final")
    after = client.datastore()
    assert "final" in after["objects"][image_id]["labels"]
    stored = nib.load(ct_server.studies / "labels" / "final" / UNLABELLED[0])
    np.testing.assert_array_equal(np.asarray(stored.dataobj), truth)


def test_any_orientation_gives_the_same_segmentation(client, ct_server):
    ref = nib.load(ct_server.studies / UNLABELLED[0])
    reference, _ = _infer(client, UNLABELLED[0].replace(".nii.gz", ""), ".nii.gz")
    ref_label = np.asarray(nib.load(reference).dataobj)
    for name in ct_server.variants:
        path, _ = _infer(client, f"variant_{name}", ".nii.gz")
        out = nib.load(path)
        src = nib.load(ct_server.variants[name])
        assert out.shape == src.shape
        np.testing.assert_allclose(out.affine, src.affine, atol=1e-4)
        mapped = to_grid(np.asarray(out.dataobj), out.affine, ref.affine, ref.shape)
        if name == "thick":  # compare where both grids have data: the thick copy spans the same slab
            assert mean_dice(mapped, ref_label, list(ORGANS.values())) >= 0.90
        else:
            assert mean_dice(mapped, ref_label, list(ORGANS.values())) >= 0.95, name
