"""Medical scans: DICOM and NIfTI reading, windowing, de-identified header fields.

Optional: needs `pip install 'lookalike[dicom]'` (pydicom + pylibjpeg decoders, nibabel)."""
