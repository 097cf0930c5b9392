"""The per-request memory bound of the predictor: working-grid voxel counts and the refusal."""

import numpy as np
import pytest

from lib.inference.predictor import ImageTooLarge, Predictor, working_voxels
from lib.planning.presets import CT_ORGANS, XRAY_LUNGS, build_network
from tests.server import SAMPLE_CT


def test_working_voxels_known_answers():
    affine = np.diag([0.75, 0.75, 6.0, 1.0])  # CT_ORGANS works at 1.5 x 1.5 x 3 mm
    assert working_voxels((100, 100, 10), affine, CT_ORGANS) == 50 * 50 * 20
    oblique = np.eye(4)
    oblique[:3, :3] = [[0.0, -0.75, 0.0], [0.75, 0.0, 0.0], [0.0, 0.0, 6.0]]  # axes swapped: same sizes
    assert working_voxels((100, 100, 10), oblique, CT_ORGANS) == 50 * 50 * 20
    assert working_voxels((3000, 2500), np.eye(4), XRAY_LUNGS) == 256 * 256  # 2-D: resized


def test_image_over_the_bound_is_refused_before_resampling():
    image = str(SAMPLE_CT / "case_011.nii.gz")  # 288 x 198 x 15 at 1 x 1 x 5 mm: 626k working voxels
    network = build_network(CT_ORGANS)
    tensor, _, _ = Predictor(CT_ORGANS, network, max_voxels=700_000).preprocess(image)
    assert np.prod(tensor.shape[1:]) <= 700_000
    with pytest.raises(ImageTooLarge, match="limit 0.6M"):
        Predictor(CT_ORGANS, network, max_voxels=600_000).preprocess(image)
