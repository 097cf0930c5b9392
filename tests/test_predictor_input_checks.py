"""The predictor on inputs with nothing to segment, and its per-call options (``InferConfig``)."""

from dataclasses import fields

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage

from lib.inference.config import DEFAULTS, InferConfig
from lib.inference.predictor import Predictor, predict_logits
from lib.planning.presets import CT_ORGANS, build_network
from tests.server import SAMPLE_CT

CASE = SAMPLE_CT / "case_011.nii.gz"


def random_predictor() -> Predictor:
    torch.manual_seed(0)
    return Predictor(CT_ORGANS, build_network(CT_ORGANS))


def save_like_case(path, data: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(data, nib.load(CASE).affine), path)
    return str(path)


def test_constant_near_constant_and_blank_images_give_an_empty_label_with_a_note(tmp_path):
    shape = nib.load(CASE).shape
    rng = np.random.default_rng(0)
    inputs = {
        "zeros": np.zeros(shape, np.int16),
        "constant soft tissue": np.full(shape, 40, np.int16),
        "near-constant": (1000 + rng.uniform(-0.4, 0.4, shape)).astype(np.float32),
        "air only (blank in the CT window)": rng.integers(-1024, -900, shape).astype(np.int16),
    }
    predictor = random_predictor()
    for what, data in inputs.items():
        out = predictor(save_like_case(tmp_path / "in.nii.gz", data))
        assert out.label.shape == shape and not out.label.any(), what
        assert "nothing to segment" in out.note, what
        np.testing.assert_allclose(out.affine, nib.load(CASE).affine, atol=1e-6)
    real = predictor(str(CASE))
    assert real.note == "" and real.label.any()


def test_largest_component_is_chosen_per_call():
    predictor = random_predictor()  # an untrained network scatters every class in many pieces
    kept = predictor(str(CASE), InferConfig(largest_component=True)).label
    raw = predictor(str(CASE), InferConfig(largest_component=False)).label
    pieces = {
        name: [ndimage.label(lab == c)[1] for c in range(1, 5)]
        for name, lab in (("kept", kept), ("raw", raw))
    }
    # one piece per class on the working grid; trilinear restoring onto the finer input grid re-splits
    # some of an untrained network's near-ties, so compare counts
    assert sum(pieces["kept"]) < sum(pieces["raw"]) / 2, pieces
    assert predictor.config == DEFAULTS  # the predictor's own setting did not change


def test_overlap_and_window_batch_change_what_the_network_is_run_on():
    predictor = random_predictor()
    image, _, _ = predictor.preprocess(str(CASE))
    batches = []

    def network(x: torch.Tensor) -> torch.Tensor:
        batches.append(x.shape[0])
        return predictor.network(x)

    runs = {}
    for config in (DEFAULTS, InferConfig(overlap=0.5), InferConfig(sw_batch_size=1)):
        batches.clear()
        logits = predict_logits(network, image, (64, 64, 16), "fp32", config.sw_batch_size, config.overlap)
        runs[config] = (sum(batches), max(batches), logits)
    windows, widest, logits = runs[DEFAULTS]
    assert widest == DEFAULTS.sw_batch_size and runs[InferConfig(sw_batch_size=1)][1] == 1
    assert runs[InferConfig(overlap=0.5)][0] > windows  # more overlap: more windows, other blending
    assert not torch.allclose(runs[InferConfig(overlap=0.5)][2], logits)


def test_every_infer_option_has_a_test_that_observes_its_effect():
    # largest_component, overlap and sw_batch_size above; mirror in tests/test_mirroring.py
    observed = {"largest_component", "overlap", "sw_batch_size", "mirror"}
    assert {f.name for f in fields(InferConfig)} == observed
