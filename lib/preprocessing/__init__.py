"""Preprocessing: intensity normalisation, CT windows, MRI N4 + z-score, X-ray equalisation.

Plain functions take numpy arrays or torch tensors / MetaTensors; ``...d`` classes are MONAI dictionary
transforms on channel-first ``(C, spatial...)`` data. Outputs are float32 of the input's type.
"""

from lib.preprocessing.ct_window import CT_WINDOWS, CTWindowd, ct_window
from lib.preprocessing.intensity import PercentileNormalized, zscore
from lib.preprocessing.mri import MRINormalized, N4BiasFieldCorrectiond, n4_bias_correct, otsu_foreground
from lib.preprocessing.xray import CLAHEd, HistogramEqualized, clahe, histogram_equalize

__all__ = [
    "CT_WINDOWS",
    "CLAHEd",
    "CTWindowd",
    "HistogramEqualized",
    "MRINormalized",
    "N4BiasFieldCorrectiond",
    "PercentileNormalized",
    "clahe",
    "ct_window",
    "histogram_equalize",
    "n4_bias_correct",
    "otsu_foreground",
    "zscore",
]
