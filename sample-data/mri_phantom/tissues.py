"""Tissue classes of the head phantom, which of them are brain, and their relative T1 signal."""

from __future__ import annotations

from enum import IntEnum


class Tissue(IntEnum):
    """Tissue classes at a point."""

    AIR = 0
    FAT = 1
    SOFT = 2  # skin, galea, muscle
    BONE = 3  # cortical bone
    DIPLOE = 4
    CSF = 5  # extra-cerebral CSF and vitreous
    GM = 6
    WM = 7
    DEEP = 8  # deep grey nuclei
    VENTRICLE = 9
    STEM = 10  # brainstem (above the foramen magnum)
    CORD = 11


BRAIN = (Tissue.GM, Tissue.WM, Tissue.DEEP, Tissue.VENTRICLE, Tissue.STEM)

# T1 signal relative to white matter: mean, per-case SD (ventricles use the case's CSF value).
T1: dict[Tissue, tuple[float, float]] = {
    Tissue.AIR: (0.0, 0.0),
    Tissue.FAT: (1.25, 0.08),
    Tissue.SOFT: (0.45, 0.04),
    Tissue.BONE: (0.05, 0.015),
    Tissue.DIPLOE: (0.28, 0.04),
    Tissue.CSF: (0.16, 0.03),
    Tissue.GM: (0.62, 0.03),
    Tissue.WM: (1.0, 0.0),
    Tissue.DEEP: (0.78, 0.03),
    Tissue.VENTRICLE: (0.16, 0.0),
    Tissue.STEM: (0.9, 0.03),
    Tissue.CORD: (0.85, 0.03),
}
