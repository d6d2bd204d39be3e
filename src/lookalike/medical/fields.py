"""Header fields kept from a DICOM file: a whitelist, never a copy of the header.

Following the DICOM basic application confidentiality profile (PS3.15 Annex E), nothing that
identifies the patient is kept unless the library was created with `keep_phi`: no names, ids,
birth dates, addresses, accession numbers, institutions or physicians. What is kept describes
the acquisition (modality, body part, geometry, device) plus the study/series/instance UIDs
and the study date, which grouping and linking back to a PACS need; free-text descriptions are
dropped when they contain any part of the patient's name, id or accession number."""

from __future__ import annotations

from typing import Any, Callable


# field name -> (DICOM keyword, converter). Only these leave the file.
def _text(v: Any) -> str | None:
    s = " ".join(str(v).split())
    return s or None


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, 4) if f == f and abs(f) != float("inf") else None


def _date(v: Any) -> str | None:
    s = str(v).strip()
    if len(s) == 8 and s.isdigit():
        return f"{s[:4]}-{s[4:6]}-{s[6:]}"
    return None


def _first_float(v: Any) -> float | None:
    try:
        return _float(v[0])
    except (TypeError, IndexError, KeyError):
        return _float(v)


KEPT: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "modality": ("Modality", _text),
    "body_part": ("BodyPartExamined", _text),
    "study_date": ("StudyDate", _date),
    "study_description": ("StudyDescription", _text),
    "series_description": ("SeriesDescription", _text),
    "manufacturer": ("Manufacturer", _text),
    "model": ("ManufacturerModelName", _text),
    "slice_thickness": ("SliceThickness", _float),
    "pixel_spacing": ("PixelSpacing", _first_float),
    "rows": ("Rows", _int),
    "columns": ("Columns", _int),
    "series_number": ("SeriesNumber", _int),
    "instance_number": ("InstanceNumber", _int),
    "study_uid": ("StudyInstanceUID", _text),
    "series_uid": ("SeriesInstanceUID", _text),
    "sop_instance_uid": ("SOPInstanceUID", _text),
}
FREE_TEXT = ("study_description", "series_description")

# Identifiers kept only with the library's explicit opt-in (`keep_phi`).
PHI: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "patient_name": ("PatientName", _text),
    "patient_id": ("PatientID", _text),
    "patient_birth_date": ("PatientBirthDate", _date),
    "patient_sex": ("PatientSex", _text),
    "patient_age": ("PatientAge", _text),
    "accession_number": ("AccessionNumber", _text),
    "institution_name": ("InstitutionName", _text),
    "referring_physician": ("ReferringPhysicianName", _text),
}


def dicom_fields(ds: Any, keep_phi: bool = False) -> dict[str, Any]:
    """Whitelisted header fields of a pydicom Dataset, typed for `where` filters."""
    out: dict[str, Any] = {"format": "dicom"}
    for name, (keyword, convert) in KEPT.items():
        value = _get(ds, keyword, convert)
        if value is not None:
            out[name] = value
    sop_class = getattr(ds, "SOPClassUID", None)
    if sop_class is not None:
        out["sop_class"] = _text(getattr(sop_class, "name", sop_class))
    identifiers = _name_parts(_get(ds, "PatientName", _text)) + [
        v.lower() for v in (_get(ds, k, _text) for k in ("PatientID", "AccessionNumber", "OtherPatientIDs")) if v and len(v) >= 3]
    for key in FREE_TEXT:
        if key in out and any(p in out[key].lower() for p in identifiers):
            del out[key]  # a technologist typed the patient's name or id into a description
    if keep_phi:
        for name, (keyword, convert) in PHI.items():
            value = _get(ds, keyword, convert)
            if value is not None:
                out[name] = value
    return out


def _get(ds: Any, keyword: str, convert: Callable[[Any], Any]) -> Any:
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed element must not cost us the image
        return None
    return None if value is None or value == "" else convert(value)


def _name_parts(name: Any) -> list[str]:
    if name is None:
        return []
    text = str(name).replace("^", " ").replace("=", " ").lower()
    return [p for p in text.split() if len(p) >= 3]
