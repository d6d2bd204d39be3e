"""Turning a query (file, URL, bytes, image, array, id) into a vector."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from ..errors import InvalidQuery, NotFound
from ..imaging import ImageSource, decode_image, load_image
from ..store import VectorStore
from .catalogue.items import ITEM_PREFIX
from .entries import WINDOW_META, file_of, load_entry
from .fetch import CLI_POLICY, fetch
from .params import no_image
from .scan import absolute

MAX_DOWNLOAD_BYTES = CLI_POLICY.max_bytes
_ID = re.compile(r"^id:(\d+)$")


@dataclass
class ResolvedQuery:
    label: str  # how the query is reported back ("query" in --json)
    vector: np.ndarray | None = None  # already known (indexed image)
    image: Image.Image | None = None  # needs embedding
    exclude: list[int] = field(default_factory=list)  # the query itself, when it is indexed


def resolve(query: ImageSource | int, store: VectorStore, draft_size: int | None = None,
            window: str | None = None) -> ResolvedQuery:
    """`draft_size` must match the indexer's, so a file queried gives exactly its indexed vector.
    `window`: how a scan file (DICOM, NIfTI) is shown to the model; None: the library's window,
    and then an indexed entry answers with its stored vector."""
    if isinstance(query, bool):  # an int subclass, but never meant as an id
        raise InvalidQuery(f"a query is an image or an image id, not {query}")
    if isinstance(query, (int, np.integer)):
        return _by_id(int(query), store)
    if isinstance(query, str):
        m = _ID.match(query.strip())
        if m:
            return _by_id(int(m.group(1)), store)
        if query.startswith("dicomweb+"):  # an entry indexed from a PACS (engine/dicomweb_index.py)
            rec = store.find_path(query)
            if rec is None:
                raise NotFound(f"{query}: not in this library (lookalike scans index the DICOMweb server first)")
            return ResolvedQuery(query, vector=store.vectors([rec.stored_id])[0], exclude=[rec.stored_id])
        if query.startswith(ITEM_PREFIX):
            return _by_item(query, store)
        if query.startswith(("http://", "https://")):
            return ResolvedQuery(query, image=decode_image(download(query), query, draft_size))
    if isinstance(query, (str, os.PathLike)):
        path = absolute(query)
        rec = store.find_path(path) if window is None else None
        if rec is not None:
            try:
                st = os.stat(file_of(path))  # a frame's entry is checked against its file
                if st.st_size == rec.size and st.st_mtime == rec.mtime:
                    return ResolvedQuery(path, vector=store.vectors([rec.stored_id])[0], exclude=[rec.stored_id])
            except OSError:
                pass
        if window is None:
            window = store.get_meta().get(WINDOW_META)
        return ResolvedQuery(os.fsdecode(query), image=load_entry(path, draft_size, window))
    label = {bytes: "<bytes>", Image.Image: "<image>", np.ndarray: "<array>"}.get(type(query), "<image>")
    return ResolvedQuery(label, image=load_image(query, draft_size))


def _by_id(id_: int, store: VectorStore) -> ResolvedQuery:
    try:
        vec = store.vectors([id_])[0]
    except KeyError:
        raise no_image(id_) from None
    return ResolvedQuery(f"id:{id_}", vector=vec, exclude=[id_])


def _by_item(path: str, store: VectorStore) -> ResolvedQuery:
    """`item:SKU`: the catalogue item's stored vector (an indexed path lookup); never finds itself."""
    rec = store.find_path(path)
    if rec is None or rec.id is None:
        raise NotFound(f"no item {path[len(ITEM_PREFIX):]!r} in this library")
    return ResolvedQuery(path, vector=store.vectors([rec.id])[0], exclude=[rec.id])


def download(url: str, limit: int = MAX_DOWNLOAD_BYTES, timeout: float = 60.0) -> bytes:
    """What the CLI fetches for its own user: any address, but a total deadline and size cap."""
    return fetch(url, replace(CLI_POLICY, max_bytes=limit, deadline_s=timeout))
