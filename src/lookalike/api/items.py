"""Catalogue REST endpoints: items by their external id (engine/catalogue/).

Reads are open; PUT/PATCH/DELETE need the API key like every write. Item ids travel in the
URL path (percent-encode them; an id containing "/" cannot be addressed in a path)."""

from __future__ import annotations

import io
import json
import threading
from typing import Any, Optional

from fastapi import APIRouter, HTTPException, Query, Request, Response, Security
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from PIL import Image
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from ..engine.catalogue.downloads import FetchPolicy
from ..engine.catalogue.edit import delete_item, get_item, item_image_file, list_items, patch_item, put_item
from ..engine.catalogue.items import item_id
from ..engine.catalogue.similar import ItemHit, similar
from ..errors import Forbidden, ImageLoadError, NotFound
from ..imaging import load_image
from ..store import ImageRecord
from .routes import ERRORS, WRITE_ERRORS, content_type, require_key

router = APIRouter(tags=["items"])
ItemId = PathParam(..., min_length=1, max_length=512, description="The item's external id (e.g. a SKU).")
WHERE = Query(None, max_length=10_000, description='Filter over the items\' fields, e.g. `category = "boots" and price <= 60`.')
THUMB_PX = 320


class Item(BaseModel):
    item: str
    id: int = Field(description="The library's internal record id.")
    fields: dict[str, Any]
    image_url: str = Field(description="The item's image (a JPEG thumbnail) on this server.")


class ItemPage(BaseModel):
    offset: int
    items: list[Item]


class ItemHitOut(BaseModel):
    rank: int
    item: Optional[str]
    id: int
    score: float
    fields: dict[str, Any]
    image_url: str


class SimilarItems(BaseModel):
    item: str
    results: list[ItemHitOut]


class ItemBody(BaseModel):
    image: Optional[str] = Field(None, max_length=4096, description="http(s) URL of the item's image (the server downloads it).")
    fields: dict[str, Any] = Field(default_factory=dict,
                                   description="Typed fields: strings, numbers, booleans, ISO dates, lists of strings.")


def _lib(request: Request):
    return request.app.state.service.lib


def _write_lock(request: Request) -> threading.Lock:
    # The service's one write lock: item writes wait for uploads, deletes and the watcher too.
    return request.app.state.service.write_lock


def _item(rec: ImageRecord) -> Item:
    name = item_id(rec.path) or ""
    return Item(item=name, id=rec.id, fields=rec.fields, image_url=_image_url(name))  # type: ignore[arg-type]


def _image_url(item: str) -> str:
    from urllib.parse import quote

    return f"/api/items/{quote(item, safe='')}/image"


def _hit(h: ItemHit) -> ItemHitOut:
    return ItemHitOut(rank=h.rank, item=h.item, id=h.id, score=h.score, fields=h.fields,
                      image_url=_image_url(h.item) if h.item is not None else f"/api/images/{h.id}/thumb")


@router.get("/api/items", response_model=ItemPage, summary="Browse items")
def browse(request: Request, offset: int = Query(0, ge=0, le=2**62), limit: int = Query(50, ge=1, le=500),
           where: Optional[str] = WHERE) -> ItemPage:
    return ItemPage(offset=offset, items=[_item(r) for r in list_items(_lib(request), offset, limit, where)])


@router.get("/api/items/{item}", response_model=Item, responses=ERRORS, summary="An item and its fields")
def read(request: Request, item: str = ItemId) -> Item:
    return _item(get_item(_lib(request), item))


@router.get("/api/items/{item}/similar", response_model=SimilarItems, responses=ERRORS, summary="Visually similar items")
def similar_items(request: Request, item: str = ItemId, k: int = Query(10, ge=1, le=100),
                  colour: str = Query("any", max_length=20, description="`any`, `same`, or a colour weight 0..1."),
                  collapse: Optional[str] = Query(None, max_length=128, description="At most one result per value of this field."),
                  distinct: bool = Query(False, description="Drop near-duplicates of a higher result."),
                  where: Optional[str] = WHERE) -> SimilarItems:
    lib = _lib(request)
    rec = get_item(lib, item)
    hits = similar(lib, rec.path, k, where=where, colour=colour, collapse=collapse, distinct=distinct)
    return SimilarItems(item=item, results=[_hit(h) for h in hits])


@router.get("/api/items/{item}/image", response_class=Response, responses=ERRORS, summary="The item's image (JPEG thumbnail)")
def image(request: Request, item: str = ItemId) -> Response:
    lib = _lib(request)
    rec = get_item(lib, item)
    thumbs = lib.directory / "thumbs"
    thumb = thumbs / f"{rec.sha256}-{THUMB_PX}.jpg"
    headers = {"Cache-Control": "public, max-age=3600"}
    if thumb.exists():
        return Response(thumb.read_bytes(), media_type="image/jpeg", headers=headers)
    source = item_image_file(lib, rec)
    if source is None:
        raise NotFound(f"the image of item {item!r:.80} is not on this server")
    try:
        im = load_image(source, draft_size=THUMB_PX)
    except ImageLoadError as e:
        raise NotFound(f"cannot read the image of item {item!r:.80}: {e.reason}") from None
    im.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=82)
    try:
        thumbs.mkdir(exist_ok=True)
        thumb.write_bytes(buf.getvalue())
    except OSError:
        pass  # a read-only library still answers, without caching
    return Response(buf.getvalue(), media_type="image/jpeg", headers=headers)


@router.put("/api/items/{item}", response_model=Item, responses=WRITE_ERRORS, dependencies=[Security(require_key)],
            summary="Create or replace an item",
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ItemBody"}},
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "fields": {"type": "string", "description": "The fields as a JSON object"}}}}}}})
async def put(request: Request, response: Response, item: str = ItemId) -> Item:
    """JSON `{"image": "https://...", "fields": {...}}`, or multipart with the image in `file`
    and the fields as JSON text in `fields`. Re-embeds only when the image bytes changed."""
    lib, settings = _lib(request), request.app.state.settings
    data, url, fields = await _item_body(request)
    fetcher = request.app.state.service.fetcher
    if url is not None and fetcher is None:
        raise Forbidden("this server does not download URLs (start it with --allow-url-queries): upload the image instead")
    # revalidate: a PUT means "this is the image now", so a URL already cached is fetched again,
    # by the server's fetcher (public addresses only, deadline and size cap: engine/fetch.py).
    policy = FetchPolicy(max_bytes=settings.max_upload_bytes, revalidate=True)

    def write() -> tuple[ImageRecord, bool]:
        with _write_lock(request):
            return put_item(lib, item, fields, data=data, url=url, policy=policy, get=fetcher.fetch if fetcher else None)

    rec, created = await run_in_threadpool(write)
    response.status_code = 201 if created else 200
    return _item(rec)


@router.patch("/api/items/{item}", response_model=Item, responses=WRITE_ERRORS, dependencies=[Security(require_key)],
              summary="Update an item's fields (not its image)")
def patch(request: Request, changes: dict[str, Any], item: str = ItemId) -> Item:
    """A JSON object of fields: a value sets the field, null removes it; other fields are kept."""
    with _write_lock(request):
        return _item(patch_item(_lib(request), item, changes))


@router.delete("/api/items/{item}", responses=WRITE_ERRORS, dependencies=[Security(require_key)], summary="Remove an item")
def delete(request: Request, item: str = ItemId) -> dict:
    with _write_lock(request):
        delete_item(_lib(request), item)
    return {"deleted": item}


async def _item_body(request: Request) -> tuple[bytes | None, str | None, dict]:
    ctype = content_type(request)
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "multipart body has no image in form field 'file'")
        raw = form.get("fields") or "{}"
        try:
            fields = json.loads(raw) if isinstance(raw, str) else None
        except json.JSONDecodeError as e:
            raise HTTPException(422, f"form field 'fields' is not JSON: {e.msg} at column {e.colno}") from None
        if not isinstance(fields, dict):
            raise HTTPException(422, "form field 'fields' must be a JSON object")
        return await upload.read(), None, fields
    if ctype == "application/json":
        try:
            body = ItemBody.model_validate_json(await request.body())
        except ValueError as e:
            first: dict = getattr(e, "errors", lambda: [{}])()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise HTTPException(422, f"{where}: {first.get('msg', 'invalid JSON body')}".strip(": ")) from None
        return None, body.image, body.fields
    raise HTTPException(415, 'send JSON {"image": "https://...", "fields": {...}} or multipart/form-data with the image in \'file\'')
