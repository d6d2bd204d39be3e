"""Fields at the Library level: what the indexer records for real photos, `where` on
searches and listings, old libraries filled in without the model, and a filtered ANN search
that still returns k hits."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime

import numpy as np
import pytest

from lookalike import Library
from lookalike.demo.samples import save_jpeg, variants
from lookalike.errors import InvalidQuery, NotFound
from lookalike.models import model_info
from lookalike.store import EmbeddedStore, ImageRecord, SearchFilter, Upsert
from lookalike.store.ann_index import AnnParams


@pytest.fixture()
def mixed_folder(photos, tmp_path):
    """Real photos as JPEG, plus two as PNG; one PNG wears a .jpg name (format comes from the decoder)."""
    root = tmp_path / "pics"
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        save_jpeg(photos[name], root / f"{name}.jpg")
    (root / "png").mkdir()
    photos["coffee"].save(root / "png" / "coffee.png")
    photos["chelsea"].save(root / "chelsea-really-png.jpg", format="PNG")
    return root


def test_indexed_files_get_their_fields_and_where_filters_search(mixed_folder, photos, tmp_path):
    with Library.open(tmp_path / "lib") as lib:
        assert lib.add([mixed_folder]).added == 6
        by_name = {r.fields["name"]: r for r in lib.records()}
        astro = by_name["astronaut.jpg"]
        st = os.stat(mixed_folder / "astronaut.jpg")
        mtime = datetime.fromtimestamp(st.st_mtime).isoformat(timespec="seconds")
        # No EXIF capture time: `date` is the file time (docs/photos.md).
        assert astro.fields == {"folder": str(mixed_folder), "name": "astronaut.jpg", "format": "jpeg",
                                "width": 512, "height": 512, "bytes": st.st_size, "mtime": mtime,
                                "media": "image", "date": mtime}
        assert by_name["chelsea-really-png.jpg"].fields["format"] == "png"
        assert by_name["coffee.png"].fields["folder"] == str(mixed_folder / "png")
        assert lib.field_types()["width"] == {"number"} and lib.field_types()["mtime"] == {"date"}
        assert lib.record(f"id:{astro.id}").fields == astro.fields

        query = variants(photos["coffee"])["crop"]
        where = 'format = "jpeg" and width >= 500'
        hits = lib.search(query, k=10, where=where)
        expected = {r.path for r in lib.records() if r.fields["format"] == "jpeg" and r.fields["width"] >= 500}
        assert {h.path for h in hits} == expected and len(expected) == 3  # astronaut 512, coffee 600, rocket 640
        assert hits[0].path == str(mixed_folder / "coffee.jpg") and hits[0].fields["width"] == 600
        assert hits[0].to_dict()["fields"]["format"] == "jpeg"
        # Combined with the other filters: AND.
        under_png = SearchFilter(str(mixed_folder / "png") + os.sep)
        assert [h.path for h in lib.search(query, k=10, where=lib.where('format = "png"', under_png))] == [
            str(mixed_folder / "png" / "coffee.png")]
        assert {r.fields["name"] for r in lib.records(where='name like "chelsea%"')} == {"chelsea.jpg", "chelsea-really-png.jpg"}
        assert lib.search_text("espresso", where='format = "png"')[0].path == str(mixed_folder / "png" / "coffee.png")
        assert lib.duplicates(where='format = "png"').groups == []
        with pytest.raises(InvalidQuery, match=r"unknown field 'widht' at column 1 .*did you mean 'width'"):
            lib.search(query, where="widht > 3")
        with pytest.raises(NotFound):
            lib.record("id:999")


def test_old_library_gets_fields_without_the_model(mixed_folder, tmp_path, monkeypatch):
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir) as lib:
        lib.add([mixed_folder])
        before = {r.id: r for r in lib.records()}
        vectors = lib.store.vectors(sorted(before))
    # Make it a library from before fields existed: no `fields` column, no field_types table.
    con = sqlite3.connect(lib_dir / "library.sqlite")
    con.execute("ALTER TABLE images DROP COLUMN fields")
    con.execute("DROP TABLE field_types")
    con.commit()
    con.close()
    with Library.open(lib_dir) as lib:  # migrated on open
        assert all(r.fields == {} for r in lib.records())
        with pytest.raises(InvalidQuery, match="none: no image has fields yet"):
            lib.records(where='format = "jpeg"')
        report = lib.add([mixed_folder])
        assert (report.embedded, report.unchanged, report.added) == (0, 6, 0)
        after = {r.id: r for r in lib.records()}
        assert {i: r.fields for i, r in after.items()} == {i: r.fields for i, r in before.items()}
        np.testing.assert_array_equal(lib.store.vectors(sorted(after)), vectors)
        assert len(lib.records(where='format = "png"')) == 2


def test_filtered_ann_search_returns_k_hits(tmp_path):
    """Clustered synthetic vectors behind a real ANN index: filters of every selectivity
    (including one that matches only images far from the query) still give k hits."""
    rng = np.random.default_rng(7)
    n, dim = 3000, model_info("effnet-lite0").dim
    centres = rng.normal(size=(30, dim)).astype(np.float32)
    vecs = centres[np.arange(n) % 30] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = EmbeddedStore(tmp_path / "lib", ann_threshold=500, ann_params=AnnParams(pca_dim=64, m=16, ef_construction=40, ef=32))
    store.set_meta({"model": "effnet-lite0", "dim": str(dim), "model_version": model_info("effnet-lite0").version})
    files = tmp_path / "s"
    files.mkdir()
    for i in range(n):  # results are files that exist (a search drops deleted ones)
        (files / f"{i}.jpg").touch()
    store.write([Upsert(ImageRecord(str(files / f"{i}.jpg"), f"{i:064x}", 1, 0.0, 1, 1,
                                    fields={"cluster": i % 30, "shard": i % 7, "even": i % 2 == 0}), v)
                 for i, v in enumerate(vecs)])
    exact = EmbeddedStore(tmp_path / "lib", ann_threshold=10**9)
    with Library.open(tmp_path / "lib", store=store) as lib:
        assert lib.sync_index() is True and store._ann is not None  # really the ANN path
        q = vecs[0]  # cluster 0
        for where, matching in [("cluster = 5", 100), ("cluster != 0 and shard = 3", 415), ("even = true", 1500),
                                ("cluster in [7, 8] and shard = 1", 0), ("cluster = 29 and shard = 2", 0)]:
            expr = lib.where(where)
            count = sum(1 for _ in exact.iter_records(where=expr))
            assert matching == 0 or count == matching
            hits = lib.search_vector(q, 10, where=where)
            assert len(hits) == min(10, count), where
            ok = {r.id for r in exact.iter_records(where=expr)}
            assert {h.id for h in hits} <= ok
            if count <= 128:  # selective: ranked exactly, so equal to exact search
                assert [h.id for h in hits] == [i for i, _ in exact.search(q[None], 10, expr)[0]]
    exact.close()
