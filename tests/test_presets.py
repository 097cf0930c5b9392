"""Model presets: validation, lookup, and the checkpoint's own working grid."""

import pytest

from lib.planning.presets import CT_ORGANS, PRESETS, ModelPreset, get_preset, preset_for_checkpoint


def test_lookup_and_unknown_names():
    assert set(PRESETS) == {"ct_organs", "mri_brain", "xray_lungs"}
    assert get_preset("ct_organs") is CT_ORGANS
    with pytest.raises(ValueError, match="valid: ct_organs, mri_brain, xray_lungs"):
        get_preset("liver")


def test_labels_must_be_contiguous_and_dims_consistent():
    with pytest.raises(ValueError, match="contiguous"):
        ModelPreset("x", "CT", "", {"a": 1, "b": 3}, 3, (1.0,) * 3, (8,) * 3, {})
    with pytest.raises(ValueError, match="3 entries"):
        ModelPreset("x", "CT", "", {"a": 1}, 3, (1.0, 1.0), (8,) * 3, {})


def test_checkpoint_grid_overrides_the_preset_grid():
    old = preset_for_checkpoint(CT_ORGANS, {"spacing": [2.0, 2.0, 3.0], "patch_size": [112, 112, 32]})
    assert (
        old.spacing == (2.0, 2.0, 3.0) and old.patch_size == (112, 112, 32) and old.labels == CT_ORGANS.labels
    )
    assert preset_for_checkpoint(CT_ORGANS, {}) == CT_ORGANS
