"""`catalogue neighbours`: every item's k nearest items, batched, to CSV and parquet."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict

import pytest

from lookalike import Library


@pytest.fixture(scope="module")
def shop_lib(tmp_path_factory, products):
    root = tmp_path_factory.mktemp("neighbours")
    with open(root / "p.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sku", "image", "category"])
        writer.writerows([[p["sku"], str(p["file"]), p["category"]] for p in products])
    with Library.open(root / "lib") as lib:
        assert lib.import_items(root / "p.csv", "sku", ["image"]).added == len(products)
    return root / "lib"


def test_neighbours_csv_matches_item_search(tmp_path, shop_lib, products):
    out = tmp_path / "n.csv"
    proc = subprocess.run([sys.executable, "-m", "lookalike", "catalogue", "neighbours", "-k", "5", "--batch", "7",
                           "--out", out, "--library", shop_lib], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    lists: dict[str, list] = defaultdict(list)
    for row in csv.DictReader(open(out)):
        lists[row["item"]].append((int(row["rank"]), row["neighbour"], float(row["score"])))
    assert set(lists) == {p["sku"] for p in products}
    with Library.open(shop_lib, create=False) as lib:
        for sku in (products[0]["sku"], products[17]["sku"], products[-1]["sku"]):
            rows = lists[sku]
            assert [r[0] for r in rows] == [1, 2, 3, 4, 5] and sku not in [r[1] for r in rows]
            assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)
            assert [r[1] for r in rows] == [h.item for h in lib.similar_items(sku, 5)]


def test_neighbours_parquet_and_bad_extension(tmp_path, shop_lib, products):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "n.parquet"
    proc = subprocess.run([sys.executable, "-m", "lookalike", "catalogue", "neighbours", "-k", "3", "--out", out,
                           "--library", shop_lib], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    table = pq.read_table(out)
    assert table.num_rows == 3 * len(products) and table.column_names == ["item", "rank", "neighbour", "score"]
    bad = subprocess.run([sys.executable, "-m", "lookalike", "catalogue", "neighbours", "--out", tmp_path / "n.xlsx",
                          "--library", shop_lib], capture_output=True, timeout=300)
    assert bad.returncode == 1 and b".parquet" in bad.stderr and b"Traceback" not in bad.stderr


def test_neighbours_same_category_and_where(tmp_path, shop_lib, products):
    out = tmp_path / "same.csv"
    proc = subprocess.run([sys.executable, "-m", "lookalike", "catalogue", "neighbours", "-k", "3", "--same", "category",
                           "--where", 'category != "bag"', "--out", out, "--library", shop_lib], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    category = {p["sku"]: p["category"] for p in products}
    rows = list(csv.DictReader(open(out)))
    assert {r["item"] for r in rows} == {p["sku"] for p in products if p["category"] != "bag"}
    assert all(category[r["neighbour"]] == category[r["item"]] for r in rows)
    assert len(rows) == 3 * 36  # 4 a category: each has exactly 3 others
    bad = subprocess.run([sys.executable, "-m", "lookalike", "catalogue", "neighbours", "--same", "colour", "--out", out,
                          "--library", shop_lib], capture_output=True, timeout=300)
    assert bad.returncode != 0 and b"no item has this field" in bad.stderr


def test_cli_similar_with_rules(shop_lib, products):
    query = products[0]["sku"]
    proc = subprocess.run([sys.executable, "-m", "lookalike", "catalogue", "similar", f"item:{query}", "-k", "4",
                           "--where", 'category = "tshirt" or category = "shirt"', "--colour", "same", "--json",
                           "--library", shop_lib], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    results = json.loads(proc.stdout)["results"]
    assert len(results) == 4 and query not in [r["item"] for r in results]
    assert {r["fields"]["category"] for r in results} <= {"tshirt", "shirt"}
    bad = subprocess.run([sys.executable, "-m", "lookalike", "catalogue", "similar", "item:NOPE", "--library", shop_lib],
                         capture_output=True, timeout=300)
    assert bad.returncode != 0 and b"no item 'NOPE'" in bad.stderr and b"Traceback" not in bad.stderr


def test_search_command_on_items(shop_lib, products):
    """`lookalike search item:SKU --where ...`: results carry item and fields; with --collapse it goes through the rules."""
    query = products[0]["sku"]
    cli = [sys.executable, "-m", "lookalike", "search", f"item:{query}", "-k", "5", "--library", shop_lib, "--json"]
    plain = subprocess.run([*cli, "--where", 'category != "tshirt"'], capture_output=True, timeout=300)
    assert plain.returncode == 0, plain.stderr.decode()
    results = json.loads(plain.stdout)["results"]
    assert len(results) == 5 and all(r["item"] and r["fields"]["category"] != "tshirt" for r in results)
    assert query not in [r["item"] for r in results]
    collapsed = subprocess.run([*cli, "--collapse", "category"], capture_output=True, timeout=300)
    assert collapsed.returncode == 0, collapsed.stderr.decode()
    categories = [r["fields"]["category"] for r in json.loads(collapsed.stdout)["results"]]
    assert len(categories) == 5 and len(set(categories)) == 5
    bad = subprocess.run([*cli, "--colour", "purple"], capture_output=True, timeout=300)
    assert bad.returncode != 0 and b"colour must be" in bad.stderr and b"Traceback" not in bad.stderr
