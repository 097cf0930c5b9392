"""Tissue classes with their HU and texture by contrast phase, and the label values of the four organs."""

from __future__ import annotations

from enum import IntEnum

LABELS = {"background": 0, "liver": 1, "spleen": 2, "kidney_left": 3, "kidney_right": 4}
HU_MIN, HU_MAX = -1024, 3071


class Tissue(IntEnum):
    """Tissue classes; ``FAT`` (visceral/retroperitoneal) is what organs may fill into."""

    AIR = 0
    LUNG = 1
    SUBQ_FAT = 2
    FAT = 3
    PERIRENAL_FAT = 4
    SKIN = 5
    MUSCLE = 6
    LIVER = 7
    SPLEEN = 8
    CORTEX = 9
    MEDULLA = 10
    URINE = 11
    ARTERY = 12
    PORTAL = 13
    VEIN = 14
    CANCELLOUS = 15
    CORTICAL = 16
    ARCH = 17
    DISC = 18
    CSF = 19
    BOWEL_WALL = 20
    FLUID = 21
    GAS = 22
    STOOL = 23
    CHYME = 24
    PANCREAS = 25
    BILE = 26
    CARTILAGE = 27
    MYOCARDIUM = 28
    CONTRAST = 29


# Portal-venous phase: mean HU, coarse texture amplitude, fine texture amplitude, per-case jitter SD.
TISSUE_HU: dict[Tissue, tuple[float, float, float, float]] = {
    Tissue.AIR: (-1000, 0, 0, 0),
    Tissue.LUNG: (-855, 25, 0, 15),
    Tissue.SUBQ_FAT: (-105, 6, 4, 8),
    Tissue.FAT: (-95, 8, 4, 8),
    Tissue.PERIRENAL_FAT: (-100, 6, 4, 8),
    Tissue.SKIN: (30, 5, 0, 5),
    Tissue.MUSCLE: (52, 5, 3, 5),
    Tissue.LIVER: (102, 4, 2, 7),
    Tissue.SPLEEN: (112, 4, 2, 7),
    Tissue.CORTEX: (165, 6, 3, 10),
    Tissue.MEDULLA: (100, 6, 3, 8),
    Tissue.URINE: (8, 2, 0, 3),
    Tissue.ARTERY: (160, 3, 0, 15),
    Tissue.PORTAL: (170, 3, 0, 12),
    Tissue.VEIN: (140, 3, 0, 12),
    Tissue.CANCELLOUS: (240, 25, 45, 30),
    Tissue.CORTICAL: (850, 40, 30, 60),
    Tissue.ARCH: (450, 40, 40, 40),
    Tissue.DISC: (90, 6, 4, 8),
    Tissue.CSF: (15, 3, 0, 3),
    Tissue.BOWEL_WALL: (75, 6, 3, 10),
    Tissue.FLUID: (15, 4, 2, 5),
    Tissue.GAS: (-990, 5, 0, 0),
    Tissue.STOOL: (-200, 60, 200, 30),
    Tissue.CHYME: (35, 10, 15, 10),
    Tissue.PANCREAS: (95, 6, 12, 8),
    Tissue.BILE: (8, 2, 0, 4),
    Tissue.CARTILAGE: (120, 10, 10, 15),
    Tissue.MYOCARDIUM: (105, 5, 0, 8),
    Tissue.CONTRAST: (300, 20, 10, 60),
}

# Contrast phases: (mean HU, coarse texture amplitude) of the tissues whose enhancement differs from the
# portal-venous table above (typical values of abdominal CT: no contrast; late arterial with the
# corticomedullary differentiation and the heterogeneous spleen; portal-venous; excretory, contrast in the
# collecting system). The per-case jitter of TISSUE_HU is added on top.
PHASES = ("non_contrast", "arterial", "portal_venous", "delayed")
PHASE_HU: dict[str, dict[Tissue, tuple[float, float]]] = {
    "non_contrast": {
        Tissue.LIVER: (58, 4),
        Tissue.SPLEEN: (47, 4),
        Tissue.CORTEX: (33, 4),
        Tissue.MEDULLA: (30, 4),
        Tissue.ARTERY: (42, 3),
        Tissue.PORTAL: (40, 3),
        Tissue.VEIN: (40, 3),
        Tissue.PANCREAS: (42, 6),
        Tissue.BOWEL_WALL: (38, 5),
        Tissue.MYOCARDIUM: (45, 5),
    },
    "arterial": {
        Tissue.LIVER: (72, 4),
        Tissue.SPLEEN: (125, 22),
        Tissue.CORTEX: (205, 8),
        Tissue.MEDULLA: (72, 6),
        Tissue.ARTERY: (330, 3),
        Tissue.PORTAL: (125, 3),
        Tissue.VEIN: (75, 3),
        Tissue.PANCREAS: (118, 6),
        Tissue.BOWEL_WALL: (95, 6),
        Tissue.MYOCARDIUM: (140, 5),
    },
    "portal_venous": {},
    "delayed": {
        Tissue.LIVER: (82, 4),
        Tissue.SPLEEN: (80, 4),
        Tissue.CORTEX: (128, 6),
        Tissue.MEDULLA: (138, 6),
        Tissue.URINE: (600, 40),
        Tissue.ARTERY: (105, 3),
        Tissue.PORTAL: (108, 3),
        Tissue.VEIN: (105, 3),
        Tissue.PANCREAS: (75, 6),
        Tissue.BOWEL_WALL: (65, 5),
        Tissue.MYOCARDIUM: (95, 5),
    },
}
