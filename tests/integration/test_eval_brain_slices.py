"""`lookalike eval brain-slices` on the real templates: the deep model places a slice of one
brain at the right height of another better than plain pixels; the report is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.support.medical import need_mricron

pytest.importorskip("nilearn")


def test_slices_are_cropped_and_share_heights():
    need_mricron()
    from lookalike.eval.brain_slices import load_slices

    queries, gallery = load_slices()
    assert len(queries.images) > 100 and len(gallery.images) > 100
    assert queries.heights.min() >= gallery.heights.min() and queries.heights.max() <= gallery.heights.max()
    assert np.all(np.diff(gallery.heights) > 0)
    middle = np.asarray(queries.images[len(queries.images) // 2])
    assert middle.shape[0] < 217 and middle.shape[1] < 181  # cropped to the head, not the frame


def test_rendered_slices_are_cached_and_read_back_the_same(tmp_path, monkeypatch):
    need_mricron()
    from lookalike.eval import brain_slices

    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path))
    first = brain_slices.load_slices()
    [cached] = (tmp_path / "eval").glob("brain-slices-*.npz")
    second = brain_slices.load_slices()
    for a, b in zip(first, second):
        assert (a.heights == b.heights).all() and len(a.images) == len(b.images)
        assert all((np.asarray(x) == np.asarray(y)).all() and y.mode == "RGB" for x, y in zip(a.images, b.images))
    cached.write_bytes(b"torn")  # a damaged cache file is rendered again, not an error
    assert len(brain_slices.load_slices()[0].images) == len(first[0].images)


def test_eval_brain_slices_cli(tmp_path):
    need_mricron()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    run = subprocess.run([sys.executable, "-m", "lookalike", "eval", "brain-slices", "--methods", "effnet-lite0,texture",
                          "--out", str(tmp_path / "report")], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "median height error" in run.stdout
    result = json.loads((tmp_path / "report" / "brain-slices.json").read_text())
    by_name = {m["name"]: m for m in result["methods"]}
    assert set(by_name) == {"effnet-lite0", "texture", "pixels"}
    deep, pixels = by_name["effnet-lite0"], by_name["pixels"]
    assert deep["median_error_mm"] < pixels["median_error_mm"] and deep["recall_5mm"] > pixels["recall_5mm"]
    assert deep["median_error_mm"] < 15 and deep["spearman"] > 0.7
    assert {a["aggregate"] for a in result["series_aggregates"]} == {"mean-max", "vote", "max"}
    if result["compression"]:
        assert result["compression"][0]["top1"] == 1.0
