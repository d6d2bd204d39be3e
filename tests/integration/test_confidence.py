"""Calibrated confidence and the "no good match" verdict: the shipped curves, the engine,
the CLI. Real photos, real model, real library (the originals + their edits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike import Library
from lookalike.engine.confidence import GOOD, NONE
from lookalike.errors import InvalidQuery
from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist
from lookalike.models import model_info
from lookalike.models.calibrate import CURVES_DIR, load_calibration

BUNDLED = ("effnet-lite0", "effnet-lite2", "effnet-lite0-avg", "effnet-lite1")


@pytest.fixture(scope="module")
def gallery_lib(tmp_path_factory):
    from lookalike.demo.samples import build_gallery

    root = tmp_path_factory.mktemp("confidence")
    build_gallery(root / "gallery")
    with Library.open(root / "lib") as lib:
        lib.add([root / "gallery"])
    return root


def unrelated_queries() -> list[Image.Image]:
    """Pictures of things the photo gallery does not show: Fashion-MNIST products (or, without
    it, flat synthetic patterns)."""
    if fashion_mnist_available():
        data = load_fashion_mnist("test")
        return [Image.fromarray(data.pixels[i]).convert("RGB") for i in (0, 1, 2, 3, 5)]  # type: ignore[index]
    return [Image.new("RGB", (64, 64), c) for c in ("white", "black", "red")]


@pytest.mark.parametrize("model", BUNDLED)
def test_every_bundled_model_ships_a_monotone_curve_for_its_build(model):
    cal = load_calibration(model, model_info(model).version)
    assert cal is not None, f"no curve for {model} {model_info(model).version}: run python bench/suite.py --write-curves"
    assert list(cal.scores) == sorted(cal.scores) and list(cal.confidences) == sorted(cal.confidences)
    assert 0 <= cal.confidences[0] < 0.2 and cal.confidences[-1] > 0.8  # it separates something
    assert cal.confidence(-1.0) == cal.confidences[0] and cal.confidence(1.0) == cal.confidences[-1]


def test_a_curve_for_another_build_is_not_used(tmp_path):
    data = json.loads((CURVES_DIR / "effnet-lite0.json").read_text())
    (tmp_path / "effnet-lite0.json").write_text(json.dumps({**data, "version": "export-v0"}))
    assert load_calibration("effnet-lite0", model_info("effnet-lite0").version, tmp_path) is None
    assert load_calibration("effnet-lite0", "export-v0", tmp_path) is not None


def test_edits_of_a_photo_are_good_matches_and_unrelated_queries_are_not(gallery_lib, photos):
    with Library.open(gallery_lib / "lib", create=False) as lib:
        hits = lib.search(ImageOps.grayscale(photos["chelsea"]).convert("RGB"), k=10)
        assert all(h.confidence is not None and 0 <= h.confidence <= 1 for h in hits)
        conf = [h.confidence for h in hits]
        assert conf == sorted(conf, reverse=True)  # monotone in the score
        assert "chelsea" in hits[0].path and hits[0].confidence >= 0.8 and lib.verdict(hits) == GOOD
        assert hits[-1].confidence < 0.5  # the other photos are not the cat
        for query in unrelated_queries():
            best = lib.search(query, k=5)
            assert lib.verdict(best) == NONE, [(h.path, h.score, h.confidence) for h in best]


def test_min_confidence_keeps_only_confident_hits(gallery_lib):
    with Library.open(gallery_lib / "lib", create=False) as lib:
        all_hits = lib.search("id:1", k=20)
        kept = lib.search("id:1", k=20, min_confidence=0.5)
        assert kept == [h for h in all_hits if h.confidence >= 0.5] and 0 < len(kept) < len(all_hits)
        with pytest.raises(InvalidQuery, match="min_confidence"):
            lib.search("id:1", min_confidence=1.5)


def test_a_model_without_a_curve_has_no_confidence_and_refuses_min_confidence(tmp_path, originals_dir):
    pytest.importorskip("skimage")
    with Library.open(tmp_path / "lib", model="color-hist") as lib:
        lib.add([originals_dir])
        hits = lib.search("id:1", k=3)
        assert [h.confidence for h in hits] == [None] * 3 and lib.verdict(hits) is None
        with pytest.raises(InvalidQuery, match="no confidence curve"):
            lib.search("id:1", k=3, min_confidence=0.5)


def run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lookalike", *map(str, args)], capture_output=True, text=True, **kw)


def test_cli_json_and_table_say_no_good_match(gallery_lib, tmp_path):
    query = tmp_path / "unrelated.png"
    unrelated_queries()[0].resize((112, 112)).save(query)
    data = json.loads(run("search", query, "-l", gallery_lib / "lib", "--json", "-k", "5").stdout)
    assert data["verdict"] == NONE and data["good_match"] == 0.5
    assert all(0 <= r["confidence"] < 0.5 for r in data["results"])
    table = run("search", query, "-l", gallery_lib / "lib", "-k", "5", env={**os.environ, "COLUMNS": "200"})
    assert table.returncode == 0 and "no good match" in table.stdout and "confidence" in table.stdout
    good = json.loads(run("search", "id:1", "-l", gallery_lib / "lib", "--json", "--min-confidence", "0.5").stdout)
    assert good["verdict"] == GOOD and all(r["confidence"] >= 0.5 for r in good["results"])
    bad = run("search", "id:1", "-l", gallery_lib / "lib", "--min-confidence", "2")
    assert bad.returncode != 0 and "--min-confidence" in bad.stderr and "Traceback" not in bad.stderr


def test_confidence_is_the_curve_at_the_score(gallery_lib):
    with Library.open(gallery_lib / "lib", create=False) as lib:
        cal = lib.calibration
        for h in lib.search("id:3", k=10):
            assert h.confidence == pytest.approx(float(np.clip(np.interp(h.score, cal.scores, cal.confidences), 0, 1)), abs=1e-4)
