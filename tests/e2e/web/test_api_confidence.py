"""REST: `confidence` on every result, the `verdict`, `min_confidence`; through a real server
over the real gallery library. Expected answers come from the engine."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def unrelated() -> Image.Image:
    if fashion_mnist_available():
        return Image.fromarray(load_fashion_mnist("test").pixels[1]).convert("RGB").resize((112, 112))  # type: ignore[index]
    return Image.new("RGB", (64, 64), "white")


def test_confidence_and_verdict_match_the_engine(client, lib, photos):
    query = png(ImageOps.grayscale(photos["coffee"]).convert("RGB"))
    data = client.post("/api/search", params={"k": 8}, files={"file": ("q.png", query, "image/png")}).json()
    expected = lib.search(query, k=8)
    assert [(r["id"], r["confidence"]) for r in data["results"]] == [(h.id, h.confidence) for h in expected]
    assert data["verdict"] == "good match" and data["good_match"] == lib.calibration.good_match

    none = client.post("/api/search", files={"file": ("u.png", png(unrelated()), "image/png")}).json()
    assert none["verdict"] == "no good match" and max(r["confidence"] for r in none["results"]) < none["good_match"]


def test_min_confidence_everywhere(client, lib):
    first = lib.records(0, 1)[0].id
    all_hits = client.get(f"/api/images/{first}/similar", params={"k": 24}).json()["results"]
    kept = client.get(f"/api/images/{first}/similar", params={"k": 24, "min_confidence": 0.5}).json()["results"]
    assert kept == [r for r in all_hits if r["confidence"] >= 0.5] and 0 < len(kept) < len(all_hits)
    body = client.post("/api/search", json={"id": first, "k": 24, "min_confidence": 0.5}).json()
    assert [r["id"] for r in body["results"]] == [r["id"] for r in kept]
    for bad in ("2", "-0.1", "nan"):
        r = client.get(f"/api/images/{first}/similar", params={"min_confidence": bad})
        assert r.status_code == 422, (bad, r.text)
    words = client.get("/api/search", params={"q": "cat", "min_confidence": 0.3}).json()
    assert words["verdict"] is None and all(r["confidence"] == r["score"] >= 0.3 for r in words["results"])
    assert np.all(np.diff([r["score"] for r in words["results"]]) <= 0)
