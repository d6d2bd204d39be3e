"""The engine end to end: real photos, real model, real store."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Library, LookalikeError, ModelMismatchError
from lookalike.demo.samples import save_jpeg, variants
from lookalike.models import model_info
from lookalike.store import SearchFilter
from tests.support.images import huge_png_header


def test_each_variant_finds_its_source_first(originals_library, photos, tmp_path):
    with Library.open(originals_library) as lib:
        by_name = {Path(r.path).stem: r.id for r in lib.records()}
        failures = []
        for name, photo in photos.items():
            for kind, im in variants(photo, seed=1).items():
                # Queries go through a JPEG re-encode too, as a user's file would.
                query = save_jpeg(im, tmp_path / f"{name}-{kind}.jpg", quality=75)
                hits = lib.search(query, k=3)
                if hits[0].id != by_name[name]:
                    failures.append((name, kind, Path(hits[0].path).stem, hits[0].score))
        assert failures == []


def test_query_sources_agree(originals_library, originals_dir, photos):
    chelsea = originals_dir / "chelsea.jpg"
    with Library.open(originals_library) as lib:
        cat_id = next(r.id for r in lib.records() if r.path.endswith("chelsea.jpg"))
        from_bytes = lib.search(chelsea.read_bytes(), k=3)
        from_pil = lib.search(Image.open(chelsea), k=3)
        from_array = lib.search(np.asarray(Image.open(chelsea)), k=3)
        assert from_bytes[0].id == from_pil[0].id == from_array[0].id == cat_id
        assert from_bytes[0].score > 0.999
        # By id or by the indexed path: "more like this", never the image itself.
        by_id = lib.search(cat_id, k=3)
        by_tag = lib.search(f"id:{cat_id}", k=3)
        by_path = lib.search(str(chelsea), k=3)
        assert [h.id for h in by_id] == [h.id for h in by_tag] == [h.id for h in by_path]
        assert cat_id not in [h.id for h in by_id]
        assert [h.id for h in by_id[:2]] == [h.id for h in from_bytes[1:3]]
        # Scores are cosine similarities, descending, ranks 1..k.
        assert [h.rank for h in by_id] == [1, 2, 3]
        assert by_id[0].score >= by_id[1].score >= by_id[2].score
        with pytest.raises(LookalikeError, match="no image with id"):
            lib.search(10_000)
        assert all(h.score >= 0.5 for h in lib.search(cat_id, k=10, min_score=0.5))


def test_indexing_uses_the_models_indexing_session(tmp_path):
    from lookalike.engine.indexer import Indexer

    with Library.open(tmp_path / "lib") as lib:
        ext = lib.extractor
        assert Indexer(lib.store, ext).extractor is ext.for_indexing()


def test_bad_files_are_reported_and_good_ones_indexed(tmp_path, photos):
    folder = tmp_path / "mixed"
    save_jpeg(photos["coffee"], folder / "good1.jpg")
    save_jpeg(photos["rocket"], folder / "sub" / "good2.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    full = (folder / "good1.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(full[: len(full) // 4])
    (folder / "notes.jpg").write_text("this is not a picture\n")
    (folder / "huge.png").write_bytes(huge_png_header(80_000, 80_000))
    (folder / "readme.txt").write_text("ignored: not an image extension")
    with Library.open(tmp_path / "lib") as lib:
        report = lib.add([folder])
        assert report.added == 2 and len(lib) == 2
        reasons = {Path(p).name: r for p, r in report.failed}
        assert set(reasons) == {"empty.jpg", "truncated.jpg", "notes.jpg", "huge.png"}
        assert reasons["empty.jpg"] == "empty file"
        assert "truncated" in reasons["truncated.jpg"]
        assert "not an image" in reasons["notes.jpg"]
        assert "too large" in reasons["huge.png"]
        assert lib.search((folder / "good1.jpg").read_bytes(), k=1)[0].score > 0.999  # usable afterwards


def test_incremental_reindex(tmp_path, photos, monkeypatch):
    folder = tmp_path / "pics"
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        save_jpeg(photos[name], folder / f"{name}.jpg")
    with Library.open(tmp_path / "lib") as lib:
        first = lib.add([folder])
        assert (first.added, first.embedded) == (4, 4)
        ids = {Path(r.path).name: r.id for r in lib.records()}

        again = lib.add([folder])
        assert (again.added, again.updated, again.unchanged, again.embedded) == (0, 0, 4, 0)

        # touched (same bytes, new mtime): no model run
        os.utime(folder / "coffee.jpg", (time.time() + 5, time.time() + 5))
        touched = lib.add([folder])
        assert (touched.embedded, touched.unchanged) == (0, 4)

        # modified in place: re-embedded under the same id
        save_jpeg(photos["moon"], folder / "rocket.jpg")
        # moved: recognised by content hash, no model run, same id
        (folder / "sub").mkdir()
        shutil.move(folder / "chelsea.jpg", folder / "sub" / "cat.jpg")
        # copied: vector reused from the original
        shutil.copy(folder / "coffee.jpg", folder / "coffee-copy.jpg")
        # added
        save_jpeg(photos["camera"], folder / "camera.jpg")
        # deleted
        (folder / "astronaut.jpg").unlink()
        report = lib.add([folder], prune=True)
        assert (report.updated, report.moved, report.added, report.removed) == (1, 1, 2, 1)
        assert report.embedded == 2  # camera + the modified rocket only
        recs = {Path(r.path).name: r for r in lib.records()}
        assert set(recs) == {"cat.jpg", "coffee.jpg", "coffee-copy.jpg", "rocket.jpg", "camera.jpg"}
        assert recs["cat.jpg"].id == ids["chelsea.jpg"] and recs["rocket.jpg"].id == ids["rocket.jpg"]
        np.testing.assert_allclose(lib.store.vectors([recs["coffee-copy.jpg"].id]),
                                   lib.store.vectors([recs["coffee.jpg"].id]))
        # every stored vector matches a fresh embedding of its file
        fresh = lib.embed([r.path for r in recs.values()])
        stored = lib.store.vectors([r.id for r in recs.values()])
        assert np.abs(fresh - stored).max() < 1e-4
        assert lib.remove([folder / "sub"]) == 1 and len(lib) == 4
        assert lib.remove([folder / "camera.jpg"]) == 1 and len(lib) == 3


def test_interrupted_index_is_consistent_and_resumable(tmp_path, photos):
    folder = tmp_path / "pics"
    for name, photo in photos.items():
        save_jpeg(photo, folder / f"{name}.jpg")

    class Stop(Exception):
        pass

    def stop_after(n):
        def progress(done, total):
            if done >= n:
                raise Stop
        return progress

    with Library.open(tmp_path / "lib") as lib:
        with pytest.raises(Stop):
            lib.add([folder], batch_size=4, progress=stop_after(9))
        partial = len(lib)
        assert 0 < partial < len(photos)  # whole batches were committed, nothing else
        report = lib.add([folder], batch_size=4)
        assert report.added == len(photos) - partial and len(lib) == len(photos)
        assert len({r.path for r in lib.records()}) == len(photos)


def test_model_is_fixed_per_library(tmp_path, photos):
    save_jpeg(photos["coffee"], tmp_path / "p" / "c.jpg")
    with Library.open(tmp_path / "lib", model="effnet-lite0") as lib:
        lib.add([tmp_path / "p"])
    with pytest.raises(ModelMismatchError, match="effnet-lite0"):
        Library.open(tmp_path / "lib", model="effnet-lite2")
    with Library.open(tmp_path / "lib") as lib:  # no model: use the stored one
        assert lib.model == "effnet-lite0" and lib.info()["images"] == 1
    with pytest.raises(LookalikeError, match="unknown model"):
        Library.open(tmp_path / "other", model="resnet-9000")
    with pytest.raises(LookalikeError, match="no library"):
        Library.open(tmp_path / "missing", create=False)


def test_lite2_library_and_folder_filter(tmp_path, photos):
    for name in ("chelsea", "coffee"):
        save_jpeg(photos[name], tmp_path / "a" / f"{name}.jpg")
    for name in ("rocket", "astronaut"):
        save_jpeg(photos[name], tmp_path / "b" / f"{name}.jpg")
    with Library.open(tmp_path / "lib", model="effnet-lite2") as lib:
        lib.add([tmp_path / "a", tmp_path / "b"])
        assert lib.info()["model"] == "effnet-lite2"
        hits = lib.search(photos["rocket"], k=4, where=SearchFilter(str(tmp_path / "a") + "/"))
        assert {Path(h.path).parent.name for h in hits} == {"a"} and len(hits) == 2
        assert lib.search(photos["rocket"], k=1)[0].path.endswith("rocket.jpg")


def test_store_reopens_identically(originals_library, photos):
    with Library.open(originals_library) as a:
        q = a.embed([photos["flower"]])[0]
        first = a.search_vector(q, k=5)
    with Library.open(originals_library) as b:
        assert b.search_vector(q, k=5) == first


def test_filters_by_label_and_mtime(originals_library):
    with Library.open(originals_library) as lib:
        cat = next(r for r in lib.records() if r.path.endswith("chelsea.jpg"))
        label = cat.tags[0][0]
        only = lib.store.search(lib.store.vectors([cat.id]), 5, SearchFilter(labels=[label]))[0]
        assert cat.id in [i for i, _ in only]
        assert all(label in [t for t, _ in lib.get(i).tags] for i, _ in only)
        assert lib.store.search(lib.store.vectors([cat.id]), 5, SearchFilter(labels=["no such label"]))[0] == []
        newest = max(r.mtime for r in lib.records())
        recent = list(lib.store.iter_records(where=SearchFilter(min_mtime=newest)))
        assert recent and all(r.mtime >= newest for r in recent)
        assert len(list(lib.store.iter_records(where=SearchFilter(max_mtime=newest)))) == len(lib)


def test_library_remembers_the_model_build(tmp_path, photos):
    save_jpeg(photos["coffee"], tmp_path / "p" / "c.jpg")
    with Library.open(tmp_path / "lib") as lib:
        lib.add([tmp_path / "p"])
        built = lib.store.get_meta()["model_version"]
        assert built == model_info(lib.model).version and "v2" in built  # the graphs' export version
        # A library made by an older build of the same-named model must not be searched.
        lib.store.set_meta({"model_version": "export-v0"})
    with pytest.raises(ModelMismatchError, match="re-index"):
        Library.open(tmp_path / "lib")
