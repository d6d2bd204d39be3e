"""`catalogue import` end to end: real product photos (local files and URLs from a real HTTP
server), the real model, the embedded store. Re-imports embed and download only what changed."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from lookalike import Library
from lookalike.engine.catalogue import FetchPolicy, import_items, item_records
from lookalike.errors import NotFound

FIELDS = ["sku", "image", "category", "price", "in_stock"]


def write_products(path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in FIELDS})


@pytest.fixture()
def shop(tmp_path, products, photo_files, image_server):
    """A product file: half the products as local files, half as URLs; plus three bad rows."""
    rows = []
    for n, p in enumerate(products):
        if n % 2:
            shutil.copy(p["file"], image_server.directory / p["file"].name)
            image = f"{image_server.base}/{p['file'].name}"
        else:
            image = str(p["file"])
        rows.append({"sku": p["sku"], "image": image, "category": p["category"], "price": p["price"],
                     "in_stock": "true" if n % 3 else "false"})
    shutil.copy(photo_files["rocket"], image_server.directory / "rocket.jpg")
    rows.append({"sku": "FLAKY", "image": f"{image_server.base}/flaky/rocket.jpg", "category": "toy", "price": 99})
    rows.append({"sku": "GONE-URL", "image": f"{image_server.base}/no-such.jpg", "category": "toy", "price": 1})
    rows.append({"sku": "GONE-FILE", "image": str(tmp_path / "no-such.png"), "category": "toy", "price": 1})
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a real jpeg")
    rows.append({"sku": "BROKEN", "image": str(tmp_path / "broken.jpg"), "category": "toy", "price": 1})
    return rows


def run_import(lib, path, **kw):
    kw.setdefault("policy", FetchPolicy(deadline_s=60, backoff_s=0.05))
    return import_items(lib, path, "sku", ["image"], **kw)


def test_import_then_sync(tmp_path, shop, products, image_server):
    csv_path = tmp_path / "products.csv"
    write_products(csv_path, shop)
    n = len(products)
    with Library.open(tmp_path / "lib") as lib:
        first = run_import(lib, csv_path)
        assert (first.added, first.embedded) == (n + 1, n + 1), first.to_dict()  # products + FLAKY (after a retry)
        assert image_server.requests["/flaky/rocket.jpg"] == 2
        problems = {p.item: (p.where, p.reason) for p in first.problems}
        assert set(problems) == {"GONE-URL", "GONE-FILE", "BROKEN"}
        assert problems["GONE-URL"][0] == f"line {n + 3}" and "HTTP 404" in problems["GONE-URL"][1]
        assert "not found" in problems["GONE-FILE"][1]
        assert problems["BROKEN"][0] == f"line {n + 5}"
        items = item_records(lib.store)
        assert len(items) == n + 1 and len(lib) == n + 1
        first_sku = products[0]["sku"]
        assert items[first_sku].fields["category"] == products[0]["category"]
        assert items[first_sku].fields["price"] == products[0]["price"]  # typed: a number, not "10"

        # Nothing changed: nothing embedded, nothing downloaded (the cache answers for every URL).
        requests_before = image_server.total()
        again = run_import(lib, csv_path)
        assert (again.added, again.updated, again.embedded, again.downloaded) == (0, 0, 0, 0), again.to_dict()
        assert again.unchanged + again.metadata == n + 1
        assert image_server.total() == requests_before + 1  # only the 404 URL, which never entered the cache

        # A price change: fields updated without the model; an image change: re-embedded.
        shop[0]["price"] = 1234
        shop[1]["image"] = str(products[-1]["file"])
        del shop[2]
        write_products(csv_path, shop)
        third = run_import(lib, csv_path)
        assert (third.updated, third.embedded, third.metadata, third.removed) == (1, 0, 1, 0), third.to_dict()
        items = item_records(lib.store)
        assert items[first_sku].fields["price"] == 1234
        assert items[products[1]["sku"]].sha256 == items[products[-1]["sku"]].sha256  # same picture: vector reused
        assert products[2]["sku"] in items  # not in the file, but no --prune

        pruned = run_import(lib, csv_path, prune=True)
        assert pruned.removed == 1 and products[2]["sku"] not in item_records(lib.store)


def test_item_query_never_finds_itself(tmp_path, products):
    csv_path = tmp_path / "products.csv"
    write_products(csv_path, [{"sku": p["sku"], "image": str(p["file"]), "category": p["category"]} for p in products])
    with Library.open(tmp_path / "lib") as lib:
        run_import(lib, csv_path)
        category = {f"item:{p['sku']}": p["category"] for p in products}
        same = 0
        for p in products:
            hits = lib.search(f"item:{p['sku']}", k=3)
            assert len(hits) == 3 and f"item:{p['sku']}" not in [h.path for h in hits]
            same += category[hits[0].path] == p["category"]
        assert same >= 0.5 * len(products)  # 4 products a class: chance is 3/39; measured 27/40
        with pytest.raises(NotFound, match="no item 'NOPE'"):
            lib.search("item:NOPE")


def test_download_deadline_and_size_cap(tmp_path, photo_files, image_server):
    shutil.copy(photo_files["coffee"], image_server.directory / "coffee.jpg")
    shutil.copy(photo_files["astronaut"], image_server.directory / "astronaut.jpg")
    csv_path = tmp_path / "p.csv"
    write_products(csv_path, [{"sku": "SLOW", "image": f"{image_server.base}/slow/coffee.jpg"},
                              {"sku": "BIG", "image": f"{image_server.base}/astronaut.jpg"}])
    big = os.path.getsize(photo_files["astronaut"])
    with Library.open(tmp_path / "lib") as lib:
        report = run_import(lib, csv_path, policy=FetchPolicy(deadline_s=1.5, max_bytes=big - 1, retries=0))
        reasons = {p.item: p.reason for p in report.problems}
        assert report.added == 0 and set(reasons) == {"SLOW", "BIG"}
        assert "timed out" in reasons["SLOW"] or "deadline" in reasons["SLOW"]
        assert "larger than" in reasons["BIG"]


def test_cli_import_json_and_errors(tmp_path, products):
    csv_path = tmp_path / "p.csv"
    write_products(csv_path, [{"sku": p["sku"], "image": str(p["file"]), "category": p["category"], "price": p["price"]}
                              for p in products[:3]] + [{"sku": "X", "image": ""}])
    cli = [sys.executable, "-m", "lookalike", "catalogue"]
    proc = subprocess.run([*cli, "import", csv_path, "--id", "sku", "--image", "image", "--type", "price=float",
                           "--library", tmp_path / "lib", "--json"], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert report["added"] == 3 and report["problems"] == [{"where": "line 5", "item": "X", "reason": "missing image (column 'image')"}]
    bad = subprocess.run([*cli, "import", csv_path, "--id", "code", "--image", "image", "--library", tmp_path / "lib"],
                         capture_output=True, timeout=300)
    assert bad.returncode == 1 and b"no column 'code'" in bad.stderr and b"Traceback" not in bad.stderr
    out = tmp_path / "out.csv"
    exported = subprocess.run([*cli, "export", out, "--library", tmp_path / "lib"], capture_output=True, timeout=300)
    assert exported.returncode == 0, exported.stderr.decode()
    assert [r["item"] for r in csv.DictReader(open(out))] == sorted(p["sku"] for p in products[:3])


def test_killed_import_resumes(tmp_path, products):
    """SIGKILL in the middle of an import: committed batches stay, the re-run embeds the rest."""
    import signal
    import time

    csv_path = tmp_path / "p.csv"
    write_products(csv_path, [{"sku": p["sku"], "image": str(p["file"]), "category": p["category"]} for p in products])
    cmd = [sys.executable, "-m", "lookalike", "catalogue", "import", csv_path, "--id", "sku", "--image", "image",
           "--batch-size", "2", "--workers", "1", "--library", tmp_path / "lib", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        committed = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if (tmp_path / "lib").exists():
                try:
                    with Library.open(tmp_path / "lib", create=False) as lib:
                        committed = len(lib)
                except Exception:  # the library is being created
                    committed = 0
            if committed >= 6:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the import finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    with Library.open(tmp_path / "lib", create=False) as lib:
        kept = len(lib)
    assert 6 <= kept < len(products)
    rerun = subprocess.run(cmd, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()
    report = json.loads(rerun.stdout)
    assert report["unchanged"] == kept and report["added"] == report["embedded"] == len(products) - kept


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_export_reimports_to_the_same_items(tmp_path, products, suffix):
    from lookalike.engine.catalogue.export import export_items

    csv_path = tmp_path / "p.csv"
    write_products(csv_path, [{"sku": p["sku"], "image": str(p["file"]), "category": p["category"], "price": p["price"],
                               "in_stock": "true" if n % 2 else "false"} for n, p in enumerate(products[:6])])
    with Library.open(tmp_path / "a") as a:
        run_import(a, csv_path)
        export_items(a.store, tmp_path / f"out{suffix}")
        original = {k: r.fields for k, r in item_records(a.store).items()}
    with Library.open(tmp_path / "b") as b:
        report = import_items(b, tmp_path / f"out{suffix}", "item", ["image"])
        assert report.added == 6 and not report.problems
        assert {k: r.fields for k, r in item_records(b.store).items()} == original
