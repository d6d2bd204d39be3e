"""Two processes on one library: a live `lookalike serve` keeps answering searches while a
separate `lookalike index` process adds images to the same library. Every answer is a 200
(or a 503 "library is busy", never another error) whose hits are consistent with the
library at some committed state; once the indexer is done the new images are found; the
library is intact (one entry per file, vectors equal to fresh embeddings)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import numpy as np
from PIL import ImageOps

from lookalike import Library
from lookalike.demo.samples import build_gallery
from tests.support.server import free_port, start_serve_process
from tests.support.web import jpeg

K = 8


def test_server_answers_correctly_while_another_process_indexes(tmp_path, photos):
    groups = build_gallery(tmp_path / "g")
    originals, variants = tmp_path / "g" / "photos", tmp_path / "g" / "variants"
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir) as lib:
        assert lib.add([originals]).failed == []
        before_ids = {r.id for r in lib.records()}
        # queries: unseen greyscale edits (their variants will join the results), and two
        # variant files themselves (found only once indexed: score 1.0)
        names = ["chelsea", "coffee", "rocket"]
        queries = [jpeg(ImageOps.grayscale(photos[n])) for n in names] + [groups[n][1].read_bytes() for n in names[:2]]
        qvecs = lib.embed(queries)
        ranking_before = [[(h.id, h.score) for h in lib.search_vector(v, k=len(before_ids))] for v in qvecs]

    port = free_port()
    server = start_serve_process(lib_dir, port, timeout_s=90)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    statuses: dict[int, int] = {}
    during = 0
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            indexer = subprocess.Popen([sys.executable, "-m", "lookalike", "index", str(variants), "--library", str(lib_dir),
                                        "--batch-size", "8"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            answers: list[tuple[int, list[tuple[int, float]]]] = []
            n = 0
            while True:
                running = indexer.poll() is None
                q = n % len(queries)
                r = client.post("/api/search", params={"k": K, "rerank": "none"}, files={"file": ("q.jpg", queries[q], "image/jpeg")})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 503:
                    assert "busy" in r.json()["detail"]
                else:
                    assert r.status_code == 200, r.text
                    answers.append((q, [(h["id"], h["score"]) for h in r.json()["results"]]))
                during += running
                n += 1
                if not running:
                    break
            _, err = indexer.communicate(timeout=120)
            assert indexer.returncode == 0, err.decode()[-2000:]
            assert during >= 5, "the indexer finished before the server was asked anything"

            with Library.open(lib_dir, create=False) as lib:
                records = lib.records()
                files = sorted(str(p) for p in originals.iterdir()) + sorted(str(p) for p in variants.rglob("*.jpg"))
                assert sorted(r.path for r in records) == sorted(files)  # one entry per file, nothing lost
                ids = [r.id for r in records]
                stored = dict(zip(ids, lib.store.vectors(ids)))
                fresh = lib.embed([r.path for r in records])
                assert all(np.allclose(stored[r.id], f, atol=1e-4) for r, f in zip(records, fresh))
                # every answer given while indexing: scores are the true cosines, best first, and
                # the already-indexed images among the hits are exactly the best of them (the
                # same image at each rank, or one scoring the same to float32 rounding: the two
                # processes embed the query on different thread counts)
                for q, hits in answers:
                    scores = [s for _, s in hits]
                    assert scores == sorted(scores, reverse=True)
                    assert all(abs(float(stored[i] @ qvecs[q]) - s) < 1e-4 for i, s in hits)
                    old = [(i, s) for i, s in hits if i in before_ids]
                    assert all(i == j or abs(s - t) < 1e-4 for (i, s), (j, t) in zip(old, ranking_before[q])), (old, ranking_before[q])
                # afterwards: the new images are found, exactly as the engine finds them
                for q, query in enumerate(queries):
                    r = client.post("/api/search", params={"k": K, "rerank": "none"}, files={"file": ("q.jpg", query, "image/jpeg")})
                    served = r.json()["results"]
                    local = lib.search(query, k=K, rerank="none")
                    # the same images in the same order (or, at a near-tie, either of two); the two
                    # processes may embed the query on different thread counts, so scores agree to
                    # float32 rounding, not bits
                    local_score = {m.id: m.score for m in local}
                    assert len(served) == len(local) and all(
                        h["id"] == m.id or abs(local_score.get(h["id"], -9) - m.score) < 1e-4 for h, m in zip(served, local))
                    assert all(abs(h["score"] - m.score) < 1e-4 for h, m in zip(served, local))
                    if q >= 3:
                        assert served[0]["path"] == str(groups[names[q - 3]][1])
            assert client.get("/healthz").json() == {"status": "ok", "images": len(files)}
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\n{during} searches while indexing, {sum(statuses.values())} in all; statuses {statuses}")
