"""Tiny synthetic training cases for engine tests: one noisy box per volume."""

from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor


def toy_box_cases(n: int, seed: int, scale: int = 1) -> list[dict]:
    """``n`` cases of a (1, 16, 16, 8) * ``scale`` volume with a 6 x 6 x 4 * ``scale`` box labelled 1
    and Gaussian noise (sd 0.2) on the image; the working grid is the annotated grid."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        label = np.zeros((1, 16 * scale, 16 * scale, 8 * scale), np.uint8)
        x0, y0 = rng.integers(2 * scale, 8 * scale, 2)
        label[0, x0 : x0 + 6 * scale, y0 : y0 + 6 * scale, 2 * scale : 6 * scale] = 1
        image = label.astype(np.float32) + rng.normal(0, 0.2, label.shape).astype(np.float32)
        cases.append(
            {
                "image": MetaTensor(torch.from_numpy(image)),
                "label": torch.from_numpy(label),
                "reference": label[0],
                "reference_affine": np.eye(4),
            }
        )
    return cases
