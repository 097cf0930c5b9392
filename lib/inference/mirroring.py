"""Test-time mirroring: the mean of the scores of an image and of its left-right mirror image, the
mirror's scores flipped back and its sided classes swapped back (nnU-Net averages mirrored predictions
too; it may mirror along every axis because it never names sides, whereas sided labels here allow only
the left-right axis, and only with the swap).

The working grid is RAS, so the left-right axis is the first spatial axis (tensor dim 1 of a
(C, *spatial) volume).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

LEFT_RIGHT_DIM = 1


def mirror(volume: torch.Tensor, classes: Sequence[int], first: int = 0) -> torch.Tensor:
    """``volume`` (C, *spatial) flipped left-right, channels ``first + c`` reordered by ``classes``
    (class c of the mirror image is class ``classes[c]`` of the original); channels before ``first``
    (an image channel) only flipped. Its own inverse when ``classes`` is (a side swap is).

    >>> v = torch.arange(6.0).reshape(3, 2, 1, 1)  # 3 classes, 2 voxels left-right
    >>> mirror(v, [0, 2, 1])[:, :, 0, 0].tolist()
    [[1.0, 0.0], [5.0, 4.0], [3.0, 2.0]]
    """
    order = list(range(first)) + [first + c for c in classes]
    return volume.flip(LEFT_RIGHT_DIM)[order]


def mirrored_mean(
    scores: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, classes: Sequence[int]
) -> torch.Tensor:
    """The mean of ``scores(image)`` and of the back-mirrored ``scores`` of the mirrored ``image``.

    ``image`` is (1 + G, *spatial): the image, then G guidance channels in class order (G = 0 or
    ``len(classes)``); ``scores`` returns (C, *spatial) with C = ``len(classes)``.
    """
    guided = image.shape[0] > 1
    mirrored = mirror(image, classes, first=1) if guided else image.flip(LEFT_RIGHT_DIM)
    return (scores(image) + mirror(scores(mirrored), classes)) / 2
