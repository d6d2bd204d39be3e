"""Catalogue mode: a shop's products (items) by external id, imported from CSV/JSONL/parquet.

An item is an ordinary library record whose path is the virtual address `item:<id>` (so finding
an item by id is the store's indexed path lookup, on every backend) and whose `fields` hold
`item` (the id), `image` (the primary image's path or URL), optional `images` (extra views) and
the shop's typed columns. Its vector is its primary image's."""

from .downloads import DownloadCache, Downloader, FetchPolicy
from .importer import ImportReport, item_records
from .items import ITEM_PREFIX, RESERVED_FIELDS, item_id, item_path
from .rows import ProblemRow, RawRow, read_rows
from .sync import import_items

__all__ = ["ITEM_PREFIX", "RESERVED_FIELDS", "DownloadCache", "Downloader", "FetchPolicy", "ImportReport", "ProblemRow",
           "RawRow", "import_items", "item_id", "item_path", "item_records", "read_rows"]
