"""Training images synthesised from label maps with random contrast, resolution, bias field and noise, after
SynthSeg (Billot et al., MedIA 2023) and SynthStrip (Hoopes et al., NeuroImage 2022): a model that never sees
the same contrast twice has to segment by shape, so it holds on scans unlike the ones it was trained on.

* :func:`generation_labels`: the map the synthesis draws from: the target labels, and the background split
  into pseudo-tissues by the real image's intensity (:func:`intensity_classes`: air, fat, muscle, bone of
  a CT, say), for any modality and dataset;
* :func:`synthesize`: one random image from such a map (numpy, a few tenths of a second for a 128^3 patch);
* :class:`RandSynthesizeFromLabelsd`: replaces a training patch's image by a synthetic one with probability
  ``prob``; :func:`synthesis` builds it for the augmentation list (after patch sampling, before the spatial
  augmentation, so the synthetic image is deformed with its label and still gets the intensity augmentation).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_numpy
from scipy.ndimage import gaussian_filter1d

BIAS_GRID = 4  # control points per axis of the bias field: a field smooth on the scale of the patch
HISTOGRAM_BINS = 1024  # intensity resolution of the background classes: 0.1 % of their range
FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))  # a Gaussian's full width at half maximum, in sigmas


@dataclass(frozen=True)
class SynthesisRanges:
    """What :func:`synthesize` draws, uniformly in each ``(low, high)`` range, once per image.

    Intensities are on a 0..1 scale until the final normalisation (about SynthSeg's default means 25..225
    and stds 5..25 on its 0..255 scale). ``mean``/``std``: each generation label's mean and within-label
    Gaussian noise (both drawn per label); ``partial_volume``: sigma in voxels of the smoothing of the
    piecewise image; ``bias``: std of the log of the multiplicative bias field (``BIAS_GRID`` points per
    axis, linearly interpolated); ``thick_slice``: slice thickness in voxels along one random axis, applied
    with ``thick_slice_prob``; ``low_res``: voxel size in voxels along every axis, applied with
    ``low_res_prob``; ``log_gamma``: log of the gamma applied to the image scaled to 0..1; ``noise``: std of
    the additive noise on that scale. A range ``(0, 0)`` or a probability 0 turns its step off.
    """

    mean: tuple[float, float] = (0.1, 0.9)
    std: tuple[float, float] = (0.02, 0.1)
    partial_volume: tuple[float, float] = (0.3, 0.8)
    bias: tuple[float, float] = (0.0, 0.3)
    thick_slice: tuple[float, float] = (2.0, 5.0)
    thick_slice_prob: float = 0.3
    low_res: tuple[float, float] = (1.0, 2.0)
    low_res_prob: float = 0.2
    log_gamma: tuple[float, float] = (-0.4, 0.4)
    noise: tuple[float, float] = (0.0, 0.05)


def generation_labels(
    image: NdarrayOrTensor, label: NdarrayOrTensor, n_background_classes: int = 3, smooth: float = 1.0
) -> np.ndarray:
    """The generation label map of a channel-first ``image`` (C, ...) and its ``label`` (1, ...).

    Target labels 1..N (N: the largest value in ``label``) are kept; each background voxel gets N + 1 + k,
    k in 0..K-1 its intensity class (:func:`intensity_classes` of the real image over the background, the
    channel mean Gaussian-smoothed with sigma ``smooth`` voxels so noise does not speckle the classes).
    Every voxel gets a tissue, so 0 does not occur; ``label`` itself is not changed.

    >>> generation_labels(np.array([[[0.0, 1, 2, 3, 9, 9]]]), np.array([[[0, 0, 0, 0, 1, 1]]]), 2, 0.0)
    array([[[2, 2, 3, 3, 1, 1]]])
    """
    labels = convert_to_numpy(label).astype(np.int64)
    if labels.shape[0] != 1 or labels.min() < 0:
        raise ValueError(f"label must be one channel of values >= 0, got shape {labels.shape}")
    intensity = convert_to_numpy(image).astype(np.float32).mean(axis=0)
    for axis in range(intensity.ndim) if smooth > 0 else ():
        intensity = gaussian_filter1d(intensity, smooth, axis=axis)
    out = labels.copy()
    background = labels[0] == 0
    if background.any():
        out[0][background] = labels.max() + 1 + intensity_classes(intensity[background], n_background_classes)
    return out


def intensity_classes(values: np.ndarray, k: int) -> np.ndarray:
    """Class 0..k-1 of each value: the k intensity intervals of least within-class variance (exact 1-D
    k-means, i.e. multi-level Otsu, by dynamic programming on a ``HISTOGRAM_BINS`` histogram). Unlike
    quantiles, a tissue that fills most of the background (air around the body) stays one class instead
    of being cut inside its noise; tied values (a flat padded region) share a bin, hence a class.

    >>> intensity_classes(np.array([0.0, 0.1, 0.0, 0.1, 0.2, 5.0, 5.1]), 2).tolist()
    [0, 0, 0, 0, 0, 1, 1]
    """
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    x = (edges[:-1] + edges[1:]) / 2
    x = (x - x[0]) / (x[-1] - x[0])  # 0..1, so the sums below keep their precision
    w, s, q = (np.concatenate([[0.0], np.cumsum(counts * x**p)]) for p in range(3))
    dw, ds, dq = (a[None, :] - a[:, None] for a in (w, s, q))
    cost = dq - ds**2 / np.maximum(dw, 1e-12)  # [i, j]: squared deviations of bins i..j-1 from their mean
    cost[np.tril_indices(HISTOGRAM_BINS + 1)] = np.inf  # a class holds at least one bin
    best, starts = cost[0], []  # best[j]: least cost of bins 0..j-1 in the classes so far
    for _ in range(k - 1):
        total = best[:, None] + cost
        starts.append(total.argmin(axis=0))
        best = total.min(axis=0)
    bounds, j = [], HISTOGRAM_BINS
    for start in reversed(starts):
        j = int(start[j])
        bounds.append(j)
    return np.searchsorted(edges[sorted(bounds)], values, side="right")


def synthesize(
    gen_labels: NdarrayOrTensor, rng: np.random.Generator, ranges: SynthesisRanges = SynthesisRanges()
) -> np.ndarray:
    """One random float32 image (1, ...) from a generation label map (1, ...) of a 2-D or 3-D patch.

    Per label a mean and a std, Gaussian noise within each label, partial-volume smoothing, a multiplicative
    bias field, thick slices and/or low resolution (blur, downsample, linear resampling back), gamma on the
    image scaled to 0..1, additive noise; see :class:`SynthesisRanges`. The result is z-scored (zero mean,
    unit std; a constant image comes out all 0): a neutral scale that :class:`RandSynthesizeFromLabelsd`
    moves onto the real patch's.
    """
    labels = convert_to_numpy(gen_labels).astype(np.int64)[0]
    if labels.min() < 0:
        raise ValueError("generation labels must be >= 0")
    n = int(labels.max()) + 1
    means = rng.uniform(*ranges.mean, size=n).astype(np.float32)
    stds = rng.uniform(*ranges.std, size=n).astype(np.float32)
    image = means[labels] + stds[labels] * rng.standard_normal(labels.shape, dtype=np.float32)
    image = _blur(np.maximum(image, 0.0), [rng.uniform(*ranges.partial_volume)] * labels.ndim)
    coarse = rng.normal(0.0, rng.uniform(*ranges.bias), size=(BIAS_GRID,) * labels.ndim)
    image *= np.exp(_resize(coarse.astype(np.float32), labels.shape))
    factors = np.ones(labels.ndim)
    if rng.uniform() < ranges.thick_slice_prob:
        factors[rng.choice(labels.ndim)] = rng.uniform(*ranges.thick_slice)
    if rng.uniform() < ranges.low_res_prob:
        factors = np.maximum(factors, rng.uniform(*ranges.low_res))
    image = _lower_resolution(image, factors)
    image = (image - image.min()) / max(float(image.max() - image.min()), 1e-8)
    image = image ** np.float32(np.exp(rng.uniform(*ranges.log_gamma)))
    image += np.float32(rng.uniform(*ranges.noise)) * rng.standard_normal(labels.shape, dtype=np.float32)
    image = (image - image.mean()) / max(float(image.std()), 1e-8)
    return image[None].astype(np.float32)


def _blur(image: np.ndarray, sigmas) -> np.ndarray:
    """Separable Gaussian smoothing, ``sigmas`` in voxels per axis (0: that axis is left alone)."""
    for axis, sigma in enumerate(sigmas):
        if sigma > 0:
            image = gaussian_filter1d(image, float(sigma), axis=axis, mode="nearest")
    return image


def _resize(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Linear resampling of a 2-D or 3-D array to ``shape`` (corners kept in place)."""
    mode = "bilinear" if image.ndim == 2 else "trilinear"
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=tuple(shape), mode=mode, align_corners=True)[0, 0].numpy()


def _lower_resolution(image: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The image as acquired with voxels ``factors`` times larger per axis, back on its grid: blur to a
    Gaussian point spread of FWHM ``factor`` voxels (the grid's own voxel counts as FWHM 1), sample every
    ``factor`` voxels, resample back linearly. Axes with factor 1 (or less) are not touched."""
    factors = np.maximum(factors, 1.0)
    if np.all(factors == 1.0):
        return image
    sigmas = np.sqrt(factors**2 - 1.0) / FWHM
    low = tuple(max(2, round(n / f)) for n, f in zip(image.shape, factors, strict=True))
    return _resize(_resize(_blur(image, sigmas), low), image.shape)


class RandSynthesizeFromLabelsd(RandomizableTransform, MapTransform):
    """With probability ``prob``, replace each ``keys`` image by one synthesised from ``label_key``'s label
    map and the image's own background (:func:`generation_labels`, :func:`synthesize` per channel), scaled
    to the real image's mean and std per channel (the scale of the images the model sees at inference,
    whatever the normalisation scheme; std 1 for a flat real image). The output is float32, with the
    input's shape and, for a MetaTensor, its meta data and affine; the label is not touched. Otherwise the
    image passes unchanged.

    For example, with every degradation off (``ranges`` below), a label with foreground on the right half
    and a real image of mean 2 and std 2: the two equal halves come out at mean -/+ std, one random
    intensity per tissue (which is brighter changes with the seed):

    >>> flat = SynthesisRanges(std=(0, 0), partial_volume=(0, 0), bias=(0, 0), thick_slice_prob=0,
    ...                        low_res_prob=0, log_gamma=(0, 0), noise=(0, 0))
    >>> t = RandSynthesizeFromLabelsd(prob=1.0, n_background_classes=1, ranges=flat)
    >>> label = np.array([[[0, 0, 1, 1], [0, 0, 1, 1]]])
    >>> image = np.array([[[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0]]])
    >>> t.set_random_state(seed=0)({"image": image, "label": label})["image"].round(4)
    array([[[4., 4., 0., 0.],
            [4., 4., 0., 0.]]], dtype=float32)
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        keys: KeysCollection = "image",
        label_key: str = "label",
        prob: float = 0.5,
        n_background_classes: int = 3,
        ranges: SynthesisRanges = SynthesisRanges(),
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.label_key = label_key
        self.n_background_classes = n_background_classes
        self.ranges = ranges
        self._seed = 0

    def randomize(self, data: object = None) -> None:
        """Whether to synthesise this time, and the seed of the synthesis (both from ``self.R``)."""
        super().randomize(None)
        self._seed = int(self.R.randint(2**31 - 1))

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        rng = np.random.default_rng(self._seed)
        for key in self.key_iterator(d):
            real = convert_to_numpy(d[key]).astype(np.float32)
            gen = generation_labels(real, d[self.label_key], self.n_background_classes)
            synthetic = np.concatenate([synthesize(gen, rng, self.ranges) for _ in range(real.shape[0])])
            axes = tuple(range(1, real.ndim))
            mean, std = real.mean(axis=axes, keepdims=True), real.std(axis=axes, keepdims=True)
            synthetic = synthetic * np.where(std > 1e-6, std, 1.0) + mean
            d[key] = convert_to_dst_type(synthetic.astype(np.float32), d[key], dtype=torch.float32)[0]
        return d


def synthesis(prob: float) -> list:
    """The synthesis step of the augmentation list: ``prob`` of the patches get a synthetic image."""
    return [RandSynthesizeFromLabelsd(keys="image", label_key="label", prob=prob)]
