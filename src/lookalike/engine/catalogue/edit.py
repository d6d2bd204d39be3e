"""One item at a time (the REST API's writes): put with an image, patch fields, delete, read."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable

from ...errors import InvalidQuery, NotFound
from ...imaging import decode_image, original_size
from ...store import ImageRecord, SearchFilter, Upsert
from .colour import colour_signature
from .columns import plain_value
from .downloads import CACHE_DIR, DownloadCache, Downloader, FetchPolicy
from .items import ITEM_PREFIX, RESERVED_FIELDS, check_item_id, item_id, item_path
from .rowcheck import field_name


def check_fields(fields: Any) -> dict[str, Any]:
    """A client's fields: a flat object of names filters can address and typed values."""
    if not isinstance(fields, dict):
        raise InvalidQuery("fields must be a JSON object of name -> value")
    checked: dict[str, Any] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or field_name(name) != name:
            raise InvalidQuery(f"field name {name!r:.60} is not usable in filters (letters, digits, _ and ., not starting with a digit)")
        if name in RESERVED_FIELDS:
            raise InvalidQuery(f"field {name!r} is the catalogue's own (the id and the image are set by the request)")
        try:
            checked[name] = plain_value(value)
        except ValueError as e:
            raise InvalidQuery(f"field {name!r}: {e}") from None
    return {k: v for k, v in checked.items() if v is not None}


def get_item(lib, item: str) -> ImageRecord:
    rec = lib.store.find_path(item_path(check_item_id(item)))
    if rec is None:
        raise NotFound(f"no item {item!r:.80} in this library")
    return rec


def put_item(lib, item: str, fields: dict[str, Any], *, data: bytes | None = None, url: str | None = None,
             policy: FetchPolicy | None = None, get: Callable[[str], bytes] | None = None) -> tuple[ImageRecord, bool]:
    """Create or replace an item from image bytes or an image URL; returns (record, created).
    The image is embedded only when its bytes differ from the stored item's. `get`: the
    downloader to use (a server passes its fetcher that refuses private addresses)."""
    item = check_item_id(item)
    fields = check_fields(fields)
    if (data is None) == (url is None):
        raise InvalidQuery("give the item's image: upload it, or name its http(s) URL in `image`")
    cache = DownloadCache(lib.directory / CACHE_DIR)
    try:
        if url is not None:
            if not url.lower().startswith(("http://", "https://")):
                raise InvalidQuery(f"image must be an http(s) URL, not {url!r:.80}")
            data = Downloader(cache, policy, get).fetch(url).data
        else:
            cache.store_blob(data)  # type: ignore[arg-type]  # kept so the item's image can be served
    finally:
        cache.close()
    assert data is not None
    sha = hashlib.sha256(data).hexdigest()
    old = lib.store.find_path(item_path(item))
    record_fields = {**fields, "item": item, **({"image": url} if url else {})}
    if old is not None and old.sha256 == sha:
        old.fields = record_fields
        lib.store.write([Upsert(old)])
        return old, False
    image = decode_image(data, url or f"item {item}", draft_size=lib.extractor.draft_size)
    feats = lib.extractor.embed_batch(lib.extractor.preprocess(image)[None])
    lib.colours.put({sha: colour_signature(image)})
    w, h = original_size(image)
    rec = ImageRecord(item_path(item), sha, len(data), 0.0, w, h, feats.tags[0] if feats.tags else [],
                      id=old.id if old is not None else None, fields=record_fields)
    [rec.id] = lib.store.write([Upsert(rec, feats.vectors[0])])
    return rec, old is None


def patch_item(lib, item: str, changes: dict[str, Any]) -> ImageRecord:
    """Update fields without touching the image: a value replaces, null removes."""
    rec = get_item(lib, item)
    if not isinstance(changes, dict):
        raise InvalidQuery("fields must be a JSON object of name -> value")
    removed = [k for k, v in changes.items() if v is None]
    for name in removed:
        if name in RESERVED_FIELDS:
            raise InvalidQuery(f"field {name!r} is the catalogue's own")
    updates = check_fields({k: v for k, v in changes.items() if v is not None})
    rec.fields = {k: v for k, v in {**rec.fields, **updates}.items() if k not in removed}
    lib.store.write([Upsert(rec)])
    return rec


def delete_item(lib, item: str) -> None:
    rec = get_item(lib, item)
    lib.store.write(removes=[rec.id])


def list_items(lib, offset: int = 0, limit: int = 100, where: str | None = None) -> list[ImageRecord]:
    scope = lib.where(where, SearchFilter(path_prefix=ITEM_PREFIX))
    return [r for r in lib.store.iter_records(offset, limit, where=scope) if item_id(r.path) is not None]


def item_image_file(lib, rec: ImageRecord) -> Path | None:
    """The file holding an item's image: its local file, or the downloaded/uploaded copy."""
    source = rec.fields.get("image")
    if isinstance(source, str) and not source.startswith(("http://", "https://")) and os.path.isfile(source):
        return Path(source)
    blob = DownloadCache.blob_path_in(lib.directory / CACHE_DIR, rec.sha256)
    return blob if blob.is_file() else None
