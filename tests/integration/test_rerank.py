"""Re-ranking by query expansion (`rerank`) end to end on a real library of Fashion-MNIST
product photos: the engine, the `lookalike search` command and the REST API on a real server.
Scores stay the cosine to the query; only which images make the top k may change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from lookalike import Library
from lookalike.api import create_app
from lookalike.errors import InvalidQuery
from tests.support.cli import run
from tests.support.server import BackgroundServer

K = 6


DUPLICATED = (0, 13, 27)  # products indexed twice (a copy under another name), as a real library has them


@pytest.fixture(scope="module")
def product_lib(products, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rerank")
    for i in DUPLICATED:
        src = products[i]["file"]
        shutil.copyfile(src, root / f"copy-of-{src.name}")
    with Library.open(root / "lib") as lib:
        report = lib.add([products[0]["file"].parent, root])
        assert report.added == len(products) + len(DUPLICATED) and report.failed == []
    return root / "lib"


def category(path: str) -> str:
    return Path(path).name.removeprefix("copy-of-").rsplit("-", 1)[0]


def test_scores_stay_the_cosine_and_only_the_set_changes(product_lib):
    with Library.open(product_lib, create=False) as lib:
        ids = [r.id for r in lib.records()]
        vectors = dict(zip(ids, lib.store.vectors(ids)))
        changed, precision = 0, {"qe": [], "none": []}
        for qid in ids:
            plain = lib.search(qid, k=K, rerank="none")
            expanded = lib.search(qid, k=K, rerank="qe")
            assert lib.search(qid, k=K) == expanded  # on by default
            assert len(plain) == len(expanded) == K and qid not in {h.id for h in expanded}
            scores = [h.score for h in expanded]
            assert scores == sorted(scores, reverse=True) and [h.rank for h in expanded] == list(range(1, K + 1))
            for h in expanded:
                assert h.score == pytest.approx(float(vectors[h.id] @ vectors[qid]), abs=1e-5)
                assert h.confidence is not None
            # The best match is the same image either way (the expansion starts from it).
            assert expanded[0].id == plain[0].id
            changed += {h.id for h in plain} != {h.id for h in expanded}
            mine = category(lib.get(qid).path)
            for mode, hits in (("qe", expanded), ("none", plain)):
                precision[mode].append(np.mean([category(h.path) == mine for h in hits[:3]]))
        assert changed > 0  # the option does something on real images
        print(f"\nprecision@3 over {len(ids)} queries: qe {np.mean(precision['qe']):.3f}, none {np.mean(precision['none']):.3f}; "
              f"{changed} result sets changed")


def test_the_best_match_is_kept_even_at_k_1(product_lib, products):
    """An upload of an indexed file finds that file first, as plain search does, even when
    the library holds it twice (the expanded query would rank either copy first)."""
    with Library.open(product_lib, create=False) as lib:
        for i in (*DUPLICATED, 5, 20):
            upload = products[i]["file"].read_bytes()
            best = lib.search(upload, k=1, rerank="none")[0]
            assert best.score > 0.9999 and category(best.path) == products[i]["category"]
            for k in (1, 2, K):
                hits = lib.search(upload, k=k, rerank="qe")
                assert (hits[0].id, hits[0].score) == (best.id, best.score) and len(hits) == k, (k, hits[0], best)


def test_filters_and_thresholds_hold_after_expansion(product_lib):
    with Library.open(product_lib, create=False) as lib:
        qid = lib.records()[0].id
        low = lib.search(qid, k=K, rerank="none")[-1].score
        kept = lib.search(qid, k=K, rerank="qe", min_score=low)
        assert kept and all(h.score >= low for h in kept)
        shoes = lib.search(qid, k=K, rerank="qe", where='name like "sandal%"')
        assert shoes and all(category(h.path) == "sandal" for h in shoes)
        with pytest.raises(InvalidQuery, match="rerank: unknown value 'deep'"):
            lib.search(qid, rerank="deep")


def test_cli_option(product_lib):
    with Library.open(product_lib, create=False) as lib:
        qid = lib.records()[5].id
        want = {mode: [h.id for h in lib.search(qid, k=K, rerank=mode)] for mode in ("qe", "none")}
    for mode in ("qe", "none"):
        proc = run("search", f"id:{qid}", "-l", product_lib, "-k", K, "--rerank", mode, "--json")
        assert proc.returncode == 0, proc.stderr.decode()
        assert [r["id"] for r in json.loads(proc.stdout)["results"]] == want[mode]
    bad = run("search", f"id:{qid}", "-l", product_lib, "--rerank", "deep")
    assert bad.returncode == 2 and b"--rerank: unknown value 'deep'" in bad.stderr and b"Traceback" not in bad.stderr
    assert b"--rerank" in run("search", "--help").stdout


def test_rest_option(product_lib, products):
    with Library.open(product_lib, create=False) as lib:
        qid = lib.records()[5].id
        want = {mode: [h.id for h in lib.search(qid, k=K, rerank=mode)] for mode in ("qe", "none")}
        upload = products[12]["file"].read_bytes()
        want_upload = [h.id for h in lib.search(upload, k=K, rerank="none")]
    with BackgroundServer(create_app(product_lib)) as url, httpx.Client(base_url=url, timeout=120) as client:
        for mode in ("qe", "none"):
            body = client.post("/api/search", json={"id": qid, "k": K, "rerank": mode}).json()
            assert [r["id"] for r in body["results"]] == want[mode], body
            similar = client.get(f"/api/images/{qid}/similar", params={"k": K, "rerank": mode}).json()
            assert [r["id"] for r in similar["results"]] == want[mode]
        form = client.post("/api/search", files={"file": ("q.png", upload, "image/png")}, data={"k": K, "rerank": "none"})
        assert [r["id"] for r in form.json()["results"]] == want_upload
        raw = client.post("/api/search", params={"k": K, "rerank": "qe"}, content=upload, headers={"content-type": "image/png"})
        assert len(raw.json()["results"]) == K
        for r in (client.post("/api/search", json={"id": qid, "rerank": "deep"}),
                  client.get(f"/api/images/{qid}/similar", params={"rerank": "deep"}),
                  client.post("/api/search", files={"file": ("q.png", upload, "image/png")}, data={"rerank": "deep"})):
            assert r.status_code == 422 and r.json()["detail"] == "rerank: unknown value 'deep' (use one of: none, qe)", r.text
