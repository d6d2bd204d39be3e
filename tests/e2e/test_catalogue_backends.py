"""The catalogue on every store: embedded SQLite, Milvus Lite and a real Milvus standalone
server. Import, sync without re-embedding, fields updates, item queries with filters, prune."""

from __future__ import annotations

import csv
import uuid

import pytest

from lookalike import Library
from lookalike.engine.catalogue import item_records
from lookalike.engine.catalogue.neighbours import neighbour_rows

BACKENDS = ["embedded", "milvus-lite", "milvus-standalone"]


@pytest.fixture(params=BACKENDS)
def store_spec(request, tmp_path):
    if request.param == "embedded":
        return None
    if request.param == "milvus-lite":
        return f"milvus:{tmp_path / 'lib.db'}"
    # Strong: under Session, a 2.3 server's queries still list this client's own recent deletes
    # (the store's count() is Strong for the same reason), and this test reads right after --prune.
    return f"milvus:{request.getfixturevalue('milvus_server')}#cat_{uuid.uuid4().hex[:12]}?consistency=Strong"


def write(path, products, price_of=lambda p: p["price"]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sku", "image", "category", "price"])
        writer.writerows([[p["sku"], str(p["file"]), p["category"], price_of(p)] for p in products])


def test_catalogue_contract(tmp_path, store_spec, products):
    shop = products[::2]  # 20 products, 2 a category
    path = tmp_path / "p.csv"
    write(path, shop)
    with Library.open(tmp_path / "lib", store=store_spec) as lib:
        first = lib.import_items(path, "sku", ["image"])
        assert (first.added, first.embedded, first.problems) == (len(shop), len(shop), [])
        again = lib.import_items(path, "sku", ["image"])
        assert (again.unchanged, again.embedded, again.metadata) == (len(shop), 0, 0)
        write(path, shop[:-1], price_of=lambda p: p["price"] + 100)
        synced = lib.import_items(path, "sku", ["image"], prune=True)
        assert (synced.metadata, synced.embedded, synced.removed) == (len(shop) - 1, 0, 1)
        items = item_records(lib.store)
        assert len(items) == len(shop) - 1 and items[shop[0]["sku"]].fields["price"] == shop[0]["price"] + 100
        query = shop[0]["sku"]
        hits = lib.similar_items(query, 5, where=f"price >= {shop[0]['price'] + 100} and category != \"{shop[0]['category']}\"")
        assert len(hits) == 5 and query not in [h.item for h in hits]
        assert all(h.fields["category"] != shop[0]["category"] and h.fields["price"] >= 100 for h in hits)
        assert shop[1]["category"] == shop[0]["category"]  # two products a category
        same = lib.similar_items(query, 5, where=f'category = "{shop[0]["category"]}"')
        assert [h.item for h in same] == [shop[1]["sku"]]
        rows = [row for batch in neighbour_rows(lib, 3, same="category", batch=7) for row in batch]
        category = {p["sku"]: p["category"] for p in shop}
        assert len(rows) == 18  # 9 categories of 2 items (1 neighbour each); the pruned one's category has 1 item
        assert all(category[item] == category[neighbour] and item != neighbour for item, _, neighbour, _ in rows)
