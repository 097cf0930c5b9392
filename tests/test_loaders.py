"""Training loader: the deterministic chain and the class index are cached; patches come out right."""

import nibabel as nib
import numpy as np
import torch
from monai.data import CacheDataset
from monai.transforms import RandCropByLabelClassesd, RandomizableTrait, Transform

from lib.data.loaders import training_loader, validation_cases
from lib.planning.presets import CT_ORGANS
from tests.server import SAMPLE_CT


def test_everything_before_patch_sampling_is_cached_once():
    name = "case_011.nii.gz"
    items = [{"image": str(SAMPLE_CT / name), "label": str(SAMPLE_CT / "labels" / "final" / name)}]
    loader = training_loader(items, CT_ORGANS, batch_size=1, num_samples=3)
    dataset = loader.dataset
    assert isinstance(dataset, CacheDataset)
    first_random = dataset.transform.get_index_of_first(
        lambda t: isinstance(t, RandomizableTrait) or not isinstance(t, Transform)
    )
    assert isinstance(dataset.transform.transforms[first_random], RandCropByLabelClassesd)
    cached = dataset._cache[0]
    assert cached["image"].shape[1:] == cached["label"].shape[1:]  # resampled once, at caching
    index = cached["label_cls_indices"]
    assert len(index) == CT_ORGANS.out_channels and all(len(i) > 0 for i in index)
    batch = next(iter(loader))
    assert batch["image"].shape == (3, 1, *CT_ORGANS.patch_size) and set(batch) == {"image", "label"}
    values = set(np.unique(batch["label"].numpy()).astype(int))
    assert values <= set(range(CT_ORGANS.out_channels)) and len(values) > 1
    assert torch.isfinite(batch["image"]).all()


def test_validation_cases_keep_the_label_as_annotated():
    name = "case_011.nii.gz"
    item = {"image": str(SAMPLE_CT / name), "label": str(SAMPLE_CT / "labels" / "final" / name)}
    (case,) = validation_cases([item], CT_ORGANS)
    annotated = nib.load(item["label"])
    assert case["reference"].shape == annotated.shape and case["reference"].dtype == np.uint8
    np.testing.assert_array_equal(case["reference"], np.asarray(annotated.dataobj))
    np.testing.assert_allclose(case["reference_affine"], annotated.affine, atol=1e-5)
    # the working grid: 1.5 x 1.5 x 3 mm, image and label on it
    assert case["image"].shape == case["label"].shape != (1, *annotated.shape)
    np.testing.assert_allclose(np.linalg.norm(case["image"].affine[:3, :3], axis=0), CT_ORGANS.spacing)
