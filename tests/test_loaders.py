"""Training loader: the deterministic chain and the class index are cached; patches come out right."""

import numpy as np
import torch
from monai.data import CacheDataset
from monai.transforms import RandCropByLabelClassesd, RandomizableTrait, Transform

from lib.data.loaders import training_loader
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
