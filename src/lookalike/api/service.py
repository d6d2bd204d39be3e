"""What the API does, as plain blocking functions over one `Library` (the routes run them in
FastAPI's threadpool). Searches run in parallel; writes are serialised by one lock."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..engine import Hit, Library
from ..engine.duplicates import DuplicateReport, DuplicateThresholds
from ..engine.entries import file_of, load_entry
from ..engine.query import download
from ..engine.scan import absolute
from ..engine.tags import match_labels, tag_filter
from ..errors import ImageLoadError, LookalikeError
from ..imaging import CropBox, crop_relative, decode_image
from ..media.formats import media_kind
from ..store import ImageRecord, SearchFilter

UPLOADS_DIR = "uploads"  # images added through the API live here, named by content hash
THUMBS_DIR = "thumbs"  # cached thumbnails, named by content hash; safe to delete
THUMB_PX = 320
REGION_SCALE = 4
_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tiff",
        "HEIF": ".heic", "AVIF": ".avif"}
_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".jfif": "image/jpeg", ".png": "image/png",
         ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp", ".dib": "image/bmp",
         ".tif": "image/tiff", ".tiff": "image/tiff", ".avif": "image/avif", ".heic": "image/heic", ".heif": "image/heif",
         ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".mkv": "video/x-matroska"}


class NotFound(LookalikeError):
    pass


class UnknownLabel(LookalikeError):
    """Search-by-tag text that names no ImageNet label (the CLI's message, answered as 422)."""

    def __init__(self, text: str) -> None:
        super().__init__(f"no ImageNet label matches {text!r}: try a common noun such as 'cat', 'espresso' or 'rocket'")


def check_text(text: str | None) -> None:
    if text is not None and not match_labels(text):
        raise UnknownLabel(text)


@dataclass
class SearchResult:
    query: str
    took_ms: float
    hits: list[Hit]


class Service:
    def __init__(self, library: Library) -> None:
        self.lib = library
        self.uploads = library.directory / UPLOADS_DIR
        self.thumbs = library.directory / THUMBS_DIR
        self._write_lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------
    def record(self, id_: int) -> ImageRecord:
        rec = self.lib.store.get([id_]).get(id_)
        if rec is None:
            raise NotFound(f"no image with id {id_} in this library")
        return rec

    def page(self, offset: int, limit: int, sort: str | None = None) -> tuple[int, list[ImageRecord]]:
        return len(self.lib), self.lib.records(offset, limit, sort)

    def search_bytes(self, data: bytes, label: str, k: int, min_score: float | None, crop: CropBox | None,
                     where: SearchFilter | None = None, text: str | None = None, ef: int | None = None) -> SearchResult:
        t0 = time.perf_counter()
        check_text(text)
        if crop is None:  # decoded exactly as the indexer decodes files, so a copy of one scores 1.0
            image = decode_image(data, label, self.lib.extractor.draft_size)
        else:  # more pixels than a whole-image query: the region may be small
            image = crop_relative(decode_image(data, label, self._region_draft()), crop)
        hits = self.lib.search(image, k, min_score=min_score, where=where, text=text, ef=ef)
        return SearchResult(label, _ms(t0), hits)

    def search_url(self, url: str, limit: int, k: int, min_score: float | None, crop: CropBox | None,
                   where: SearchFilter | None = None, text: str | None = None, ef: int | None = None) -> SearchResult:
        t0 = time.perf_counter()
        check_text(text)
        result = self.search_bytes(download(url, limit=limit), url, k, min_score, crop, where, text, ef)
        result.took_ms = _ms(t0)
        return result

    def search_id(self, id_: int, k: int, min_score: float | None, crop: CropBox | None,
                  where: SearchFilter | None = None, text: str | None = None, ef: int | None = None) -> SearchResult:
        t0 = time.perf_counter()
        check_text(text)
        rec = self.record(id_)
        if crop is None:
            hits = self.lib.search(id_, k, min_score=min_score, where=where, text=text, ef=ef)  # the stored vector; no model run
        else:
            region = crop_relative(load_entry(rec.path, self._region_draft()), crop)
            vector = self.lib.embed([region])[0]
            flt = tag_filter(text, where) if text is not None else where
            hits = self.lib.search_vector(vector, k, min_score=min_score, where=flt, exclude=[id_], ef=ef)
        return SearchResult(f"id:{id_}", _ms(t0), hits)

    def search_text(self, text: str, k: int, min_score: float | None, where: SearchFilter | None = None) -> SearchResult:
        """Search by tag: scores are the classifier's confidence (engine/tags.py)."""
        t0 = time.perf_counter()
        check_text(text)
        hits = self.lib.search_text(text, k, min_score=min_score, where=where)
        return SearchResult(text, _ms(t0), hits)

    def duplicates(self, thresholds: DuplicateThresholds, tiers: list[str], where: SearchFilter | None) -> DuplicateReport:
        return self.lib.duplicates(thresholds, tiers, where=where)

    def _region_draft(self) -> int | None:
        """JPEGs are decoded at reduced scale, keeping enough pixels for a region a quarter
        of the image wide to still fill the model's input."""
        size = self.lib.extractor.draft_size
        return size * REGION_SCALE if size else None

    def file(self, id_: int) -> tuple[str, str]:
        """(path, media type) of an indexed image's file; the type comes from its content
        when the name does not say, so nothing is ever served as HTML or script."""
        rec = self.record(id_)
        path = file_of(rec.path)  # a video frame's file is the whole video
        if not os.path.isfile(path):
            raise NotFound(f"the file of image {id_} is gone from disk: {path}")
        mime = _MIME.get(Path(path).suffix.lower())
        if mime is None:
            try:
                with Image.open(path) as im:
                    mime = Image.MIME.get(im.format or "", "application/octet-stream")
            except OSError:
                mime = "application/octet-stream"
        return path, mime

    def thumbnail(self, id_: int) -> Path | bytes:
        """The cached thumbnail's path; its bytes when the library directory is read-only."""
        rec = self.record(id_)
        thumb = self.thumbs / f"{rec.sha256}-{THUMB_PX}.jpg"
        if thumb.exists():
            return thumb
        try:
            im = load_entry(rec.path, draft_size=THUMB_PX)
        except ImageLoadError as e:
            raise NotFound(f"cannot make a thumbnail of image {id_}: {e.reason}") from None
        im.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=82, optimize=True)
        try:
            _write_atomic(thumb, buf.getvalue())
        except OSError:
            return buf.getvalue()
        return thumb

    # -- writing ------------------------------------------------------------------------
    def upload(self, data: bytes, filename: str) -> tuple[ImageRecord, bool]:
        """Keep the upload as uploads/<sha256>.<ext> and index it; returns (record, created)."""
        label = filename or "<upload>"
        decode_image(data, label, draft_size=THUMB_PX)  # refuse non-images before touching disk
        ext = _upload_extension(data, label)
        dest = self.uploads / f"{hashlib.sha256(data).hexdigest()}{ext}"
        with self._write_lock:
            if not dest.exists():
                _write_atomic(dest, data)
            report = self.lib.add([dest])
            if report.failed:
                raise ImageLoadError(label, report.failed[0][1])
            rec = self.lib.store.find_path(absolute(dest))
        if rec is None:  # another writer removed it in between
            raise LookalikeError(f"{label}: indexed but gone again; try once more")
        return rec, report.added > 0

    def delete(self, id_: int) -> bool:
        """Forget an image; its file is deleted only if it is one of our uploads."""
        with self._write_lock:
            rec = self.record(id_)
            self.lib.remove([rec.path])
            owned = os.path.dirname(rec.path) == absolute(self.uploads)
            if owned:
                Path(rec.path).unlink(missing_ok=True)
            if not self.lib.store.find_sha(rec.sha256):
                (self.thumbs / f"{rec.sha256}-{THUMB_PX}.jpg").unlink(missing_ok=True)
        return owned


def _upload_extension(data: bytes, label: str) -> str:
    """The extension an upload is kept under: RAW is recognised by its name (its bytes look
    like TIFF), everything else by its content."""
    if media_kind(label) == "raw":
        return Path(label).suffix.lower()
    try:
        with Image.open(io.BytesIO(data)) as im:
            return _EXT.get(im.format or "", ".img")
    except (OSError, ValueError):
        return ".img"


def _write_atomic(path: Path, data: bytes) -> None:
    """Readers never see half a file, and two writers of the same content both succeed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)
