"""The ANN index of the embedded store, forced on with a low threshold on a small library of
real model features (Fashion-MNIST images through EfficientNet-Lite0): it must agree with
exact search, never return removed images, follow updates and other connections' writes,
and answer identically after reopening."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import faiss
import numpy as np
import pytest

from lookalike import Library
from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist
from lookalike.models import get_extractor, model_info
from lookalike.store import EmbeddedStore, ImageRecord, SearchFilter, Upsert, ann_index
from lookalike.store.ann_index import INDEX_DIR, AnnParams

pytestmark = pytest.mark.skipif(not fashion_mnist_available(), reason="needs Debian's dataset-fashion-mnist")

N_INDEXED = 240
N_QUERIES = 24
# Small graph settings so the index is cheap to build; merges and rebuilds happen early. Every
# candidate is re-ranked (rerank=0), so a high ef is exhaustive and must equal exact search.
PARAMS = AnnParams(pca_dim=64, m=16, ef_construction=40, ef=32, merge_min=25, rerank=0)
THRESHOLD = 50


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    """Real features: the first images of the Fashion-MNIST test split, embedded once."""
    ext = get_extractor("effnet-lite0")
    ds = load_fashion_mnist("test")
    images = np.stack([ext.preprocess(ds.image(i)) for i in range(N_INDEXED + N_QUERIES)])
    return np.concatenate([ext.embed_batch(images[s:s + 100]).vectors for s in range(0, len(images), 100)])


def _records(vecs: np.ndarray, start: int = 0, root: str = "/fm") -> list[Upsert]:
    return [Upsert(ImageRecord(f"{root}/{start + i}.png", f"{start + i:064x}", 1, 0.0, 28, 28), v) for i, v in enumerate(vecs)]


def _open(directory, threshold: int = THRESHOLD) -> EmbeddedStore:
    store = EmbeddedStore(directory, ann_threshold=threshold, ann_params=PARAMS)
    if "dim" not in store.get_meta():
        store.set_meta({"model": "effnet-lite0", "dim": str(model_info("effnet-lite0").dim),
                        "model_version": model_info("effnet-lite0").version})
    return store


@pytest.fixture()
def stores(tmp_path, vectors):
    """(ANN store, exact store) on the same library: two connections, one database."""
    ann = _open(tmp_path)
    ann.write(_records(vectors[:N_INDEXED]))
    exact = _open(tmp_path, threshold=10**9)
    yield ann, exact
    ann.close()
    exact.close()


def _ids(results) -> list[list[int]]:
    return [[i for i, _ in r] for r in results]


def _assert_same(a, b) -> None:
    assert _ids(a) == _ids(b)
    np.testing.assert_allclose([s for r in a for _, s in r], [s for r in b for _, s in r], atol=1e-5)


def test_ann_equals_exact_at_high_ef(stores, vectors, tmp_path):
    ann, exact = stores
    queries = vectors[N_INDEXED:]
    got = ann.search(queries, 10, ef=N_INDEXED)
    assert ann._ann is not None and (tmp_path / INDEX_DIR / "manifest.json").exists()  # really the ANN path
    _assert_same(got, exact.search(queries, 10))
    # At the small default ef it is approximate but close (the re-rank makes scores exact).
    fast = ann.search(queries, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(_ids(fast), _ids(exact.search(queries, 10)))])
    assert overlap >= 0.9
    # Filters and exclusions hold on the ANN path too.
    ex = _ids(exact.search(queries[:5], 10))
    banned = [r[0] for r in ex]
    _assert_same(ann.search(queries[:5], 10, exclude=banned, ef=N_INDEXED), exact.search(queries[:5], 10, exclude=banned))
    for prefix in ("/fm/1", "/fm/"):  # a selective filter (exact over few) and a broad one (graph walk)
        where = SearchFilter(prefix)
        _assert_same(ann.search(queries, 10, where=where, ef=N_INDEXED), exact.search(queries, 10, where=where))


def test_deleted_images_never_come_back(stores, vectors):
    ann, exact = stores
    victims = list(range(1, N_INDEXED + 1, 7))  # ids are 1..N
    ann.search(vectors[:1], 10)  # index built before the delete
    ann.write(removes=victims)
    for ef in (10, 32, N_INDEXED):
        found = {i for r in ann.search(vectors[np.array(victims) - 1], 10, ef=ef) for i, _ in r}
        assert not found & set(victims)
    _assert_same(ann.search(vectors[N_INDEXED:], 10, ef=N_INDEXED), exact.search(vectors[N_INDEXED:], 10))
    # Deleted through the *other* connection, and merged/persisted: still gone.
    more = list(range(2, N_INDEXED + 1, 5))
    exact.write(removes=more)
    ann.sync_index(persist=True)
    found = {i for r in ann.search(vectors[np.array(more) - 1], 10, ef=N_INDEXED) for i, _ in r}
    assert not found & set(more)


def test_updates_are_followed(stores, vectors):
    ann, exact = stores
    queries = vectors[N_INDEXED:]
    ann.search(queries[:1], 10)
    # Image 5 now shows what query 0 shows; its old vector must stop matching.
    rec = ann.get([5])[5]
    ann.write([Upsert(rec, queries[0])])
    top = ann.search(queries[:1], 1)[0][0]
    assert top[0] == 5 and top[1] == pytest.approx(1.0, abs=1e-5)
    old = ann.search(vectors[4:5], 10, ef=N_INDEXED)[0]
    assert all(s < 0.9999 for i, s in old if i == 5)
    _assert_same(ann.search(queries, 10, ef=N_INDEXED), exact.search(queries, 10))


def test_other_connection_writes_are_seen(stores, vectors):
    ann, exact = stores
    queries = vectors[N_INDEXED:]
    ann.search(queries, 10)
    # Another connection adds the query images themselves: each must now find its twin first.
    new_ids = exact.write(_records(queries, start=10_000))
    got = ann.search(queries, 10, ef=N_INDEXED)
    assert [r[0][0] for r in got] == new_ids
    _assert_same(got, exact.search(queries, 10))
    assert ann._ann is not None


def test_reopened_library_answers_identically(stores, vectors, tmp_path):
    ann, _ = stores
    queries = vectors[N_INDEXED:]
    ann.write(removes=[3, 4])
    ann.write(_records(vectors[N_INDEXED:N_INDEXED + 10], start=20_000))
    before = ann.search(queries, 10)
    ann.sync_index(persist=True)
    build = json.loads((tmp_path / INDEX_DIR / "manifest.json").read_text())["build"]
    ann.close()
    again = _open(tmp_path)
    assert again.search(queries, 10) == before
    # Loaded from the files, not rebuilt.
    assert again._ann is not None and again._ann.manifest.build == build
    again.close()


def test_corrupt_or_foreign_index_is_rebuilt(stores, vectors, tmp_path):
    ann, exact = stores
    queries = vectors[N_INDEXED:]
    ann.sync_index(persist=True)
    ann.close()
    manifest = tmp_path / INDEX_DIR / "manifest.json"
    data = json.loads(manifest.read_text())
    (tmp_path / INDEX_DIR / f"graph-{data['gen']}.faiss").write_bytes(b"not an index")
    again = _open(tmp_path)
    _assert_same(again.search(queries, 10, ef=N_INDEXED), exact.search(queries, 10))
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "log_id": "another-library"}))
    third = _open(tmp_path)
    _assert_same(third.search(queries, 10, ef=N_INDEXED), exact.search(queries, 10))
    assert json.loads(manifest.read_text())["log_id"] != "another-library"
    again.close()
    third.close()


def test_library_and_cli_ef(tmp_path, vectors):
    lib_dir, files = tmp_path / "lib", tmp_path / "fm"
    files.mkdir()
    for i in range(N_INDEXED):  # Library leaves out results whose files are gone: these exist
        (files / f"{i}.png").touch()
    with Library.open(lib_dir, store=_open(lib_dir)) as lib:
        lib.store.write(_records(vectors[:N_INDEXED], root=str(files)))
        assert lib.sync_index() is True
        exact = lib.search_vector(vectors[N_INDEXED], k=5, ef=N_INDEXED)
        assert [h.id for h in exact] == [i for i, _ in _open(lib_dir, 10**9).search(vectors[N_INDEXED:N_INDEXED + 1], 5)[0]]
        by_id = lib.search(7, k=5, ef=N_INDEXED)
        assert 7 not in [h.id for h in by_id]
    env = {**os.environ, "LOOKALIKE_ANN_THRESHOLD": str(THRESHOLD), "LOOKALIKE_ANN_PCA_DIM": "64",
           "LOOKALIKE_ANN_RERANK": "0"}
    out = subprocess.run([sys.executable, "-m", "lookalike", "search", "id:7", "--library", str(lib_dir), "-k", "5",
                          "--ef", str(N_INDEXED), "--json"], capture_output=True, text=True, env=env, check=True).stdout
    assert [r["id"] for r in json.loads(out)["results"]] == [h.id for h in by_id]
    bad = subprocess.run([sys.executable, "-m", "lookalike", "search", "id:7", "--library", str(lib_dir), "--ef", "0"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2


def test_default_parameters_build_the_index_and_keep_recall(tmp_path):
    """A fresh index is built with AnnParams' defaults (as docs/performance.md measured them)
    and keeps recall@10 >= 0.95 at the default ef on real features mixed with real neighbours."""
    from tests.support.vectors import exact_top_k, fashion_mnist_features, mixed, recall_at_k

    real = fashion_mnist_features(2_000)
    queries = fashion_mnist_features(100, split="t10k")
    partners = exact_top_k(real, real, 11)[:, 1:]  # mixes stay among each feature's neighbours
    data = np.concatenate([real, mixed(real, 6_000, seed=3, partners=partners)])
    defaults = AnnParams()
    store = EmbeddedStore(tmp_path, ann_threshold=1_000)  # the defaults, as a user gets them
    store.set_meta({"model": "effnet-lite0", "dim": "1280", "model_version": model_info("effnet-lite0").version})
    ids = store.write(_records(data))
    assert store.sync_index() is True
    manifest = json.loads((tmp_path / INDEX_DIR / "manifest.json").read_text())
    assert (manifest["pca_dim"], manifest["m"], manifest["ef_construction"], manifest["quant_bits"]) == \
        (defaults.pca_dim, defaults.m, defaults.ef_construction, defaults.quant_bits)
    graph = store._ann.graph  # type: ignore[union-attr]
    qtype = faiss.downcast_index(graph.storage).sq.qtype
    assert (graph.d, graph.hnsw.efConstruction, qtype) == \
        (defaults.pca_dim, defaults.ef_construction, getattr(faiss.ScalarQuantizer, ann_index.QUANTISERS[defaults.quant_bits]))
    truth = np.asarray(ids)[exact_top_k(data, queries, 10)]
    found = [[i for i, _ in r] for r in store.search(queries, 10)]
    assert recall_at_k(found, truth) >= 0.95
    store.close()


def test_rerank_pool_smaller_than_ef(tmp_path, vectors):
    """A re-rank pool below ef still returns exact scores, from fewer full-vector reads."""
    store = EmbeddedStore(tmp_path, ann_threshold=THRESHOLD, ann_params=replace(PARAMS, rerank=12))
    store.set_meta({"model": "effnet-lite0", "dim": "1280", "model_version": model_info("effnet-lite0").version})
    store.write(_records(vectors[:N_INDEXED]))
    queries = vectors[N_INDEXED:]
    got = store.search(queries, 10, ef=64)
    assert store._ann is not None and store._ann.rerank == 12
    for q, hits in zip(queries, got):
        assert len(hits) == 10
        np.testing.assert_allclose([s for _, s in hits], store.vectors([i for i, _ in hits]) @ q, atol=1e-5)
    exact_store = _open(tmp_path, threshold=10**9)
    exact = exact_store.search(queries, 10)
    assert np.mean([len({i for i, _ in a} & {i for i, _ in b}) / 10 for a, b in zip(got, exact)]) >= 0.9
    exact_store.close()
    store.close()
