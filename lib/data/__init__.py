"""Data handling: patient-level dataset splits."""

from lib.data.split import PatientSplit, split_sizes

__all__ = ["PatientSplit", "split_sizes"]
