"""Serving clicks: an interactive twin's answer to one click, fast enough to follow an annotator.

:class:`ClickEditor` keeps, per image, the preprocessed working-grid image (so a click costs one
network pass, not a reload and a resampling) and the last answer it gave; a click request is then:

1. the clicks, voxel indices of the input image, mapped onto the working grid
   (:func:`~lib.interactive.guidance.to_working_grid`) and drawn as guidance channels;
2. one pass of the twin with that guidance; each label keeps its largest component and every
   component an annotator clicked;
3. back on the input grid, :func:`merge_edit`: only the edited labels change, so a click for one
   label never erases another, except inside the region its click lands in (a click inside a region
   labelled as the wrong organ relabels that region, :func:`clicked_regions`); a new foreground
   click only adds to its label and a new background click only removes (:func:`click_intents`).
   The edited label is the request's ``label``; a request that names none (OHIF v3 sends every
   label's clicks and no ``label``; Slicer's ``background`` segment) edits the labels whose clicks
   changed since the last request on the image, and for new background clicks the labels the last
   answer has under them (:func:`edited_labels`).

A request without clicks is the auto mode (guidance zero) and starts the image afresh.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from lib.inference.config import InferConfig
from lib.inference.geometry import restore_labels
from lib.inference.predictor import Prediction, Predictor, keep_largest_components
from lib.interactive.guidance import Clicks, guidance_channels, to_working_grid

CACHE_IMAGES = 4  # preprocessed images (and last answers) kept; a sample CT's is about 7 MB
INTENTS = ("replace", "add", "remove")


def merge_edit(
    previous: np.ndarray,
    new: np.ndarray,
    edited: Iterable[int],
    claimed: np.ndarray | None = None,
    intents: Mapping[int, str] | None = None,
) -> np.ndarray:
    """``previous`` with the ``edited`` label values taken from ``new``. How depends on each label's
    intent (:func:`click_intents`; default ``"replace"``): ``"replace"`` clears the label's old voxels
    and gives it the voxels ``new`` gives it; ``"add"`` (new foreground clicks) keeps its old voxels
    and adds those; ``"remove"`` (new background clicks on it) keeps only its old voxels that ``new``
    still gives it. Voxels are taken only where no other label is, or inside ``claimed`` (where an
    annotator clicked the label, :func:`clicked_regions`) also from another label. Elsewhere other
    labels never change.

    >>> previous, new = np.array([0, 1, 1, 2, 0]), np.array([1, 1, 0, 1, 2])
    >>> merge_edit(previous, new, {1}).tolist(), merge_edit(previous, new, {1}, intents={1: "add"}).tolist()
    ([1, 1, 0, 2, 0], [1, 1, 1, 2, 0])
    >>> merge_edit(previous, new, {1}, intents={1: "remove"}).tolist()
    [0, 1, 0, 2, 0]
    >>> merge_edit(previous, new, {1}, np.array([0, 0, 0, 1, 0], bool)).tolist()
    [1, 1, 0, 1, 0]
    """
    intents = intents or {}
    out = previous.copy()
    free = np.zeros(previous.shape, bool) if claimed is None else claimed
    for value in edited:
        intent = intents.get(value, "replace")
        if intent not in INTENTS:
            raise ValueError(f"unknown edit intent {intent!r}; valid: {', '.join(INTENTS)}")
        old = previous == value
        if intent == "remove":
            out[old & (new != value)] = 0
            continue
        if intent == "replace":
            out[old] = 0
        take = (new == value) & ((out == 0) | (free & (out != value)))
        out[take] = value
    return out


def clicked_regions(
    new: np.ndarray, clicks: Clicks, labels: dict[str, int], edited: Iterable[int]
) -> np.ndarray:
    """Where ``new`` (a label map) holds an edited label in a connected region that contains one of
    that label's foreground clicks: the voxels an annotator's click claims for it, even from another
    label (a click inside a region labelled as the wrong organ).

    >>> new = np.array([1, 1, 0, 1, 1]); clicks = Clicks({"a": [(4,)]})
    >>> clicked_regions(new, clicks, {"a": 1}, [1]).tolist()
    [False, False, False, True, True]
    """
    claimed = np.zeros(new.shape, bool)
    for name, points in clicks.foreground.items():
        value = labels[name]
        if value not in edited or not points:
            continue
        components, _ = ndimage.label(new == value)
        hit = {int(components[p]) for p in points} - {0}
        if hit:
            claimed |= np.isin(components, list(hit))
    return claimed


def edited_labels(clicks: Clicks, before: Clicks, last: np.ndarray, labels: dict[str, int]) -> list[int]:
    """The label values a click request edits: ``clicks.label``'s, else those whose points differ from
    the previous request's (``before``) plus, for background points not clicked before, the labels of
    ``last`` (the last answer, input grid) at them; every label when nothing changed.

    >>> last = np.array([0, 1, 2, 2]); labels = {"a": 1, "b": 2}
    >>> edited_labels(Clicks({"a": [], "b": []}, [(3,)]), Clicks({"a": [], "b": []}), last, labels)
    [2]
    >>> edited_labels(Clicks({"a": [(1,)], "b": []}), Clicks({"a": [], "b": []}), last, labels)
    [1]
    """
    if clicks.label:
        return [labels[clicks.label]]
    changed = {labels[n] for n, ps in clicks.foreground.items() if ps != before.foreground.get(n, [])}
    for point in set(clicks.background) - set(before.background):
        if last[point]:
            changed.add(int(last[point]))
    return sorted(changed) if changed else sorted(labels.values())


def click_intents(
    clicks: Clicks, before: Clicks, last: np.ndarray, labels: dict[str, int], edited: Iterable[int]
) -> dict[int, str]:
    """What the annotator meant for each ``edited`` label (:func:`merge_edit`'s intents): ``"add"``
    when only new foreground clicks of that label came since the previous request (``before``),
    ``"remove"`` when only new background clicks landed on it in ``last`` (the last answer, input
    grid), else ``"replace"`` (both, or neither: e.g. the same clicks sent again). A foreground click
    then never takes voxels from its own label elsewhere, and a background click never adds any
    (MONAI Label #1406).

    >>> last, labels, before = np.array([0, 1, 2, 2]), {"a": 1, "b": 2}, Clicks({"a": [], "b": []})
    >>> click_intents(Clicks({"a": [(0,)], "b": []}, [(3,)]), before, last, labels, [1, 2])
    {1: 'add', 2: 'remove'}
    """
    names = {v: n for n, v in labels.items()}
    new_background = set(clicks.background) - set(before.background)
    removed = {int(last[p]) for p in new_background if last[p]}
    intents = {}
    for value in edited:
        name = names[value]
        added = bool(set(clicks.foreground.get(name, [])) - set(before.foreground.get(name, [])))
        if added != (value in removed):
            intents[value] = "add" if added else "remove"
        else:
            intents[value] = "replace"
    return intents


@dataclass
class _Image:
    """What is kept of one image: its working-grid form, its grid, the last answer (input grid) and the
    clicks it answered."""

    image: torch.Tensor
    affine: np.ndarray
    shape: tuple[int, ...]
    last: np.ndarray | None = None
    clicks: Clicks = field(default_factory=Clicks)


class ClickEditor:
    """Answer click requests with ``predictor`` (an interactive plan's, :class:`Predictor`)."""

    def __init__(self, predictor: Predictor, cache_images: int = CACHE_IMAGES) -> None:
        if not predictor.preset.interactive:
            raise ValueError(f"{predictor.preset.name} is not an interactive plan")
        self.predictor = predictor
        self.labels = predictor.preset.labels
        self.cache_images = cache_images
        self._images: OrderedDict[tuple[str, float], _Image] = OrderedDict()

    def _image(self, image_path: str) -> tuple[_Image, bool]:
        """The kept image (loaded and preprocessed at its first request); True when it was kept."""
        key = (image_path, os.path.getmtime(image_path) if os.path.exists(image_path) else 0.0)
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key], True
        image, affine, shape = self.predictor.preprocess(image_path)
        entry = _Image(image, affine, shape)
        self._images[key] = entry
        while len(self._images) > self.cache_images:
            self._images.popitem(last=False)
        return entry, False

    def __call__(
        self, image_path: str, clicks: Clicks, config: InferConfig | None = None, reset: bool = False
    ) -> Prediction:
        """The label map (input grid) after ``clicks`` on the image at ``image_path``. ``reset`` forgets
        the last answer, as a request without clicks does; the first click on an image edits the auto
        mode's answer."""
        t0 = time.perf_counter()
        config = config or self.predictor.config
        entry, kept = self._image(image_path)
        timings = {"pre": time.perf_counter() - t0, "cached_image": float(kept)}
        points = [*clicks.background, *(p for ps in clicks.foreground.values() for p in ps)]
        for p in points:
            if len(p) != len(entry.shape) or any(i >= n for i, n in zip(p, entry.shape, strict=True)):
                raise ValueError(f"click {list(p)} is outside the image (shape {list(entry.shape)})")
        if reset or not points:
            entry.last, entry.clicks = None, Clicks()
        if entry.last is None:
            entry.last = self._segment(entry, None, Clicks(), config, timings)
        if not points:
            timings["total"] = time.perf_counter() - t0
            return Prediction(entry.last.copy(), entry.affine, timings)
        working_affine = np.asarray(entry.image.affine, np.float64)
        working_shape = tuple(int(s) for s in entry.image.shape[1:])
        on_grid = clicks.mapped(lambda ps: to_working_grid(ps, entry.affine, working_affine, working_shape))
        t1 = time.perf_counter()
        guidance = guidance_channels(on_grid, self.labels, working_shape)
        timings["guidance"] = time.perf_counter() - t1
        new = self._segment(entry, guidance, on_grid, config, timings)
        edited = edited_labels(clicks, entry.clicks, entry.last, self.labels)
        t2 = time.perf_counter()
        claimed = clicked_regions(new, clicks, self.labels, edited)
        intents = click_intents(clicks, entry.clicks, entry.last, self.labels, edited)
        entry.last, entry.clicks = merge_edit(entry.last, new, edited, claimed, intents), clicks
        timings["merge"] = time.perf_counter() - t2
        timings["total"] = time.perf_counter() - t0
        return Prediction(entry.last.copy(), entry.affine, timings)

    def _segment(
        self,
        entry: _Image,
        guidance: np.ndarray | None,
        clicks: Clicks,
        config: InferConfig,
        timings: dict[str, float],
    ) -> np.ndarray:
        """One pass of the twin on the kept image, restored onto the input grid."""
        t0 = time.perf_counter()
        logits = self.predictor.logits(entry.image, config, guidance)
        t1 = time.perf_counter()
        keep = {self.labels[name]: points for name, points in clicks.foreground.items()}
        working = keep_largest_components(logits, keep) if config.largest_component else None
        t2 = time.perf_counter()
        label = restore_labels(
            logits, np.asarray(entry.image.affine, np.float64), entry.affine, entry.shape, label=working
        )
        t3 = time.perf_counter()
        for name, seconds in (("infer", t1 - t0), ("post", t2 - t1), ("invert", t3 - t2)):
            timings[name] = timings.get(name, 0.0) + seconds
        return label
