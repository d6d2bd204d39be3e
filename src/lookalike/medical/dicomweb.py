"""A small DICOMweb client: QIDO-RS to list studies, series and instances, WADO-RS to fetch
instances (PS3.18). Enough to index a PACS such as Orthanc; nothing here writes to it.

A source is written `dicomweb+http://host:port/dicom-web` (or `dicomweb+https://...`).
Credentials never go in the URL (they would end up in every entry path): they come from
`$LOOKALIKE_DICOMWEB_AUTH`, `user:password` for HTTP basic authentication or a bearer token."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from ..errors import Forbidden, ImageLoadError, InvalidQuery, LookalikeError, NotFound, TooLarge

SCHEME = "dicomweb+"
MAX_INSTANCE_BYTES = 2 * 1024**3  # one instance; a header claiming more is refused
MAX_LISTING_BYTES = 64 * 1024**2
STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
_DICOM_MULTIPART = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def is_dicomweb(source: str) -> bool:
    return source.startswith((SCHEME + "http://", SCHEME + "https://"))


@dataclass(frozen=True)
class InstanceRef:
    study: str
    series: str
    sop: str


class DicomWebClient:
    def __init__(self, source: str, auth: str | None = None, timeout: float = 60.0) -> None:
        if not is_dicomweb(source):
            raise InvalidQuery(f"{source!r}: a DICOMweb source is dicomweb+http://HOST:PORT/PATH or dicomweb+https://...")
        self.source = source.rstrip("/")
        self.base = self.source[len(SCHEME):]
        parts = urllib.parse.urlsplit(self.base)
        if parts.username or parts.password:
            raise InvalidQuery("put DICOMweb credentials in $LOOKALIKE_DICOMWEB_AUTH, not in the URL (it is stored with every entry)")
        if not parts.hostname:
            raise InvalidQuery(f"{source!r}: no host")
        self.timeout = timeout
        self._auth = _auth_header(auth)

    def entry_file(self, ref: InstanceRef) -> str:
        """The instance's address, kept as its entries' path: a viewer can open it again."""
        return f"{self.source}/studies/{ref.study}/series/{ref.series}/instances/{ref.sop}"

    # -- QIDO-RS ---------------------------------------------------------------------------
    def studies(self) -> list[str]:
        return [v for v in (_value(d, STUDY_UID) for d in self._json("/studies")) if v]

    def series(self, study: str) -> list[str]:
        return [v for v in (_value(d, SERIES_UID) for d in self._json(f"/studies/{_q(study)}/series")) if v]

    def instances(self, study: str, series: str) -> list[InstanceRef]:
        rows = self._json(f"/studies/{_q(study)}/series/{_q(series)}/instances")
        return [InstanceRef(study, series, v) for v in (_value(d, SOP_UID) for d in rows) if v]

    def all_instances(self) -> list[InstanceRef]:
        return [ref for st in self.studies() for se in self.series(st) for ref in self.instances(st, se)]

    # -- WADO-RS ---------------------------------------------------------------------------
    def instance(self, ref: InstanceRef) -> bytes:
        """The instance as a Part 10 file (the server may transcode; `transfer-syntax=*` asks it not to)."""
        path = f"/studies/{_q(ref.study)}/series/{_q(ref.series)}/instances/{_q(ref.sop)}"
        content_type, body = self._get(path, _DICOM_MULTIPART, MAX_INSTANCE_BYTES, name=self.entry_file(ref))
        parts = multipart_parts(content_type, body)
        if not parts:
            raise ImageLoadError(self.entry_file(ref), "the server's answer holds no DICOM part")
        return parts[0]

    # -- HTTP ------------------------------------------------------------------------------
    def _json(self, path: str) -> list[dict]:
        _, body = self._get(path, "application/dicom+json", MAX_LISTING_BYTES)
        if not body.strip():
            return []  # some servers answer 204/empty for "nothing"
        try:
            rows = json.loads(body)
        except ValueError:
            raise LookalikeError(f"{self.source}{path}: the answer is not DICOM JSON") from None
        return rows if isinstance(rows, list) else []

    def _get(self, path: str, accept: str, limit: int, name: str | None = None) -> tuple[str, bytes]:
        url = self.base + path
        shown = name or f"{self.source}{path}"
        req = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "lookalike", **self._auth})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                declared = resp.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise TooLarge(f"{shown}: {int(declared):,} bytes exceeds the {limit:,} byte limit")
                body = resp.read(limit + 1)
                if len(body) > limit:
                    raise TooLarge(f"{shown}: more than {limit:,} bytes")
                return resp.headers.get("Content-Type", ""), body
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise Forbidden(f"{self.source}: HTTP {e.code} (check $LOOKALIKE_DICOMWEB_AUTH)") from None
            if e.code == 404:
                raise NotFound(f"{shown}: HTTP 404 (not on this DICOMweb server)") from None
            raise LookalikeError(f"{shown}: HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise LookalikeError(f"{self.source}: cannot reach the DICOMweb server ({reason})") from None


def multipart_parts(content_type: str, body: bytes) -> list[bytes]:
    """The bodies of a multipart/related answer (RFC 2046), in order."""
    params = {}
    for item in content_type.split(";")[1:]:
        if "=" in item:
            key, value = item.split("=", 1)
            params[key.strip().lower()] = value.strip().strip('"')
    if not content_type.lower().startswith("multipart/"):
        return [body] if body[128:132] == b"DICM" else []
    boundary = params.get("boundary")
    if not boundary:
        return []
    delimiter = b"--" + boundary.encode("latin-1")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        parts.append(data[:-2] if data.endswith(b"\r\n") else data)
    return parts


def _auth_header(auth: str | None) -> dict[str, str]:
    if not auth:
        return {}
    if ":" in auth:
        return {"Authorization": "Basic " + base64.b64encode(auth.encode("utf-8")).decode("ascii")}
    return {"Authorization": f"Bearer {auth}"}


def _value(item: dict, tag: str) -> str | None:
    try:
        value = item[tag]["Value"][0]
    except (KeyError, IndexError, TypeError):
        return None
    return str(value) if value else None


def _q(uid: str) -> str:
    return urllib.parse.quote(uid, safe="")
