"""Label I/O in clinical formats: DICOM SEG on the grid of a DICOM series."""

from lib.io.dicom_seg import read_dicom_seg, sorted_series, write_dicom_seg

__all__ = ["read_dicom_seg", "sorted_series", "write_dicom_seg"]
