"""`lookalike eval`: new metrics by hand, the image edits, the harness against an independent
computation, and a quick CLI run producing the report."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lookalike.demo.samples import save_jpeg, variants
from lookalike.eval.datasets import fashion_mnist_available, load_folder_dataset
from lookalike.eval.harness import EvalConfig, fit_pca_whitening, run_eval
from lookalike.eval.metrics import evaluate_embeddings, near_duplicate_recall, precision_recall_curve
from lookalike.eval.robustness import TRANSFORMS, make_queries
from lookalike.models import get_extractor


def test_precision_recall_curve_by_hand():
    gallery_labels = np.array([0, 0, 1, 1])
    # query 0 (class 0): relevant at ranks 2 and 4 -> precision 1/2 at recall .5, 2/4 at recall 1
    # query 1 (class 1): relevant at ranks 1 and 2 -> precision 1 everywhere
    ranked = np.array([[2, 0, 3, 1], [2, 3, 0, 1]])
    curve = precision_recall_curve(ranked, np.array([0, 1]), gallery_labels, levels=np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(curve, [(0.5 + 1) / 2, (0.5 + 1) / 2, (0.5 + 1) / 2])
    # Interpolation: relevant at ranks 3 and 4 -> precision 1/3 at recall .5 but 2/4 later -> 0.5 for both.
    curve = precision_recall_curve(np.array([[2, 3, 0, 1]]), np.array([0]), gallery_labels, levels=np.array([0.5, 1.0]))
    np.testing.assert_allclose(curve, [0.5, 0.5])


def test_precision_recall_curve_excludes_the_query():
    # The query is gallery item 0 (class 0); the one other class-0 item comes second.
    curve = precision_recall_curve(np.array([[2, 1, 3]]), np.array([0]), np.array([0, 0, 1, 1]),
                                   exclude=np.array([0]), levels=np.array([1.0]))
    np.testing.assert_allclose(curve, [0.5])


def test_near_duplicate_recall_by_hand():
    ranked = np.array([[4, 1, 2], [0, 3, 4], [1, 2, 0]])
    assert near_duplicate_recall(ranked, np.array([4, 4, 9]), ks=(1, 2, 3)) == {
        1: pytest.approx(1 / 3), 2: pytest.approx(1 / 3), 3: pytest.approx(2 / 3)}


def test_transforms(photos):
    im = photos["chelsea"]
    w, h = im.size
    q = make_queries([im], np.array([0]), ["photos"], seed=0)
    edited = {name: q.images[name][0] for name in TRANSFORMS}
    assert len(TRANSFORMS) == 12 and all(e.mode == "RGB" for e in edited.values())
    assert edited["crop 60%"].size == (round(w * 0.6), round(h * 0.6))
    assert edited["downscale 25%"].size == (round(w / 4), round(h / 4))
    assert edited["rotate 90°"].size == (h, w)
    grey = (np.asarray(edited["occlude 25%"]) == 128).all(axis=2).mean()
    assert grey == pytest.approx(0.25, abs=0.02)
    g = np.asarray(edited["grayscale"]).astype(int)
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    assert np.array_equal(np.asarray(edited["horizontal flip"]), np.asarray(im)[:, ::-1])
    assert np.asarray(edited["brightness ×0.5"]).mean() < np.asarray(im).mean() < np.asarray(edited["brightness ×1.5"]).mean()
    # Seeded: the same occlusion again.
    again = make_queries([im], np.array([0]), ["photos"], seed=0).images["occlude 25%"][0]
    assert np.array_equal(np.asarray(again), np.asarray(edited["occlude 25%"]))


def test_pca_whitening_shape_and_norm():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 40)) * np.linspace(5, 0.1, 40)
    project = fit_pca_whitening(train, 16)
    out = project(rng.normal(size=(7, 40)))
    assert out.shape == (7, 16)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory, photos):
    """Class = one bundled photo; images = the photo and its six edits."""
    root = tmp_path_factory.mktemp("classes")
    for name, photo in photos.items():
        save_jpeg(photo, root / name / "original.jpg")
        for kind, im in variants(photo).items():
            save_jpeg(im, root / name / f"{kind}.jpg")
    return root


def test_harness_matches_an_independent_computation(folder_dataset):
    result = run_eval(EvalConfig(str(folder_dataset), ["color-hist", "texture"], n_queries=30, seed=3))
    data = load_folder_dataset(folder_dataset)
    assert len(result.gallery) == len(data) == 7 * len(data.class_names)
    q = result.query_indices
    assert len(q) == 30 and len(set(q.tolist())) == 30
    for m in result.methods:
        ext = get_extractor(m.name)
        from lookalike.imaging import load_image

        vecs = ext.embed([load_image(p, ext.draft_size) for p in data.paths])
        ref = evaluate_embeddings(vecs[q], data.labels[q], vecs, data.labels, exclude=q, map_ks=(10, 100), full=True)
        assert m.metrics.map_full == pytest.approx(ref.map_full)
        assert m.metrics.map_at[10] == pytest.approx(ref.map_at[10])
        assert m.metrics.recall_at == pytest.approx(ref.recall_at)
        assert 0 < m.metrics.map_full <= 1 and len(m.pr_curve) == 11


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lookalike", *args], capture_output=True, text=True, timeout=600)


def test_eval_cli_bad_input(tmp_path, folder_dataset):
    for args, needle in [(["no-such-dataset"], "neither"),
                         ([str(folder_dataset), "--methods", "color-hist,nope"], "unknown model"),
                         ([str(folder_dataset), "--methods", "color-hist", "--whiten", "128"], "fashion-mnist"),
                         ([str(folder_dataset), "--methods", "color-hist", "--whiten", "x"], "integers")]:
        r = _cli("eval", *args, "--out", str(tmp_path / "out"))
        assert r.returncode == 1 and needle in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert _cli("eval", "--help").returncode == 0


@pytest.mark.skipif(not fashion_mnist_available(), reason="Debian package dataset-fashion-mnist not installed")
def test_quick_eval_run_writes_the_report(tmp_path):
    out = tmp_path / "report"
    r = _cli("eval", "fashion-mnist", "--limit", "100", "--queries", "30", "--robustness", "--robustness-queries", "4",
             "--methods", "effnet-lite0,color-hist,texture,sift-vlad", "--out", str(out))
    assert r.returncode == 0, r.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["gallery_size"] == 100 and results["n_queries"] == 30
    assert [m["name"] for m in results["methods"]] == ["effnet-lite0", "color-hist", "texture", "sift-vlad"]
    for m in results["methods"]:
        assert 0 <= m["map_at"]["100"] <= 1 and 0 <= m["map"] <= 1 and m["images_per_second"] > 0
        # Per-class AP covers the classes the 30 queries happen to come from.
        # (recall@100 needs more than 100 other gallery images, so it is absent here)
        assert set(m["recall_at"]) == {"1", "5", "10"} and set(m["per_class_ap"]) <= {str(c) for c in range(10)}
        assert len(m["per_class_ap"]) >= 5
    rob = results["robustness"]
    assert len(rob["transforms"]) == 12 and rob["n_queries"] == {"photos": 14, "dataset": 4}
    # Sanity that can fail: the unedited flip of a photo is not harder for the flip-invariant colour histogram.
    assert rob["recall"]["color-hist"]["horizontal flip"]["photos"]["1"] == 1.0
    report = (out / "report.md").read_text()
    assert "| effnet-lite0 |" in report and "occlude 25%" in report
    for png in ("map_by_method.png", "precision_recall.png", "example_queries.png", "robustness.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 300_000
        assert Image.open(out / png).size[0] > 100


def test_suite_cli_prints_changes_with_intervals(tmp_path):
    pytest.importorskip("sklearn")  # the digits domain
    out = tmp_path / "suite"
    r = _cli("eval", "suite", "--domains", "digits", "--methods", "effnet-lite0,effnet-lite0+qe", "--out", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "suite.json").read_text())
    change, low, high = report["change_vs_baseline"]["methods"]["effnet-lite0+qe"]["digits"]
    plain, qe = (report["methods"][m]["digits"]["map10"] for m in ("effnet-lite0", "effnet-lite0+qe"))
    assert change == pytest.approx(100 * (qe - plain), abs=0.06)
    assert low <= change <= high and report["change_vs_baseline"]["baseline"] == "effnet-lite0"
    # one line per table row, however wide: the interval table's heading is not wrapped
    assert "95 % paired bootstrap interval over the queries" in r.stdout
    assert f"| effnet-lite0+qe | {change:+.1f} [{low:+.1f}, {high:+.1f}]" in r.stdout
