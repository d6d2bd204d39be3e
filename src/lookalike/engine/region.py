"""Region search: a crop of one query image (a file, bytes, URL, id:N or an indexed path) as
the query. The image is decoded with more pixels than a whole-image query, so a small region
still fills the model's input; an indexed image's region never finds the image itself."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PIL import Image

from ..errors import InvalidQuery
from ..imaging import ImageSource, crop_relative, decode_image, load_image
from .entries import file_of, is_scan_entry, load_entry
from .medical_index import WINDOW_META
from .params import CropBox, parse_crop
from .query import _ID, download

if TYPE_CHECKING:
    from .library import Library

REGION_SCALE = 4  # decode JPEGs at 4x the model's input: a region a quarter wide still fills it


def region_query(lib: Library, query: ImageSource | int, crop: object) -> tuple[Image.Image, list[int]]:
    """(the cropped region, ids to leave out of the results). `crop`: x0,y0,x1,y1 as fractions
    of the image (the API's form), checked by `parse_crop`."""
    box: CropBox | None = parse_crop(crop)
    assert box is not None, "region_query needs a crop box"
    draft = lib.extractor.draft_size * REGION_SCALE if lib.extractor.draft_size else None
    if isinstance(query, (int, str)) and not isinstance(query, bool):
        id_ = query if isinstance(query, int) else _id_of(query)
        if id_ is not None:  # the file that was indexed, still that file (Library.open_indexed_file)
            rec, fd = lib.open_indexed_file(id_)
            with os.fdopen(fd, "rb") as f:
                if file_of(rec.path) != rec.path or is_scan_entry(rec.path):  # a video frame, a scan's frame or slice
                    image = load_entry(rec.path, draft, lib.setting(WINDOW_META))
                else:
                    image = decode_image(f.read(), rec.path, draft)
            return crop_relative(image, box), [id_]
    if isinstance(query, str) and query.startswith(("http://", "https://")):
        return crop_relative(decode_image(download(query), query, draft), box), []
    if isinstance(query, int):
        raise InvalidQuery(f"{query} is not an image: give a path, URL or id:N")
    exclude: list[int] = []
    if isinstance(query, (str, os.PathLike)):  # an indexed file's region does not find the file itself
        found = lib.find_path(query)
        exclude = [found.stored_id] if found is not None else []
    return crop_relative(load_image(query, draft), box), exclude


def _id_of(query: str) -> int | None:
    m = _ID.match(query.strip())
    return int(m.group(1)) if m else None
