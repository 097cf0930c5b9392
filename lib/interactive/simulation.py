"""The simulated annotator: the clicks a careful annotator makes, for training the click-driven models
and for benchmarking them without a person.

* :func:`next_click`: the correction of the largest error, at its deepest voxel (what an error-driven
  training round and a click benchmark ask for after each prediction);
* :func:`initial_clicks`: first clicks inside each structure, away from its boundary;
* :class:`RandClickGuidanced`: a training-patch transform that draws initial clicks from the patch's label
  (none at all on a share of the patches, so the auto mode is trained too) and appends their guidance
  channels (:func:`lib.interactive.guidance.guidance_channels`) to the image.

Label maps here are spatial arrays (no channel axis) of label values, 0 the background.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import convert_to_numpy
from scipy import ndimage

from lib.interactive.guidance import BACKGROUND, SIGMA, Clicks, Point, guidance_channels


class Click(NamedTuple):
    """One click: ``label``, the label whose error it corrects; ``point``, its voxel index; ``kind``
    ``"foreground"`` (this voxel is ``label``) or ``"background"`` (this voxel is background, not
    ``label``)."""

    label: str
    point: Point
    kind: str


def next_click(
    prediction: np.ndarray,
    truth: np.ndarray,
    labels: Mapping[str, int],
    spacing: Sequence[float] | None = None,
) -> Click | None:
    """The click a careful annotator makes next on ``prediction`` against ``truth`` (label maps of one
    shape), or None when no label has an error.

    Error regions are the connected components (face connectivity) of, per label, its misses (``truth``
    is the label, ``prediction`` is not: a foreground click for it) and its false positives on the
    background (``prediction`` is the label, ``truth`` is 0: a background click). A voxel predicted as
    one label but truly another is a miss of the true label, so every click tells the truth about its
    voxel. The largest region wins (ties: the first in label-value order, misses first); the click is
    its voxel farthest from the region's boundary (Euclidean distance transform, in ``spacing`` units
    per axis, default voxels; the array's edge counts as boundary; ties: the first in C order).

    >>> labels = {"organ": 1}
    >>> truth = np.array([0, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    >>> next_click(np.array([0, 1, 0, 0, 0, 1, 0, 1, 1, 0]), truth, labels)
    Click(label='organ', point=(3,), kind='foreground')
    >>> next_click(np.array([0, 1, 1, 1, 1, 1, 0, 1, 1, 1]), truth, labels)
    Click(label='organ', point=(8,), kind='background')
    >>> next_click(truth, truth, labels) is None
    True
    """
    pred, true = np.asarray(prediction), np.asarray(truth)
    if pred.shape != true.shape:
        raise ValueError(f"prediction {pred.shape} and truth {true.shape} differ in shape")
    best: tuple[int, str, str, np.ndarray] | None = None
    for name, value in sorted(labels.items(), key=lambda item: item[1]):
        misses = (true == value) & (pred != value)
        false_positives = (pred == value) & (true == 0)
        for kind, errors in (("foreground", misses), ("background", false_positives)):
            components, n = ndimage.label(errors)
            if n == 0:
                continue
            sizes = np.bincount(components.ravel())[1:]
            k = int(sizes.argmax())
            if best is None or sizes[k] > best[0]:
                best = (int(sizes[k]), name, kind, components == k + 1)
    if best is None:
        return None
    _, name, kind, region = best
    return Click(name, deepest_voxel(region, spacing), kind)


def deepest_voxel(region: np.ndarray, spacing: Sequence[float] | None = None) -> Point:
    """The voxel of the non-empty boolean ``region`` farthest from its boundary (the array's edge counts
    as boundary; first in C order on ties).

    >>> region = np.zeros((5, 7), bool); region[:, :5] = True; region[0, 0] = False
    >>> deepest_voxel(region)
    (2, 2)
    """
    box = ndimage.find_objects(region.astype(np.int8))[0]
    distance = ndimage.distance_transform_edt(np.pad(region[box], 1), sampling=spacing)
    distance = distance[(slice(1, -1),) * region.ndim]
    index = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return tuple(int(i + s.start) for i, s in zip(index, box, strict=True))


def add_click(clicks: Clicks, click: Click) -> Clicks:
    """``clicks`` with ``click`` added: a foreground click to its label's points, a background click to
    the background points (duplicates are not added twice)."""
    foreground = {name: list(points) for name, points in clicks.foreground.items()}
    background = list(clicks.background)
    if click.kind not in ("foreground", "background"):
        raise ValueError(f"a click's kind is 'foreground' or 'background', got {click.kind!r}")
    points = foreground.setdefault(click.label, []) if click.kind == "foreground" else background
    if click.point not in points:
        points.append(click.point)
    return Clicks(foreground, background, clicks.label)


def initial_clicks(
    truth: np.ndarray,
    labels: Mapping[str, int],
    rng: np.random.Generator,
    per_label: int | Mapping[str, int],
) -> Clicks:
    """First-round clicks on ``truth`` (a label map): for each label present, ``per_label`` distinct
    voxels inside it (fewer if it has fewer voxels), drawn with probability proportional to their
    distance from the label's boundary (the array's edge counts as boundary), so clicks land in the
    interior as an annotator's do. ``per_label``: one count for every label, or {name: count} with
    ``background`` for background clicks (drawn the same way in ``truth == 0``; names left out get none).

    >>> truth = np.array([0, 0, 1, 0, 2, 2, 2])
    >>> initial_clicks(truth, {"a": 1, "b": 2}, np.random.default_rng(0), {"a": 1, "b": 0})
    Clicks(foreground={'a': [(2,)], 'b': []}, background=[], label=None)
    """
    true = np.asarray(truth)
    counts = dict(per_label) if isinstance(per_label, Mapping) else dict.fromkeys(labels, int(per_label))
    unknown = set(counts) - set(labels) - {BACKGROUND}
    if unknown:
        raise ValueError(f"click counts for unknown labels {sorted(unknown)}; valid: {[*labels, BACKGROUND]}")
    foreground = {
        name: _interior_sample(true == value, counts.get(name, 0), rng)
        for name, value in sorted(labels.items(), key=lambda item: item[1])
    }
    return Clicks(foreground, _interior_sample(true == 0, counts.get(BACKGROUND, 0), rng))


def _interior_sample(mask: np.ndarray, k: int, rng: np.random.Generator) -> list[Point]:
    """Up to ``k`` distinct voxels of ``mask``, probability proportional to their boundary distance."""
    if k <= 0 or not mask.any():
        return []
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[(slice(1, -1),) * mask.ndim]
    flat = np.flatnonzero(mask)
    weights = distance.ravel()[flat]
    picks = rng.choice(flat.size, size=min(k, flat.size), replace=False, p=weights / weights.sum())
    return [tuple(int(i) for i in np.unravel_index(flat[j], mask.shape)) for j in picks]


def make_faint(
    image: NdarrayOrTensor, mask: np.ndarray, factor: float, background: np.ndarray | None = None
) -> NdarrayOrTensor:
    """``image`` (C, *spatial) with the structure ``mask`` (*spatial) made faint: its contrast to its
    surroundings (the median of a 3-voxel ring around it, on ``background`` where the ring has any)
    scaled by ``factor``; a copy, of the input's type.

    >>> image = np.array([[0.0, 0.0, 10.0, 12.0, 0.0, 0.0]])
    >>> make_faint(image, np.array([0, 0, 1, 1, 0, 0], bool), 0.5).tolist()
    [[0.0, 0.0, 5.0, 6.0, 0.0, 0.0]]
    """
    ring = ndimage.binary_dilation(mask, iterations=3) & ~mask
    if background is not None and (ring & background).any():
        ring &= background
    out = image.clone() if isinstance(image, torch.Tensor) else np.array(image, copy=True)
    if not ring.any() or not mask.any():
        return out
    select = torch.from_numpy(mask) if isinstance(out, torch.Tensor) else mask
    for c in range(out.shape[0]):
        values = out[c]
        level = float(np.median(convert_to_numpy(values)[ring]))
        values[select] = level + factor * (values[select] - level)
    return out


class RandClickGuidanced(RandomizableTransform, MapTransform):
    """Append click guidance to each ``keys`` image of a training patch: image (1, *spatial) ->
    (1 + N + 1, *spatial), the N + 1 channels of :func:`~lib.interactive.guidance.guidance_channels`.

    With probability ``no_clicks_prob`` the guidance is all zero (the auto mode); otherwise each label
    and the background get a count drawn uniformly from 0..``max_clicks`` and that many
    :func:`initial_clicks` in the patch's ``label_key`` label map (1, *spatial); classes absent from
    the patch get none. So a patch without clicks happens a little more often than ``no_clicks_prob``:
    also when every drawn count of the classes present is 0. In a share ``faint_prob`` of the clicked
    patches one clicked label is made faint (:func:`make_faint`): the case clicks are for, a structure
    the image alone does not show well enough, where the click must add it. The label is not changed;
    a torch image stays torch (a MetaTensor keeps its meta data), numpy stays numpy. Reproducible
    through ``set_random_state``.

    >>> label = np.zeros((1, 8, 8), np.uint8); label[0, 2:6, 2:6] = 1
    >>> t = RandClickGuidanced({"organ": 1}, max_clicks=2, no_clicks_prob=0.0).set_random_state(seed=0)
    >>> t({"image": np.zeros((1, 8, 8), np.float32), "label": label})["image"].shape
    (3, 8, 8)
    """

    def __init__(
        self,
        labels: Mapping[str, int],
        keys: KeysCollection = "image",
        label_key: str = "label",
        max_clicks: int = 3,
        no_clicks_prob: float = 0.25,
        sigma: float | Sequence[float] = SIGMA,
        allow_missing_keys: bool = False,
        faint_prob: float = 0.3,
    ) -> None:
        if max_clicks < 0 or not 0.0 <= no_clicks_prob <= 1.0:
            raise ValueError(
                f"need max_clicks >= 0 and no_clicks_prob in [0, 1], got {max_clicks}, {no_clicks_prob}"
            )
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob=1.0 - no_clicks_prob)
        self.labels = dict(labels)
        self.label_key = label_key
        self.max_clicks = max_clicks
        self.sigma = sigma
        self.faint_prob = faint_prob
        self._counts: dict[str, int] = {}
        self._seed = 0
        self._faint: float | None = None

    def randomize(self, data: object = None) -> None:
        """Whether to click, the click count of every class and the seed of the click positions."""
        super().randomize(None)
        names = [*self.labels, BACKGROUND]
        self._counts = {name: int(self.R.randint(0, self.max_clicks + 1)) for name in names}
        self._seed = int(self.R.randint(2**31 - 1))
        self._faint = float(self.R.uniform(0.0, 0.4)) if self.R.random_sample() < self.faint_prob else None

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize()
        truth = convert_to_numpy(d[self.label_key])
        if truth.shape[0] != 1:
            raise ValueError(f"{self.label_key!r} must be one channel, got shape {truth.shape}")
        clicks = Clicks()
        faint = None
        if self._do_transform:
            rng = np.random.default_rng(self._seed)
            clicks = initial_clicks(truth[0], self.labels, rng, self._counts)
            clicked = [name for name, points in clicks.foreground.items() if points]
            if clicked and self._faint is not None:
                faint = truth[0] == self.labels[clicked[int(rng.integers(len(clicked)))]]
        guidance = guidance_channels(clicks, self.labels, truth.shape[1:], self.sigma)
        for key in self.key_iterator(d):
            image = d[key]
            if faint is not None:
                image = make_faint(image, faint, self._faint, truth[0] == 0)
            if tuple(image.shape[1:]) != guidance.shape[1:]:
                raise ValueError(f"{key!r} {tuple(image.shape)} and its label {truth.shape} differ in grid")
            if isinstance(image, torch.Tensor):
                d[key] = torch.cat([image, torch.as_tensor(guidance, dtype=image.dtype, device=image.device)])
            else:
                d[key] = np.concatenate([image, guidance.astype(image.dtype)])
        return d
