"""Similar items with the shop's rules: colour, distinct, collapse; always k when enough exist."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.engine.catalogue.edit import get_item
from lookalike.engine.catalogue.similar import similar
from lookalike.errors import InvalidQuery
from lookalike.eval.catalogue import PALETTE, build_products, shopper_photo, textures, write_csv
from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist

pytestmark = pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST not installed")


@pytest.fixture(scope="module")
def coloured_shop(tmp_path_factory):
    """60 Fashion-MNIST products, each tinted one of six colours, imported as a catalogue."""
    root = tmp_path_factory.mktemp("coloured-shop")
    products = build_products(root / "products", per_class=6, seed=3)
    write_csv(products, root / "products.csv")
    with Library.open(root / "lib") as lib:
        report = lib.import_items(root / "products.csv", "sku", ["image"])
        assert report.added == len(products) and not report.problems
    return root, products


def test_colour_same_prefers_the_photos_colour(coloured_shop):
    root, products = coloured_shop
    data = load_fashion_mnist("test")
    backgrounds = textures()
    rng = np.random.default_rng(5)
    colour_of = {f"item:{p.sku}": p.colour for p in products}
    gains = []
    with Library.open(root / "lib", create=False) as lib:
        for n in range(12):
            p = products[int(rng.integers(len(products)))]
            colour = list(PALETTE)[n % len(PALETTE)]
            photo = shopper_photo(data.pixels[p.index], colour, backgrounds[n % len(backgrounds)], rng)
            fractions = {}
            for option in ("any", "same"):
                hits = similar(lib, photo, 5, colour=option)
                assert len(hits) == 5
                fractions[option] = np.mean([colour_of[h.path] == colour for h in hits])
            gains.append(fractions["same"] - fractions["any"])
        assert np.mean(gains) >= 0.15, gains
        with pytest.raises(InvalidQuery, match="colour must be 'any', 'same' or a weight"):
            similar(lib, f"item:{products[0].sku}", 5, colour="blue")
        with pytest.raises(InvalidQuery, match="between 0 and 1"):
            similar(lib, f"item:{products[0].sku}", 5, colour=1.5)


def test_the_colour_store_is_opened_once_per_library_and_closed_with_it(coloured_shop):
    import sqlite3

    root, products = coloured_shop
    with Library.open(root / "lib", create=False) as lib:
        similar(lib, f"item:{products[0].sku}", 5, colour="same")
        colours = lib.colours
        similar(lib, f"item:{products[1].sku}", 5, colour=0.5)
        assert lib.colours is colours  # one connection for every search of this library
        sha = get_item(lib, products[0].sku).sha256
        assert sha in colours.get([sha])
    with pytest.raises(sqlite3.ProgrammingError):  # closed with the library
        colours.get([sha])


def test_distinct_drops_copies_and_still_returns_k(tmp_path, coloured_shop):
    root, products = coloured_shop
    shutil.copytree(root / "lib", tmp_path / "lib")
    query = products[0]
    with Library.open(tmp_path / "lib", create=False) as lib:
        nearest = lib.similar_items(query.sku, 1)[0]
        twin = next(p for p in products if f"item:{p.sku}" == nearest.path)
        extra = tmp_path / "copies.csv"
        # two byte copies of the nearest item, and one saved again as a JPEG at twice the size
        # (other bytes; a near-duplicate by vectors only)
        resaved = tmp_path / "resaved.jpg"
        with Image.open(twin.file) as im:
            im.convert("RGB").resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC).save(resaved, quality=85)
        with open(extra, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["sku", "image", "category", "colour"])
            writer.writerows([[f"COPY-{i}", str(twin.file), twin.category, twin.colour] for i in range(2)])
            writer.writerow(["COPY-resaved", str(resaved), twin.category, twin.colour])
        assert lib.import_items(extra, "sku", ["image"]).added == 3
        plain = [h.path for h in lib.similar_items(query.sku, 6)]
        assert sum(p.startswith("item:COPY-") or p == nearest.path for p in plain) == 4  # the twin and its 3 copies
        distinct = [h.path for h in lib.similar_items(query.sku, 6, distinct=True)]
        assert len(distinct) == 6 and sum(p.startswith("item:COPY-") or p == nearest.path for p in distinct) == 1
        assert f"item:{query.sku}" not in distinct


def test_where_and_collapse_on_items(tmp_path, products):
    """Typed CSV columns make `price <= 60` numeric; collapse keeps one item per group, still k."""
    path = tmp_path / "p.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sku", "image", "category", "price", "group_id"])
        writer.writerows([[p["sku"], str(p["file"]), p["category"], p["price"], f"g{n // 2}"] for n, p in enumerate(products)])
    fields = {p["sku"]: p for p in products}
    with Library.open(tmp_path / "lib") as lib:
        lib.import_items(path, "sku", ["image"])
        query = products[0]["sku"]
        hits = lib.similar_items(query, 10, where='price <= 30 and category != "bag"')
        assert len(hits) == 10 and query not in [h.item for h in hits]
        assert all(fields[h.item]["price"] <= 30 and fields[h.item]["category"] != "bag" for h in hits)
        assert all(isinstance(h.fields["price"], int) for h in hits)
        plain = lib.similar_items(query, 10)
        assert len({h.fields["group_id"] for h in plain}) < 10  # neighbours share groups...
        collapsed = lib.similar_items(query, 10, collapse="group_id")
        assert len(collapsed) == 10 and len({h.fields["group_id"] for h in collapsed}) == 10  # ...collapsed: one each
        with pytest.raises(InvalidQuery, match="where: .*column"):
            lib.similar_items(query, 5, where="price <= ")
        # A photo as the query, among items, with the same rules.
        hits = similar(lib, str(products[5]["file"]), 5, where='category = "sandal"')
        assert [fields[h.item]["category"] for h in hits] == ["sandal"] * 4  # 4 sandals in the shop
