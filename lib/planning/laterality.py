"""Sides: which label names say left or right, which labels a left-right mirror image shows where
(:func:`mirror_overlaps`, measured on labelled volumes) and, from both, whether the anatomy is
left-right symmetric and which classes a mirror swaps (:func:`symmetric_classes`, the plan's
``mirror``, read by training's mirroring and by test-time mirroring).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

# a side token: a word of its own (kidney_left, Parotid_R, lt_lung, l_lens) or inside a name (leftlung)
_SIDE = re.compile(r"left|right|(?<![a-z])(l|r|lt|rt|sin|dx)(?![a-z])", re.IGNORECASE)
_PAIRS = (("left", "right"), ("l", "r"), ("lt", "rt"), ("sin", "dx"))
_OPPOSITE = {a: b for pair in _PAIRS for a, b in (pair, pair[::-1])}
# a label's mirror image must overlap its counterpart (or itself) at least this much (Dice) for the
# anatomy to count as symmetric: on real head-and-neck CTs paired and midline organs scored 0.6-0.9,
# on a real abdominal label map the liver and spleen 0.1 (neither has a counterpart)
MIN_MIRROR_DICE = 0.4


def lateral_labels(labels: Mapping[str, int]) -> list[str]:
    """Label names that name a side (``kidney_left``, ``Parotid_R``, ``lt_lung``, ...)."""
    return [name for name in labels if _SIDE.search(name)]


def opposite_side(name: str) -> str:
    """``name`` with every side token swapped for the other side, its case kept.

    >>> opposite_side("kidney_left"), opposite_side("Parotid_R"), opposite_side("rt_eye")
    ('kidney_right', 'Parotid_L', 'lt_eye')
    """

    def swap(match: re.Match) -> str:
        token = match.group(0)
        other = _OPPOSITE[token.lower()]
        return other.upper() if token.isupper() else other.capitalize() if token[0].isupper() else other

    return _SIDE.sub(swap, name)


def mirror_classes(labels: Mapping[str, int]) -> list[int] | None:
    """Class index each class becomes in a left-right mirrored image (index 0 is background), or None
    when some sided label has no counterpart among ``labels`` (a mirrored image would then show a
    structure the model has no class for).

    >>> mirror_classes({"liver": 1, "kidney_right": 2, "kidney_left": 3})
    [0, 1, 3, 2]
    >>> mirror_classes({"brain": 1}), mirror_classes({"kidney_left": 1}) is None
    ([0, 1], True)
    """
    classes = [0] * (len(labels) + 1)  # label values are contiguous 1..N, one class each
    for name, value in labels.items():
        other = opposite_side(name)
        if other not in labels:
            return None
        classes[value] = labels[other]
    return classes


CHUNK_VALUES = 4_000_000  # spectrum entries per chunk of :func:`mirror_profile` (about 64 MB)


def mirror_profile(mask: np.ndarray) -> np.ndarray:
    """``out[s]`` = voxels of ``mask`` that its mirror image ``x -> s - x`` along axis 0 covers, for every
    integer s in [0, 2n - 2] (the mirror plane at s / 2): the self-convolution of each line along
    axis 0, summed over the lines (by FFT, in chunks of lines; O(voxels log n)).

    >>> mirror_profile(np.array([0, 1, 1, 0, 0], bool)).round().astype(int).tolist()  # best: s = 3
    [0, 0, 1, 2, 1, 0, 0, 0, 0]
    """
    n = mask.shape[0]
    lines = mask.reshape(n, -1)
    lines = lines[:, lines.any(axis=0)]  # lines without voxels add nothing
    spectrum = np.zeros(n + 1, complex)
    step = max(1, CHUNK_VALUES // (n + 1))
    for start in range(0, lines.shape[1], step):
        f = np.fft.rfft(lines[:, start : start + step].astype(np.float32), n=2 * n, axis=0)
        spectrum += (f * f).sum(axis=1)
    return np.fft.irfft(spectrum, n=2 * n)[: 2 * n - 1]


def mirror_overlap(a: np.ndarray, b: np.ndarray, s: int) -> int:
    """Voxels of mask ``a`` that mask ``b`` mirrored as ``x -> s - x`` along axis 0 covers.

    >>> a = np.array([1, 1, 0, 0, 0], bool); b = np.array([0, 0, 0, 1, 1], bool)
    >>> mirror_overlap(a, b, 4), mirror_overlap(a, b, 5)
    (2, 1)
    """
    n = a.shape[0]
    lo, hi = max(0, s - (n - 1)), min(n - 1, s)  # x whose mirror s - x lies in [0, n - 1]
    if lo > hi:
        return 0
    return int(np.count_nonzero(a[lo : hi + 1] & b[s - hi : s - lo + 1][::-1]))


def body_mask(image: np.ndarray) -> np.ndarray:
    """Voxels brighter than the Otsu threshold of ``image`` (the body against air or background)."""
    values = image[np.isfinite(image)]
    hist, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * centres)
    total, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - total * mean) ** 2 / (weight * (total - weight))
    return image > centres[int(np.nanargmax(between[:-1]))]


def mirror_overlaps(
    image: np.ndarray, label: np.ndarray, n_labels: int, tolerance: float = 0.1
) -> np.ndarray:
    """Dice of each label with each label mirrored left-right (axis 0 of RAS volumes), as a
    (n_labels + 1, n_labels + 1) matrix indexed by label value (row and column 0 unused).

    The mirror plane is the one that maps the labelled voxels onto each other best; it counts only
    when it lies within ``tolerance`` x the body's width of the body's centre (:func:`body_mask`), so a
    single structure on one side (which mirrors best onto itself) gives all zeros.
    """
    out = np.zeros((n_labels + 1, n_labels + 1))
    union = label > 0
    if not union.any():
        return out
    s = int(np.argmax(mirror_profile(union)))  # the mirror plane is at s / 2
    xs = np.nonzero(body_mask(image).any(axis=tuple(range(1, image.ndim))))[0]
    if not xs.size or abs(s / 2 - (xs[0] + xs[-1]) / 2) > tolerance * (xs[-1] - xs[0] + 1):
        return out
    masks = {v: label == v for v in range(1, n_labels + 1)}
    sizes = {v: int(m.sum()) for v, m in masks.items()}
    for a, ma in masks.items():
        for b, mb in masks.items():
            if sizes[a] and sizes[b]:
                out[a, b] = 2 * mirror_overlap(ma, mb, s) / (sizes[a] + sizes[b])
    return out


def symmetric_classes(
    overlap: np.ndarray | list | None, labels: Mapping[str, int], threshold: float = MIN_MIRROR_DICE
) -> tuple[int, ...] | None:
    """The classes a left-right mirror maps each class to (:func:`mirror_classes`' form) when the
    labelled anatomy is left-right symmetric, else None.

    ``overlap`` is the (median) :func:`mirror_overlaps` matrix of a model's labelled images. Symmetric:
    every label's mirror image overlaps one label (itself for a midline structure, its counterpart for
    a paired one) with Dice >= ``threshold``, and that one's best match is it in turn; where the names
    say sides (:func:`mirror_classes`), the data must agree with them. Without ``overlap`` the names
    alone decide, as far as they can: only labels that name no side are taken as symmetric.

    >>> m = [[0, 0, 0, 0], [0, 0.9, 0, 0], [0, 0, 0, 0.6], [0, 0, 0.6, 0.1]]
    >>> symmetric_classes(m, {"brainstem": 1, "parotid_r": 2, "parotid_l": 3})
    (0, 1, 3, 2)
    >>> symmetric_classes(m, {"brainstem": 1, "a": 2, "b": 3})  # unnamed: the data decide
    (0, 1, 3, 2)
    >>> symmetric_classes(m, {"x": 1, "y": 2, "z_l": 3}) is None  # a left label without its right one
    True
    """
    sided = bool(lateral_labels(labels))
    if overlap is None:  # unsided names are their own mirror images
        return None if sided else tuple(range(len(labels) + 1))
    m = np.asarray(overlap, float)[1:, 1:]
    if m.shape != (len(labels), len(labels)):
        return None
    best = m.argmax(axis=1)
    if any(m[a, b] < threshold or best[b] != a for a, b in enumerate(best)):
        return None
    found = (0, *(int(b) + 1 for b in best))
    named = mirror_classes(labels) if sided else None
    if sided and (named is None or tuple(named) != found):
        return None
    return found
