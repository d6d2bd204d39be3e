"""The REST endpoints. Blocking engine work runs in FastAPI's threadpool; request bodies are
parsed here so that one search endpoint takes multipart, JSON or raw image bytes."""

from __future__ import annotations

import hmac
import json
import os
import re
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO, Iterator
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, Response, Security
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.security import APIKeyHeader
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from ..engine import Hit as EngineHit
from ..engine.cleanup import Choice
from ..engine.confidence import check_min_confidence, keep_confident
from ..engine.duplicates import TIERS, DuplicateReport, DuplicateThresholds
from ..engine.entries import is_scan_record
from ..engine.params import DATE_HELP, check_k, check_score, check_tiers, make_filter, parse_crop, parse_flag
from ..engine.rerank import check_rerank
from ..engine.scan import printable
from ..engine.verify import MAX_DEPTH, check_depth
from ..engine.verify import unavailable as verify_unavailable
from ..errors import InvalidQuery
from ..store import ImageRecord, SearchFilter
from . import schemas
from .ratelimit import TokenBuckets
from .service import QueryImage, SearchResult, Service

router = APIRouter()
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": schemas.Error, "description": why} for code, why in (
    (400, "bad request"), (404, "unknown id"), (413, "body over the upload limit"),
    (415, "not an image / unsupported body type"), (422, "corrupt image or invalid parameters"),
    (503, "library busy: another process is writing to it; retry"))}
FILE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 409: {"model": schemas.Error, "description": "the file changed or was swapped since it was indexed"}}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 401: {"model": schemas.Error, "description": "API key missing"},
                403: {"model": schemas.Error, "description": "API key wrong"}}
ImageId = PathParam(..., ge=0, le=2**63 - 1, description="Image id (see /api/images).")
K = Query(None, ge=1, le=1000, description="Number of results (default 10).")
MIN_SCORE = Query(None, ge=-1, le=1, description="Drop results below this cosine similarity.")
MIN_CONFIDENCE = Query(None, ge=0, le=1, description="Drop results below this confidence (the calibrated probability "
                                                     "that a result shows the same thing as the query).")
EF = Query(None, ge=1, le=4096, description="ANN candidates per query on large libraries: higher is more exact, slower (default 160).")
CROP = Query(None, description=schemas.CROP_HELP + " As a query parameter: x0,y0,x1,y1.")
RERANK = Query(None, max_length=20, description=schemas.RERANK_HELP)
TEXT_HELP = ("Words, e.g. `dog`, `bird`, `vehicle` or `espresso` (commas: any of): an ImageNet class or any "
             "WordNet noun above classes (`lookalike tags` lists them).")
UNDER = Query(None, max_length=4096, description="Only images under this folder (a path on the server).")
SINCE = Query(None, max_length=40, description=f"Only images taken (else modified) on or after this date: {DATE_HELP}.")
UNTIL = Query(None, max_length=40,
              description=f"Only images taken (else modified) on or before this date (a date alone: that whole day): {DATE_HELP}.")
WHERE = Query(None, max_length=2000, description="Filter on the images' fields, e.g. `format = \"jpeg\" and width >= 1000` "
                                                  "(docs/filters.md). Invalid: 422 with the offending column.")
WINDOW = Query(None, max_length=40, description="Scans (DICOM, NIfTI): the window a DICOM query and the results' thumbnails "
                                                "are shown in: `brain`, `lung`, `bone`, `soft`, `auto` or `CENTRE,WIDTH` "
                                                "(docs/medical.md); default the library's.")
VERIFY = Query(None, description=schemas.VERIFY_HELP)
VERIFY_DEPTH = Query(None, description=schemas.VERIFY_DEPTH_HELP)
GROUP = Query(None, max_length=20, description="`series`: one result per scan series (its best-matching slice), "
                                               "with `series` and `series_entries` set.")
DEFAULT_K = 10
# Bounds on what one anonymous duplicates request may cost: each near pair is a keypoint match.
MAX_NEIGHBOURS = 50
MIN_COSINE = 0.5
MIN_COVERAGE = 0.3

_image_body: dict[str, Any] = {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "The image (JPEG, PNG, WebP, GIF, BMP, TIFF)."}}}
_search_form = {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "array", "items": {"type": "string", "format": "binary"},
             "description": "The query image(s) (JPEG, PNG, WebP, GIF, BMP, TIFF); several parts: images like all of them."},
    "not_file": {"type": "array", "items": {"type": "string", "format": "binary"},
                 "description": "Images the results should NOT look like (repeatable)."},
    "ids": {"type": "string", "description": "More query images: comma-separated indexed ids or item:SKU."},
    "not_ids": {"type": "string", "description": "Comma-separated ids or item:SKU the results should NOT look like."},
    "weights": {"type": "string", "description": "Comma-separated positive weights, one per positive: the files, then the ids."},
    "k": {"type": "integer"}, "min_score": {"type": "number"},
    "min_confidence": {"type": "number"},
    "rerank": {"type": "string", "description": schemas.RERANK_HELP},
    "crop": {"type": "string", "description": "x0,y0,x1,y1 as fractions of the image"},
    "verify": {"type": "boolean", "description": schemas.VERIFY_HELP},
    "verify_depth": {"type": "integer", "description": schemas.VERIFY_DEPTH_HELP},
    **{f: {"type": "string"} for f in ("q", "text", "under", "since", "until", "window", "group")}}}
SEARCH_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": _search_form},
    "application/json": {"schema": schemas.SearchBody.model_json_schema()},  # inline: the body is parsed by hand, so not registered
    "image/*": {"schema": {"type": "string", "format": "binary"}}}}}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": _image_body}, "image/*": {"schema": {"type": "string", "format": "binary"}}}}}

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="Needed by write endpoints when the server has $LOOKALIKE_API_KEY set.")


def require_key(request: Request, key: str | None = Security(api_key_header)) -> None:
    expected = request.app.state.settings.api_key
    if not expected:
        return
    if not key:
        raise HTTPException(401, "this endpoint needs the API key in the X-API-Key header")
    if not hmac.compare_digest(key.encode(), expected.encode()):
        raise HTTPException(403, "wrong API key in the X-API-Key header")


def _rate_limit(request: Request, buckets: TokenBuckets) -> None:
    """Anonymous clients share the costly requests by address; a client with the API key is trusted."""
    expected = request.app.state.settings.api_key
    given = request.headers.get("x-api-key")
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return
    buckets.take(request.client.host if request.client else "?")


def _svc(request: Request) -> Service:
    return request.app.state.service


# -- search ---------------------------------------------------------------------------------
@router.post("/api/search", response_model=schemas.SearchResponse, responses=ERRORS, openapi_extra=SEARCH_BODY,
             summary="Search by image upload, indexed id or URL")
async def search(request: Request, k: int | None = K, min_score: float | None = MIN_SCORE,
                 crop: str | None = CROP, q: str | None = Query(None, max_length=500, description="Filter: " + TEXT_HELP),
                 text: str | None = Query(None, max_length=500, description="Same as `q`."),
                 under: str | None = UNDER, since: str | None = SINCE, until: str | None = UNTIL,
                 where: str | None = WHERE, ef: int | None = EF,
                 min_confidence: float | None = MIN_CONFIDENCE, window: str | None = WINDOW,
                 group: str | None = GROUP, verify: str | None = VERIFY,
                 verify_depth: str | None = VERIFY_DEPTH, rerank: str | None = RERANK) -> schemas.SearchResponse:
    """Send the query image as multipart/form-data (field `file`), as a raw `image/*` body, or
    JSON `{"id": 42}` ("more like this") / `{"url": "https://..."}`. Several images: repeat
    `file` (and `not_file` for images the results should not look like), or JSON
    `{"ids": [12, 34], "not_ids": [56], "weights": [2, 1]}` (ids or `"item:SKU"`); they are
    combined into one query (mean of the positives minus a quarter of the negatives' mean). `k`, `min_score` and `crop`
    may be query parameters, form fields or JSON fields; so may the filters `q` (or `text`:
    only images tagged with a label it names), `under`, `since`, `until` and `where` (a filter
    expression over the images' fields). Each result has a `confidence`; `verdict` says "no
    good match" when even the best one is unlikely to show the same thing (`min_confidence`
    drops results below a confidence). `rerank`: `qe` (the default) re-orders the results by query
    expansion, `none` keeps the plain order. For scans, `window` and `group=series` (docs/medical.md).
    `verify=true` (one query image): geometric verification of the top `verify_depth`
    candidates, for "find this photo" (docs/search.md)."""
    svc, settings = _svc(request), request.app.state.settings
    params = {"q": q or text, "under": under, "since": since, "until": until, "where": where}
    ctype = content_type(request)
    if ctype == "application/json":
        try:
            body = schemas.SearchBody.model_validate(json.loads(await request.body() or b"null"))
        except json.JSONDecodeError as e:
            raise HTTPException(422, f"body is not valid JSON ({e.msg})") from None
        except UnicodeDecodeError:
            raise HTTPException(422, "body is not valid JSON (not UTF-8 text)") from None
        except RecursionError:
            raise HTTPException(422, "body is not valid JSON (nested too deeply)") from None
        except ValidationError as e:
            raise HTTPException(422, _first_error(e)) from None
        opts = _options(body.k or k, body.min_score if body.min_score is not None else min_score, body.crop or crop)
        if body.min_confidence is not None:
            min_confidence = body.min_confidence
        rerank = body.rerank or rerank
        check_rerank(rerank)
        flt, tag = _filters(svc, {"q": body.q or body.text, "under": body.under, "since": body.since, "until": body.until,
                                  "where": body.where}, params)
        scan = {"window": body.window or window, "group": body.group or group}
        checks = _verify_option(body.verify if body.verify is not None else verify,
                                body.verify_depth if body.verify_depth is not None else verify_depth, scan["group"])
        if body.ids is not None or body.not_ids:  # several images, or "like this, not like that"
            _one_image_crop(opts[2], len(body.positives()) + len(body.not_ids or []))
            _one_image_verify(checks, len(body.positives()) + len(body.not_ids or []))
            result = await run_in_threadpool(partial(svc.search_many, body.positives(), list(body.not_ids or []), body.weights,
                                                     *opts[:2], flt, tag, ef, verify=checks, rerank=rerank))
        elif body.id is not None:
            result = await run_in_threadpool(partial(svc.search_id, body.id, *opts, flt, tag, ef, window=scan["window"],
                                                     group=scan["group"], verify=checks, rerank=rerank))
        else:
            url = body.url or ""  # SearchBody guarantees one of id and url
            if not settings.url_queries:
                raise HTTPException(403, "this server does not download URLs; upload the image instead")
            if not url.startswith(("http://", "https://")):
                raise HTTPException(422, "url must start with http:// or https://")
            _rate_limit(request, settings.url_searches)
            result = await run_in_threadpool(partial(svc.search_url, url, *opts, flt, tag, ef, window=scan["window"],
                                                     group=scan["group"], verify=checks, rerank=rerank))
    elif ctype == "multipart/form-data":
        query = await _read_search_form(request)
        fields = query.fields
        opts = _options(fields.get("k") or k, fields.get("min_score") or min_score, fields.get("crop") or crop)
        min_confidence = fields.get("min_confidence") or min_confidence  # type: ignore[assignment]
        rerank = fields.get("rerank") or rerank
        check_rerank(rerank)
        flt, tag = _filters(svc, {"q": fields.get("q") or fields.get("text"),
                                  **{f: fields.get(f) for f in ("under", "since", "until", "where")}}, params)
        scan = {"window": fields.get("window") or window, "group": fields.get("group") or group}
        checks = _verify_option(fields.get("verify") or verify, fields.get("verify_depth") or verify_depth, scan["group"])
        if len(query.positives) == 1 and isinstance(query.positives[0], tuple) and not query.negatives and not query.weights:
            data, name = query.positives[0]  # one upload: as it always was (DICOM, crop, window, series)
            result = await run_in_threadpool(partial(svc.search_bytes, data, name, *opts, flt, tag, ef, window=scan["window"],
                                                     group=scan["group"], verify=checks, rerank=rerank))
        else:
            _one_image_crop(opts[2], len(query.positives) + len(query.negatives))
            _one_image_verify(checks, len(query.positives) + len(query.negatives))
            result = await run_in_threadpool(partial(svc.search_many, query.positives, query.negatives, query.weights or None,
                                                     *opts[:2], flt, tag, ef, verify=checks, rerank=rerank))
    else:
        data, name, fields = await _read_image(request)
        opts = _options(k, min_score, crop)
        check_rerank(rerank)
        flt, tag = _filters(svc, {}, params)
        checks = _verify_option(verify, verify_depth, group)
        result = await run_in_threadpool(partial(svc.search_bytes, data, name, *opts, flt, tag, ef, window=window, group=group,
                                                 verify=checks, rerank=rerank))
    return _search_response(svc, result, opts[2], min_confidence)


@router.post("/api/scans/preview", response_class=Response, responses=ERRORS, openapi_extra=UPLOAD_BODY,
             summary="A DICOM upload rendered as a JPEG")
async def scan_preview(request: Request, window: str | None = WINDOW) -> Response:
    """The picture the model sees for an uploaded DICOM file (its middle frame), in `window` or
    the library's window, at most 640 px: what the web page shows for a DICOM query. Not
    DICOM: 415."""
    data, name, fields = await _read_image(request)
    jpeg = await run_in_threadpool(_svc(request).scan_preview, data, name, fields.get("window") or window)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/api/search", response_model=schemas.SearchResponse, responses=ERRORS, summary="Search by tag")
def search_by_tag(request: Request, q: str = Query(..., min_length=1, max_length=500, description=TEXT_HELP),
                  k: int | None = K, min_score: float | None = Query(None, ge=0, le=1, description="Drop results below this confidence."),
                  under: str | None = UNDER, since: str | None = SINCE, until: str | None = UNTIL,
                  where: str | None = WHERE, min_confidence: float | None = MIN_CONFIDENCE) -> schemas.SearchResponse:
    """Images showing what `q` names (an English noun names every ImageNet class that is a
    kind of it: `dog` finds every breed), ranked by the classifier's confidence (the `score`
    of each result: the summed probability of its matching classes). Text that names no
    class: 422, with the nearest searchable words. Same result shape as POST /api/search."""
    svc = _svc(request)
    flt = svc.lib.where(where, make_filter(under, since, until))
    return _search_response(svc, svc.search_text(q, k or DEFAULT_K, min_score, flt), None, min_confidence, by_word=True)


@router.get("/api/duplicates", response_model=schemas.Duplicates, responses=ERRORS, summary="Duplicate groups")
def duplicates(request: Request,
               tier: list[str] | None = Query(None, description=f"Report only these tiers (repeatable): {', '.join(TIERS)}; default all."),
               near_cosine: float = Query(DuplicateThresholds.near_cosine, ge=MIN_COSINE, le=1,
                                          description="Near-duplicates: least cosine similarity of the CNN features."),
               near_coverage: float = Query(DuplicateThresholds.near_min_coverage, ge=MIN_COVERAGE, le=1,
                                            description="Near-duplicates: least share of each image the other must show."),
               similar_cosine: float = Query(DuplicateThresholds.similar_cosine, ge=MIN_COSINE, le=1,
                                             description="Similar shots: least cosine similarity."),
               neighbours: int = Query(DuplicateThresholds.neighbours, ge=1, le=MAX_NEIGHBOURS,
                                       description="Nearest images examined per image."),
               under: str | None = UNDER, where: str | None = WHERE) -> schemas.Duplicates:
    """Exact copies (same SHA-256), near-duplicates (re-encoded, resized, lightly cropped:
    CNN cosine confirmed by keypoint geometry) and similar shots, as groups; what
    `lookalike duplicates --json` prints, plus thumbnail and file URLs per member."""
    tiers = check_tiers(tier)
    thresholds = DuplicateThresholds(near_cosine=near_cosine, similar_cosine=similar_cosine, neighbours=neighbours,
                                     near_min_coverage=near_coverage)
    svc = _svc(request)
    return _duplicates_response(svc, svc.duplicates(thresholds, tiers, svc.lib.where(where, make_filter(under, None, None))))


@router.post("/api/duplicates/resolve", response_model=schemas.Resolved, responses={**WRITE_ERRORS, 409: {
    "model": schemas.Error, "description": "an image is both kept and set aside"}}, dependencies=[Security(require_key)],
             summary="Keep one image per group, set the others aside")
def resolve_duplicates(request: Request, body: schemas.ResolveBody) -> schemas.Resolved:
    """Moves (into the library's `set-aside` folder) or trashes each group's `remove` images,
    never its `keep` image; files changed or gone since indexing are skipped. The images set
    aside leave the library. The answer names the undo log (`lookalike duplicates --undo LOG`)."""
    choices = [Choice(g.keep, list(g.remove)) for g in body.groups]
    report, folder = _svc(request).resolve(choices, body.action, body.dry_run)
    return schemas.Resolved(**report.to_dict(), set_aside=folder)


@router.get("/api/images/{image_id}/similar", response_model=schemas.SearchResponse, responses=ERRORS,
            summary="More like this / similar products")
def similar(request: Request, image_id: int = ImageId, k: int | None = K, min_score: float | None = MIN_SCORE,
            q: str | None = Query(None, max_length=500, description="Filter: " + TEXT_HELP),
            under: str | None = UNDER, since: str | None = SINCE, until: str | None = UNTIL,
            where: str | None = WHERE, ef: int | None = EF,
            min_confidence: float | None = MIN_CONFIDENCE, window: str | None = WINDOW,
            group: str | None = GROUP, rerank: str | None = RERANK) -> schemas.SearchResponse:
    """The indexed images most like image `image_id` (never itself), from its stored vector,
    restricted by the same filters as POST /api/search. A scan entry with a `window` other than
    the library's is rendered in that window and searched with that picture."""
    svc = _svc(request)
    check_rerank(rerank)
    flt, tag = _filters(svc, {}, {"q": q, "under": under, "since": since, "until": until, "where": where})
    result = svc.search_id(image_id, k or DEFAULT_K, min_score, None, flt, tag, ef=ef, window=window, group=group, rerank=rerank)
    return _search_response(svc, result, None, min_confidence)



@router.get("/api/explain", responses={**ERRORS, 200: {"content": {"image/png": {}, "application/json": {}}}},
            summary="Why did it match? Heat maps of where two images agree")
def explain(request: Request, query: int = Query(..., ge=0, le=2**63 - 1, description="The query image's id."),
            result: int = Query(..., ge=0, le=2**63 - 1, description="The result image's id."),
            format: str = Query("png", pattern="^(png|json)$", description="`png`: the images with the heat map over them; "
                                "`json`: the two grids (one value in [0, 1] per feature-map cell), score and confidence."),
            side: str = Query("both", pattern="^(both|query|result)$",
                              description="PNG only: both images side by side, or one of them.")) -> Response:
    """Where the two images agree, from the model's last feature map: each cell of one image
    scored against the other's embedding (bright = it carried the similarity)."""
    grid, png = _svc(request).explain(query, result, None if format == "json" else side)
    if format == "json" or png is None:
        return Response(json.dumps(grid), media_type="application/json")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


# -- browsing -------------------------------------------------------------------------------
@router.get("/api/images", response_model=schemas.ImagePage, summary="Browse the library")
def list_images(request: Request, offset: int = Query(0, ge=0, le=2**62), limit: int = Query(50, ge=1, le=500),
                where: str | None = WHERE,
                sort: str | None = Query(None, pattern=r"^-?(id|date|folder|name)$",
                                         description="id (default), date (capture time, else file time), folder or name; "
                                                     "a leading '-' reverses")) -> schemas.ImagePage:
    """Indexed images in id order (or `sort` order), `limit` at a time; `where` keeps those
    whose fields match (`total` then counts every image of the library)."""
    total, records = _svc(request).page(offset, limit, where, sort)
    return schemas.ImagePage(total=total, offset=offset, limit=limit, items=[_image(r) for r in records])


@router.get("/api/images/{image_id}", response_model=schemas.Image, responses=ERRORS, summary="Image metadata")
def get_image(request: Request, image_id: int = ImageId) -> schemas.Image:
    return _image(_svc(request).record(image_id))


@router.get("/api/images/{image_id}/file", response_class=StreamingResponse, responses=FILE_ERRORS, summary="The image file")
def get_file(request: Request, image_id: int = ImageId) -> Response:
    """The indexed file, only while it is still the file that was indexed (409 otherwise).
    A single `Range: bytes=a-b` is answered with 206, so a browser can start a video at the
    moment a frame was found (the web page's viewer)."""
    record, f, size, media_type = _svc(request).open_file(image_id)
    name = quote(os.path.basename(record.path))
    headers = {"Cache-Control": "private, max-age=300", "Accept-Ranges": "bytes",
               "Content-Disposition": f"inline; filename*=utf-8''{name}"}
    wanted = _byte_range(request.headers.get("range"), size)
    if wanted is None:
        return StreamingResponse(_chunks(f, size), media_type=media_type, headers={**headers, "Content-Length": str(size)})
    start, end = wanted
    if start >= size:
        f.close()
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    f.seek(start)
    return StreamingResponse(_chunks(f, end - start + 1), status_code=206, media_type=media_type, headers={
        **headers, "Content-Length": str(end - start + 1), "Content-Range": f"bytes {start}-{end}/{size}"})


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range; None for no
    header or one we do not serve as a range (several ranges, other units): the whole file."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header or "")
    if m is None or m.group(1) == m.group(2) == "":
        return None
    if m.group(1) == "":  # the last n bytes
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 else None
    start = int(m.group(1))
    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    return (start, end) if end >= start or start >= size else None


def _chunks(f: BinaryIO, size: int) -> Iterator[bytes]:
    """At most the `size` bytes checked when the file was opened (it matches Content-Length)."""
    with f:
        while size > 0 and (chunk := f.read(min(size, 1 << 16))):
            size -= len(chunk)
            yield chunk


@router.get("/api/images/{image_id}/thumb", response_class=FileResponse, responses=ERRORS, summary="A cached JPEG thumbnail")
def get_thumb(request: Request, image_id: int = ImageId, window: str | None = WINDOW) -> Response:
    # The URLs we hand out carry ?v=<content hash>, so a browser may keep a thumbnail for good.
    thumb = _svc(request).thumbnail(image_id, window)
    headers = {"Cache-Control": "private, max-age=86400"}
    if isinstance(thumb, bytes):
        return Response(thumb, media_type="image/jpeg", headers=headers)
    return FileResponse(thumb, media_type="image/jpeg", headers=headers)


@router.get("/api/stats", response_model=schemas.Stats, summary="Library and server facts")
def stats(request: Request) -> schemas.Stats:
    settings = request.app.state.settings
    return schemas.Stats(**_svc(request).lib.info(), max_upload_bytes=settings.max_upload_bytes,
                         writes_need_key=bool(settings.api_key), url_queries=settings.url_queries,
                         verify_unavailable=verify_unavailable())


@router.get("/healthz", response_model=schemas.Health, summary="Liveness")
def healthz(request: Request) -> schemas.Health:
    return schemas.Health(status="ok", images=len(_svc(request).lib))


# -- writing --------------------------------------------------------------------------------
@router.post("/api/images", response_model=schemas.Image, status_code=201, responses=WRITE_ERRORS,
             openapi_extra=UPLOAD_BODY, dependencies=[Security(require_key)], summary="Upload and index an image")
async def upload(request: Request, response: Response) -> schemas.Image:
    """The image is kept as `<library>/uploads/<sha256>.<ext>` and indexed. 201 when new;
    200 with the existing record when that exact file was uploaded before."""
    _rate_limit(request, request.app.state.settings.uploads)
    data, name, _ = await _read_image(request)
    record, created = await run_in_threadpool(_svc(request).upload, data, name)
    response.status_code = 201 if created else 200
    return _image(record)


@router.delete("/api/images/{image_id}", response_model=schemas.Deleted, responses=WRITE_ERRORS,
               dependencies=[Security(require_key)], summary="Forget an image")
def delete_image(request: Request, image_id: int = ImageId) -> schemas.Deleted:
    """Removes the image from the index. Its file is deleted only if it was uploaded through the API."""
    return schemas.Deleted(deleted=image_id, file_removed=_svc(request).delete(image_id))


# -- helpers --------------------------------------------------------------------------------
def content_type(request: Request) -> str:
    """The request body's media type, lower case, without parameters (charset, boundary)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_image(request: Request) -> tuple[bytes, str, dict[str, str]]:
    """(image bytes, a name for messages, other form fields) from a multipart or raw image body."""
    ctype = content_type(request)
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "multipart body has no file in form field 'file'")
        data = await upload.read()
        fields = {key: str(v) for key, v in form.items() if key != "file" and isinstance(v, str) and v != ""}
        return data, upload.filename or "<upload>", fields
    if ctype.startswith("image/") or ctype in ("application/octet-stream", "application/dicom"):
        return await request.body(), "<upload>", {}
    raise HTTPException(415, "send the image as multipart/form-data (field 'file') or as a raw image/* body"
                        + ('; or JSON {"id": N} / {"url": "..."}' if request.url.path == "/api/search" else ""))


@dataclass
class SearchForm:
    """A multipart search: uploads and ids, positive and negative, and the other form fields."""
    positives: list[QueryImage]
    negatives: list[QueryImage]
    weights: list[float]
    fields: dict[str, str]


async def _read_search_form(request: Request) -> SearchForm:
    """Several `file` parts (images like all of them) and `not_file` parts (not like these),
    plus optional `ids` / `not_ids` fields (comma-separated ids or item:SKU) and `weights`
    (comma-separated, one per positive: the files first, then the ids)."""
    form = await request.form(max_files=schemas.MAX_QUERY_IMAGES, max_fields=20)
    uploads: dict[str, list[QueryImage]] = {"file": [], "not_file": []}
    for key in uploads:
        for part in form.getlist(key):
            if not isinstance(part, UploadFile):
                raise HTTPException(422, f"multipart field {key!r} must be an image file, not text")
            uploads[key].append((await part.read(), part.filename or "<upload>"))
    fields = {key: str(v) for key, v in form.items() if key not in uploads and isinstance(v, str) and v != ""}
    positives = uploads["file"] + _refs(fields.get("ids"), "ids")
    negatives = uploads["not_file"] + _refs(fields.get("not_ids"), "not_ids")
    bad = [key for key, v in form.multi_items() if isinstance(v, UploadFile) and key not in uploads]
    if not positives or bad:
        raise HTTPException(422, ("multipart body has no file in form field 'file'" if not positives else
                                  f"multipart field {bad[0][:40]!r} is not a query field")
                            + ": images go in 'file' (like these) or 'not_file' (not like these)")
    if len(positives) + len(negatives) > schemas.MAX_QUERY_IMAGES:
        raise HTTPException(422, f"at most {schemas.MAX_QUERY_IMAGES} query images (files plus ids) in one search")
    weights = [w for w in (fields.get("weights") or "").split(",") if w.strip()]
    try:
        numbers = [float(w) for w in weights]
    except ValueError:
        raise HTTPException(422, f"weights must be comma-separated numbers, got {fields['weights'][:80]!r}") from None
    return SearchForm(positives, negatives, numbers, fields)


def _refs(text: str | None, name: str) -> list[QueryImage]:
    """Comma-separated ids or item:SKU from a form field."""
    refs: list[QueryImage] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            refs.append(schemas.check_ref(int(part) if part.isdigit() else part))
        except ValueError as e:
            raise HTTPException(422, f"{name}: {e}") from None
    return refs


def _one_image_crop(crop: tuple | None, count: int) -> None:
    if crop is not None and count > 1:
        raise InvalidQuery("crop takes one query image; crop each region into its own image to search with several")


def _filters(svc: Service, given: dict[str, str | None], params: dict[str, str | None]) -> tuple[SearchFilter | None, str | None]:
    """(store filter, tag text) from body/form fields, falling back to the query parameters;
    `where` is parsed by the engine against the library's fields."""
    merged = {key: given.get(key) or params.get(key) for key in ("q", "under", "since", "until", "where")}
    tag = merged["q"]
    if tag is not None and not tag.strip():
        tag = None
    return svc.lib.where(merged["where"] or None, make_filter(merged["under"], merged["since"], merged["until"])), tag


def _options(k: object, min_score: object, crop: object) -> tuple[int, float | None, tuple | None]:
    """k, min_score and crop from query parameters, form fields or JSON, checked by the engine."""
    return (DEFAULT_K if k in (None, "") else check_k(k), check_score(min_score),
            parse_crop(crop))


def _verify_option(verify: object, depth: object, group: str | None) -> int | None:
    """Candidates to verify (None: no verification) from a query parameter, form field or
    JSON value: true/false (1/0, yes/no) and an integer depth; setting the depth turns it on."""
    on = parse_flag(verify, "verify")
    if depth not in (None, ""):
        try:
            depth = int(str(depth).strip()) if not isinstance(depth, (int, bool)) else depth
        except ValueError:
            raise InvalidQuery(f"verify_depth must be an integer from 1 to {MAX_DEPTH}, got {str(depth)[:40]!r}") from None
        on = on is not False
    if not on:
        return None
    if group:
        raise InvalidQuery("verify does not combine with group=series")
    return check_depth(None if depth in (None, "") else depth)  # type: ignore[arg-type]


def _one_image_verify(depth: int | None, n_images: int) -> None:
    if depth is not None and n_images != 1:
        raise InvalidQuery("verify takes one query image (not several, nor negatives)")


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    msg = err["msg"].removeprefix("Value error, ")
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {msg}" if where else msg


def _urls(id_: int, sha256: str) -> dict[str, str]:
    v = sha256[:16]
    return {"thumb_url": f"/api/images/{id_}/thumb?v={v}", "image_url": f"/api/images/{id_}/file?v={v}"}


def _image(rec: ImageRecord) -> schemas.Image:
    assert rec.id is not None
    return schemas.Image(id=rec.id, path=rec.path, name=os.path.basename(rec.path), sha256=rec.sha256, size=rec.size,
                         mtime=rec.mtime, width=rec.width, height=rec.height, tags=rec.tags, added=rec.added, fields=rec.fields,
                         similar_url=f"/api/images/{rec.id}/similar", **_urls(rec.id, rec.sha256))


def _search_response(svc: Service, result: SearchResult, crop: tuple | None, min_confidence: object = None,
                     by_word: bool = False) -> schemas.SearchResponse:
    """The response; `min_confidence` is checked and applied by the engine. Word search's
    scores are already probabilities: it has no verdict."""
    cal = svc.lib.calibration
    threshold = check_score(min_confidence, "min_confidence", 0.0, 1.0) if by_word else \
        check_min_confidence(min_confidence, cal, svc.lib.model)
    hits = keep_confident(result.hits, threshold)
    records = svc.lib.records_by_id([h.id for h in hits])
    results = [_hit(h, records[h.id].sha256 if h.id in records else "", result.window) for h in hits]
    groups = {g.hit.id: g for g in result.groups or ()}
    for hit in results:
        if hit.id in groups:  # group=series: this hit stands for its series
            hit.series, hit.series_entries = groups[hit.id].series, groups[hit.id].entries
    return schemas.SearchResponse(query=result.query, model=svc.lib.model, took_ms=result.took_ms, crop=crop,
                                  verdict=None if by_word else svc.lib.verdict(hits),
                                  good_match=None if by_word or cal is None else cal.good_match,
                                  group="series" if result.groups is not None else None, window=result.window,
                                  results=results)


def _duplicates_response(svc: Service, report: DuplicateReport) -> schemas.Duplicates:
    out = report.to_dict()
    records = svc.lib.records_by_id([m.id for g in report.groups for m in g.members])
    for group in out["groups"]:
        for m in group["members"]:
            sha = records[m["id"]].sha256 if m["id"] in records else ""
            m.update(path=printable(m["path"], controls=False), name=os.path.basename(m["path"]), **_urls(m["id"], sha))
    return schemas.Duplicates(**out, unreadable=report.unreadable)


def _hit(h: EngineHit, sha256: str, window: str | None = None) -> schemas.Hit:
    if h.item is not None:  # a catalogue item: its image lives in the download cache or the shop's folder
        image = f"/api/items/{quote(h.item, safe='')}/image"
        return schemas.Hit(rank=h.rank, id=h.id, path=h.path, score=h.score, confidence=h.confidence, name=h.item,
                           fields=h.fields, item=h.item, thumb_url=image, image_url=image, series=None, series_entries=None,
                           inliers=h.inliers)
    urls = _urls(h.id, sha256)
    if window is not None and is_scan_record(h.path, h.fields):  # the thumbnail in the window the search asked for
        urls["thumb_url"] += f"&window={quote(window, safe='')}"
    return schemas.Hit(rank=h.rank, id=h.id, path=h.path, score=h.score, confidence=h.confidence,
                       name=os.path.basename(h.path), fields=h.fields, thumb_url=urls["thumb_url"],
                       image_url=urls["image_url"], item=None, series=None, series_entries=None, inliers=h.inliers)
