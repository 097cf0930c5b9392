"""The committed DICOM copy of a case: one CT Image Storage instance per slice."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def decimal_string(value: float) -> str:
    """DICOM decimal string (<= 16 chars) with micrometre precision."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def dicom_series(hu: np.ndarray, affine: np.ndarray, case: str, thickness: float) -> list[Dataset]:
    """One CT Image Storage dataset per slice (12-bit unsigned, intercept -1024), geometry in LPS."""
    lps = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, :]
    col_step, row_step, slice_step = lps[:, 0], lps[:, 1], lps[:, 2]
    iop = np.concatenate([col_step / np.linalg.norm(col_step), row_step / np.linalg.norm(row_step)])
    uid = {
        k: generate_uid(entropy_srcs=["monai-label-sample-data", case, k]) for k in ("study", "series", "for")
    }
    series = []
    for k in range(hu.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(
            entropy_srcs=["monai-label-sample-data", case, str(k)]
        )
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = generate_uid(entropy_srcs=["monai-label-sample-data-generator"])
        ds.file_meta.ImplementationVersionName = "SYNTH_CT_1"
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240101"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "Synthetic"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "Synthetic CT abdomen, portal venous phase"
        ds.SeriesDescription = f"Abdomen PV {decimal_string(thickness)}mm"
        ds.PatientName = f"Synthetic^{case}"
        ds.PatientID = case
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "ABDOMEN"
        ds.SliceThickness = decimal_string(thickness)
        ds.KVP = "120"
        ds.SpacingBetweenSlices = decimal_string(float(np.linalg.norm(slice_step)))
        ds.ConvolutionKernel = "STANDARD"
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid["study"], uid["series"]
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        position = lps[:, 3] + k * slice_step
        ds.ImagePositionPatient = [decimal_string(v) for v in position]
        ds.ImageOrientationPatient = [decimal_string(v) for v in iop]
        ds.FrameOfReferenceUID = uid["for"]
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = decimal_string(position[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.PixelSpacing = [decimal_string(np.linalg.norm(row_step)), decimal_string(np.linalg.norm(col_step))]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        ds.PixelData = (hu[:, :, k].T.astype(np.int32) + 1024).astype("<u2").tobytes()
        series.append(ds)
    return series
