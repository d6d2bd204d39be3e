"""What the API does, as plain blocking functions over one `Library` (the routes run them in
FastAPI's threadpool). Searches run in parallel; writes are serialised by one lock."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Sequence

from PIL import Image

from ..engine import Hit, Library
from ..engine.cleanup import Choice, CleanupReport
from ..engine.duplicates import DuplicateReport, DuplicateThresholds
from ..engine.entries import entry_time, file_of, frame_entry, is_scan_record, load_entry, scan_picture
from ..engine.fetch import Fetcher
from ..engine.medical_index import WINDOW_META
from ..engine.params import check_label_text as check_text
from ..engine.region import REGION_SCALE  # one definition: the CLI and the API decode regions alike
from ..engine.scan import absolute
from ..engine.series import GroupedHit, group_hits, grouping_candidates
from ..errors import Conflict, Forbidden, ImageLoadError, InvalidQuery, NotFound, Unsupported
from ..imaging import (
    FORMAT_EXTENSIONS,
    TRIM_AFTER_BYTES,
    CropBox,
    ImageSource,
    crop_relative,
    decode_image,
    decoded_bytes,
    encoded_format,
    open_image,
    original_size,
    release_free_memory,
)
from ..media.formats import media_kind
from ..medical.dicom import has_preamble
from ..medical.window import NAMES as WINDOW_NAMES
from ..medical.window import parse_window
from ..store import ImageRecord, SearchFilter

log = logging.getLogger("lookalike.api")
UPLOADS_DIR = "uploads"  # images added through the API live here, named by content hash
THUMBS_DIR = "thumbs"  # cached thumbnails, named by content hash; safe to delete
SET_ASIDE_DIR = "set-aside"  # where the web page's "move" puts duplicates not kept
THUMB_PX = 320
DUPLICATES_TTL_S = 60.0
_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".jfif": "image/jpeg", ".png": "image/png",
         ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp", ".dib": "image/bmp",
         ".tif": "image/tiff", ".tiff": "image/tiff", ".avif": "image/avif", ".heic": "image/heic", ".heif": "image/heif",
         ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".mkv": "video/x-matroska"}


QueryImage = int | str | tuple[bytes, str]  # an id, "item:SKU", or an upload's (bytes, name)


@dataclass
class SearchResult:
    query: str
    took_ms: float
    hits: list[Hit]
    groups: list[GroupedHit] | None = None  # group=series: one per series, best entry first
    window: str | None = None  # the window asked for (scan queries and thumbnails), None: the library's


class Service:
    def __init__(self, library: Library, fetcher: Fetcher | None = None, pixel_limit: int | None = None) -> None:
        self.lib = library
        self.fetcher = fetcher  # None: this server does not download URLs
        self.pixel_limit = pixel_limit  # largest image a client may make us decode
        self.uploads = library.directory / UPLOADS_DIR
        self.thumbs = library.directory / THUMBS_DIR
        self._write_lock = threading.Lock()
        self._generation = 0  # bumped by every write through this server (cache keys)
        self._duplicates_lock = threading.Lock()
        self._duplicates_cache: dict[tuple, tuple[float, DuplicateReport]] = {}

    @property
    def write_lock(self) -> threading.Lock:
        """Held by every write: uploads, deletes, duplicate resolving, the folder watcher."""
        return self._write_lock

    # -- reading ------------------------------------------------------------------------
    def record(self, id_: int) -> ImageRecord:
        return self.lib.record(id_)

    def page(self, offset: int, limit: int, where: str | None = None, sort: str | None = None) -> tuple[int, list[ImageRecord]]:
        return len(self.lib), self.lib.records(offset, limit, where=where, sort=sort)

    def search_bytes(self, data: bytes, label: str, k: int, min_score: float | None, crop: CropBox | None,
                     where: SearchFilter | None = None, text: str | None = None, ef: int | None = None, *,
                     window: str | None = None, group: str | None = None, verify: int | None = None) -> SearchResult:
        """`verify`: how many candidates to verify geometrically (engine/verify.py), None: none."""
        t0 = time.perf_counter()
        check_text(text)
        window, n = self._scan_options(window, group, k)
        if has_preamble(data[:132]):  # a DICOM upload: windowed as asked, else as the library windows its scans
            image = scan_picture(data, label, window or self.library_window())
            image = crop_relative(image, crop) if crop is not None else image
        elif crop is None:  # decoded exactly as the indexer decodes files, so a copy of one scores 1.0
            image = decode_image(data, label, self.lib.extractor.draft_size, self.pixel_limit)
        else:  # more pixels than a whole-image query: the region may be small
            image = crop_relative(decode_image(data, label, self._region_draft(), self.pixel_limit), crop)
        hits = self.lib.search(image, n, min_score=min_score, where=where, text=text, ef=ef, verify=verify is not None,
                               verify_depth=verify)
        if decoded_bytes("RGB", original_size(image)) >= TRIM_AFTER_BYTES:
            del image  # the big pixels go now, and their memory back to the OS, not at the next peak
            release_free_memory()
        return _result(label, t0, hits, k, group, window)

    def search_url(self, url: str, k: int, min_score: float | None, crop: CropBox | None,
                   where: SearchFilter | None = None, text: str | None = None, ef: int | None = None, *,
                   window: str | None = None, group: str | None = None, verify: int | None = None) -> SearchResult:
        t0 = time.perf_counter()
        check_text(text)
        self._scan_options(window, group, k)  # refused before the download
        if self.fetcher is None:
            raise Forbidden("this server does not download URLs; upload the image instead")
        data = self.fetcher.fetch(url)
        try:
            result = self.search_bytes(data, url, k, min_score, crop, where, text, ef, window=window, group=group, verify=verify)
        except ImageLoadError as e:  # what the URL serves is not the client's business beyond this
            log.warning("URL query %r: %s", url[:300], e.reason)
            reason = e.reason if e.reason.startswith("too large") else \
                "the URL did not return a supported image (JPEG, PNG, WebP, GIF, BMP, TIFF)"
            raise ImageLoadError("url", reason) from None
        result.took_ms = _ms(t0)
        return result

    def search_id(self, id_: int, k: int, min_score: float | None, crop: CropBox | None,
                  where: SearchFilter | None = None, text: str | None = None, ef: int | None = None, *,
                  window: str | None = None, group: str | None = None, verify: int | None = None) -> SearchResult:
        t0 = time.perf_counter()
        check_text(text)
        window, n = self._scan_options(window, group, k)
        rec = self.record(id_)  # NotFound before any work
        rerender = window is not None and window != self.library_window() and is_scan_record(rec.path, rec.fields)
        if crop is None and not rerender:
            hits = self.lib.search(id_, n, min_score=min_score, where=where, text=text, ef=ef,  # the stored vector; no model run
                                   verify=verify is not None, verify_depth=verify)
        else:  # a region, or the frame or slice as the asked window shows it (not its stored vector)
            picture = self._entry_image(id_, self._region_draft(), window)
            region = crop_relative(picture, crop) if crop is not None else picture
            vector = self.lib.embed([region])[0]
            hits = self.lib.search_vector(vector, max(n, verify or 0), min_score=min_score, where=where, exclude=[id_], ef=ef,
                                          text=text)
            if verify is not None:
                hits = self.lib.verify_hits(region, hits, n, verify)
        return _result(f"id:{id_}", t0, hits, k, group, window)

    def library_window(self) -> str:
        """The window the library's scans were indexed with (a spec of medical/window.py)."""
        return self.lib.setting(WINDOW_META) or "auto"

    def _scan_options(self, window: str | None, group: str | None, k: int) -> tuple[str | None, int]:
        """(the window spec asked for, or None; how many per-image results to fetch)."""
        if group not in (None, "", "series"):
            raise InvalidQuery(f"group {group!r}: the only grouping is 'series'")
        spec = parse_window(window).spec if window not in (None, "") else None
        return spec, grouping_candidates(k) if group else k

    def search_many(self, positives: Sequence[QueryImage], negatives: Sequence[QueryImage], weights: list[float] | None,
                    k: int, min_score: float | None, where: SearchFilter | None = None, text: str | None = None,
                    ef: int | None = None, *, verify: int | None = None) -> SearchResult:
        """Images like all of `positives` and unlike `negatives` (engine/combine.py): each one an
        indexed id, "item:SKU" (stored vectors, no model run) or an upload (bytes, name)."""
        t0 = time.perf_counter()
        check_text(text)
        pos, neg = self._sources(positives), self._sources(negatives)
        hits = self.lib.search(pos, k, min_score=min_score, where=where, text=text, ef=ef, negative=neg, weights=weights,
                               verify=verify is not None, verify_depth=verify)
        label = " + ".join(_ref_label(q) for q in positives) + "".join(f" - {_ref_label(q)}" for q in negatives)
        return SearchResult(label, _ms(t0), hits)

    def _sources(self, queries: Sequence[QueryImage]) -> list[ImageSource | int]:
        """What `Library.search` takes: ids and items as they are, uploads decoded as the indexer decodes files."""
        return [decode_image(q[0], q[1], self.lib.extractor.draft_size, self.pixel_limit) if isinstance(q, tuple) else q
                for q in queries]

    def search_text(self, text: str, k: int, min_score: float | None, where: SearchFilter | None = None) -> SearchResult:
        """Search by tag: scores are the classifier's confidence (engine/tags.py)."""
        t0 = time.perf_counter()
        check_text(text)
        hits = self.lib.search_text(text, k, min_score=min_score, where=where)
        return SearchResult(text, _ms(t0), hits)

    def explain(self, query_id: int, result_id: int, side: str | None) -> tuple[dict, bytes | None]:
        """(JSON grid, PNG or None when `side` is None) of where two indexed images agree
        (engine/explain.py)."""
        from ..engine.explain import render_png

        t0 = time.perf_counter()
        explanation, q_image, r_image = self.lib.explain(query_id, result_id)
        grid = {**explanation.to_dict(), "took_ms": _ms(t0)}
        return grid, None if side is None else render_png(q_image, r_image, explanation, side)

    def duplicates(self, thresholds: DuplicateThresholds, tiers: list[str], where: SearchFilter | None) -> DuplicateReport:
        """Cached per library state (this server's writes and the image count) for DUPLICATES_TTL_S
        (other processes' writes show after that); one computation at a time, so a burst of
        identical requests costs one run."""
        key = (repr(thresholds), tuple(tiers), repr(where), len(self.lib), self._generation)
        with self._duplicates_lock:
            hit = self._duplicates_cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < DUPLICATES_TTL_S:
                return hit[1]
            report = self.lib.duplicates(thresholds, tiers, where=where)
            if len(self._duplicates_cache) >= 16:
                self._duplicates_cache.clear()
            self._duplicates_cache[key] = (time.monotonic(), report)
            return report

    def _region_draft(self) -> int | None:
        """JPEGs are decoded at reduced scale, keeping enough pixels for a region a quarter
        of the image wide to still fill the model's input."""
        size = self.lib.extractor.draft_size
        return size * REGION_SCALE if size else None

    def open_file(self, id_: int) -> tuple[ImageRecord, BinaryIO, int, str]:
        """(record, open file, size, media type) of an indexed image's file, only while it is
        still the file that was indexed (`Library.open_indexed_file`); the type comes from its
        content when the name does not say, so nothing is ever served as HTML or script."""
        rec, fd = self._open_item_image(id_) or self.lib.open_indexed_file(id_)
        f = os.fdopen(fd, "rb")
        size = os.fstat(fd).st_size
        mime = _MIME.get(Path(file_of(rec.path)).suffix.lower())  # a video frame's file is its video
        if mime is None:
            try:
                with open_image(f) as im:
                    mime = Image.MIME.get(im.format or "", "application/octet-stream")
            except (OSError, ValueError, SyntaxError):
                mime = "application/octet-stream"
            f.seek(0)
        return rec, f, size, mime

    def _open_item_image(self, id_: int) -> tuple[ImageRecord, int] | None:
        """A catalogue item's image (its listed file or downloaded copy: engine/catalogue/), or
        None for an ordinary indexed file."""
        rec = self.record(id_)
        if not rec.path.startswith("item:"):
            return None
        from ..engine.catalogue.edit import item_image_file

        path = item_image_file(self.lib, rec)
        if path is None:
            raise NotFound(f"the image of item {rec.path[5:]!r:.80} is not on this server")
        return rec, os.open(path, os.O_RDONLY)

    def _indexed_bytes(self, id_: int) -> bytes:
        _, f, _, _ = self.open_file(id_)
        with f:
            return f.read()

    def _entry_image(self, id_: int, draft_size: int | None, window: str | None = None) -> Image.Image:
        """The picture of an indexed entry: an image file's bytes as indexed, a scan's frame or
        slice in `window` or the library's window, or a video's frame at the entry's time (once
        the video is checked to be the one indexed)."""
        rec = self.record(id_)
        if entry_time(rec.path) is None:
            data = self._indexed_bytes(id_)
            if is_scan_record(rec.path, rec.fields):
                return scan_picture(data, rec.path, window or self.library_window())
            return decode_image(data, rec.path, draft_size)
        _, f, _, _ = self.open_file(id_)
        f.close()
        return load_entry(rec.path, draft_size)

    def thumbnail(self, id_: int, window: str | None = None) -> Path | bytes:
        """The cached thumbnail's path; its bytes when the library directory is read-only.
        `window` renders a scan entry in that window instead of the library's (others ignore it)."""
        rec = self.record(id_)
        spec = parse_window(window).spec if window not in (None, "") else None
        scan = is_scan_record(rec.path, rec.fields)
        if not scan or spec == self.library_window():
            spec = None
        # A preset window is cached beside the library's rendering, named by a safe spelling of it.
        suffix = "" if spec is None else "-w" + re.sub(r"[^a-z0-9.]", "_", spec)
        thumb = self.thumbs / f"{rec.sha256}-{THUMB_PX}{suffix}.jpg"
        if thumb.exists():
            return thumb
        try:
            im = self._entry_image(id_, THUMB_PX, spec)
        except ImageLoadError as e:
            raise NotFound(f"cannot make a thumbnail of image {id_}: {e.reason}") from None
        im.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=82, optimize=True)
        if spec is not None and spec not in WINDOW_NAMES:
            return buf.getvalue()  # typed centre,width pairs are endless: never cached, so no client can fill the disk
        try:
            _write_atomic(thumb, buf.getvalue())
        except OSError:
            return buf.getvalue()
        return thumb

    def scan_preview(self, data: bytes, label: str, window: str | None = None) -> bytes:
        """A JPEG of an uploaded DICOM file as the model sees it (middle frame), in `window` or
        the library's: browsers cannot show DICOM, and a crop is drawn on this picture."""
        if not has_preamble(data[:132]):
            raise Unsupported(f"{label}: not a DICOM file (no DICM preamble)")
        spec, _ = self._scan_options(window, None, 1)
        im = scan_picture(data, label, spec or self.library_window())
        im.thumbnail((THUMB_PX * 2, THUMB_PX * 2), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=88)
        return buf.getvalue()

    # -- writing ------------------------------------------------------------------------
    def upload(self, data: bytes, filename: str) -> tuple[ImageRecord, bool]:
        """Keep the upload as uploads/<sha256>.<ext> and index it; returns (record, created).
        A DICOM file is kept as uploads/<sha256>.dcm; the record of a multi-frame one is its first frame."""
        label = filename or "<upload>"
        # Unreadable uploads are refused before touching disk.
        if has_preamble(data[:132]):  # a DICOM file: indexed as a scan, each frame an entry
            scan_picture(data, label, self.library_window())
            ext = ".dcm"
        else:
            decode_image(data, label, draft_size=THUMB_PX, pixel_limit=self.pixel_limit)
            # RAW is known by its name (its bytes look like TIFF); everything else by its content.
            ext = Path(label).suffix.lower() if media_kind(label) == "raw" else FORMAT_EXTENSIONS[encoded_format(data) or "JPEG"]
        dest = self.uploads / f"{hashlib.sha256(data).hexdigest()}{ext}"
        with self._write_lock:
            if not dest.exists():
                _write_atomic(dest, data)
            self._generation += 1
            report = self.lib.add([dest], detect_moves=False)
            if report.failed:
                raise ImageLoadError(label, report.failed[0][1])
            rec = self.lib.find_path(dest) or self.lib.find_path(frame_entry(str(dest), 0))  # a multi-frame file: its first frame
        if rec is None:  # another writer removed it in between
            raise Conflict(f"{label}: indexed but gone again; try once more")
        return rec, report.added > 0

    def resolve(self, choices: list[Choice], action: str, dry_run: bool) -> tuple[CleanupReport, str | None]:
        """Set aside every image the choices do not keep; (report, the move folder)."""
        folder = str((self.lib.directory / SET_ASIDE_DIR).absolute()) if action == "move" else None
        with self._write_lock:
            return self.lib.cleanup(choices, action, folder, dry_run=dry_run), folder

    def delete(self, id_: int) -> bool:
        """Forget an image; its file is deleted only if it is one of our uploads."""
        with self._write_lock:
            rec = self.record(id_)
            self._generation += 1
            self.lib.remove([rec.path])
            file = file_of(rec.path)  # a frame of an uploaded multi-frame DICOM lives in that file
            owned = os.path.dirname(file) == absolute(self.uploads)
            if owned and file != rec.path:  # an upload is one file: all its frames go with it
                self.lib.remove([file])
            if owned:
                Path(file).unlink(missing_ok=True)
            if not self.lib.has_content(rec.sha256):
                for thumb in self.thumbs.glob(f"{rec.sha256}-{THUMB_PX}*.jpg"):  # every window's rendering
                    thumb.unlink(missing_ok=True)
        return owned


def _result(query: str, t0: float, hits: list[Hit], k: int, group: str | None, window: str | None) -> SearchResult:
    if not group:
        return SearchResult(query, _ms(t0), hits[:k], window=window)
    groups = group_hits(hits, k)
    return SearchResult(query, _ms(t0), [g.hit for g in groups], groups=groups, window=window)


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


def _ref_label(query: QueryImage) -> str:
    if isinstance(query, tuple):
        return query[1]
    return f"id:{query}" if isinstance(query, int) else query


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)
