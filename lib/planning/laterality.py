"""Sides: which label names say left or right, and which label a left-right mirror turns each class into.

Training mirrors patches only where no label names a side (:func:`lib.data.augmentation.mirror_axes`);
test-time mirroring (:mod:`lib.inference.mirroring`) may also mirror sided labels, because it knows
each sided label's counterpart (:func:`mirror_classes`) and swaps their scores back.
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


def _mirror_sums(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[s]`` = voxels of mask ``a`` that mask ``b`` mirrored as ``x -> s - x`` along axis 0 covers,
    for every integer s in [0, 2n - 2] (the mirror plane at s / 2)."""
    n = a.shape[0]
    pairs = a.reshape(n, -1).astype(np.float32) @ b.reshape(n, -1).T.astype(np.float32)  # slice overlaps
    flipped = pairs[:, ::-1]  # column j is slice n - 1 - j: diagonals of flipped are anti-diagonals
    return np.array([np.trace(flipped, offset=(n - 1) - s) for s in range(2 * n - 1)])


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
    plane = int(np.argmax(_mirror_sums(union, union))) / 2
    xs = np.nonzero(body_mask(image).any(axis=tuple(range(1, image.ndim))))[0]
    if not xs.size or abs(plane - (xs[0] + xs[-1]) / 2) > tolerance * (xs[-1] - xs[0] + 1):
        return out
    masks = {v: label == v for v in range(1, n_labels + 1)}
    sizes = {v: int(m.sum()) for v, m in masks.items()}
    for a, ma in masks.items():
        for b, mb in masks.items():
            if sizes[a] and sizes[b]:
                out[a, b] = 2 * _mirror_sums(ma, mb)[int(2 * plane)] / (sizes[a] + sizes[b])
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
    named = mirror_classes(labels)
    if overlap is None:
        return tuple(named) if named is not None and not lateral_labels(labels) else None
    m = np.asarray(overlap, float)[1:, 1:]
    if m.shape != (len(labels), len(labels)):
        return None
    best = m.argmax(axis=1)
    if any(m[a, b] < threshold or best[b] != a for a, b in enumerate(best)):
        return None
    found = (0, *(int(b) + 1 for b in best))
    if lateral_labels(labels) and (named is None or tuple(named) != found):
        return None
    return found
