"""The development suite's parts on small real samples: domains from installed packages,
per-domain metrics, method options, and the confidence curve fitted on the pairs."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidQuery, NotFound
from lookalike.eval import domains
from lookalike.eval.calibration import fit_curve
from lookalike.eval.suite import PAIR_DEPTH, SuiteResult, change_intervals, intervals_table, parse_method, run_domain
from lookalike.models import get_extractor


@pytest.fixture(scope="module")
def small():
    pytest.importorskip("sklearn")
    out = [domains.digits(size=120, n_queries=30)]
    if domains.ICON_THEME.is_dir():
        out.append(domains.icons(per_class=8, n_queries=30))
    return out


def test_domains_are_labelled_real_collections(small):
    for d in small:
        assert d.task == "category" and len(d.gallery) == len(d.gallery_labels) >= 60
        assert len(np.unique(d.gallery_labels)) >= 5 and (d.query_index >= 0).all()
        assert d.gallery[0].mode == "RGB"


def test_deep_features_beat_chance_and_pairs_follow_the_ranking(small):
    ext = get_extractor("effnet-lite0")
    for d in small:
        cell, (scores, relevant), (queries, gallery) = run_domain(ext, [], d)
        chance = float(np.mean([(d.gallery_labels == c).mean() for c in d.query_labels]))
        # Icons are the hard domain (mAP@10 about 0.3 on the full suite): a smaller margin there.
        assert cell.map10 > chance + {"digits": 0.3, "icons": 0.05}[d.name], (d.name, cell.map10, chance)
        assert 0 <= cell.recall1 <= 1 and cell.query_ms > 0
        assert scores.shape == relevant.shape == (len(d.query_labels), PAIR_DEPTH)
        assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
        assert queries.shape[1] == gallery.shape[1] == ext.dim


def test_options_flip_and_pca(small):
    ext = get_extractor("effnet-lite0")
    d = small[0]
    _, _, (_, gallery) = run_domain(ext, ["pca32"], d)
    assert gallery.shape[1] == 32 and np.allclose(np.linalg.norm(gallery, axis=1), 1, atol=1e-4)
    assert parse_method("effnet-lite0+flip+pca64") == ("effnet-lite0", ["flip", "pca64"])
    with pytest.raises(InvalidQuery, match="feature option"):
        parse_method("effnet-lite0+sharpen")
    with pytest.raises(InvalidQuery, match="unknown model"):
        parse_method("no-such-model+flip")


def test_rerank_options_keep_scores_the_cosine_to_the_query(small):
    ext = get_extractor("effnet-lite0")
    d = small[0]
    plain, (plain_scores, _), _ = run_domain(ext, [], d)
    for option in ("qe", "dba"):
        cell, (scores, relevant), _ = run_domain(ext, [option], d)
        assert (np.diff(scores, axis=1) <= 1e-6).all() and relevant.shape == (len(d.query_labels), PAIR_DEPTH)
        assert abs(cell.map10 - plain.map10) < 0.2 and parse_method(f"effnet-lite0+{option}")[1] == [option]
    # qe: the same first result and its cosine, some other results found instead.
    _, (qe_scores, _), _ = run_domain(ext, ["qe"], d)
    np.testing.assert_allclose(qe_scores[:, 0], plain_scores[:, 0], atol=1e-5)
    assert not np.allclose(qe_scores, plain_scores)


def test_the_fitted_curve_is_monotone_and_separates(small):
    ext = get_extractor("effnet-lite0")
    pairs = {d.name: tuple(a.ravel() for a in run_domain(ext, [], d)[1]) for d in small}
    curve = fit_curve(pairs, "effnet-lite0", "test")  # type: ignore[arg-type]
    assert list(curve.confidences) == sorted(curve.confidences) and list(curve.scores) == sorted(curve.scores)
    scores = np.concatenate([s for s, _ in pairs.values()])
    rel = np.concatenate([r for _, r in pairs.values()])
    conf = curve.confidence(scores)
    assert conf[rel].mean() > conf[~rel].mean() + 0.2


def test_cli_eval_suite_prints_one_table_and_writes_json(tmp_path):
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "lookalike", "eval", "suite", "--domains", "digits", "--methods",
                           "effnet-lite0", "--out", tmp_path], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "| method | digits mAP@10 | digits ms | mean mAP@10 |" in proc.stdout and "| effnet-lite0 |" in proc.stdout
    data = json.loads((tmp_path / "suite.json").read_text())
    assert 0.5 < data["methods"]["effnet-lite0"]["digits"]["map10"] <= 1
    bad = subprocess.run([sys.executable, "-m", "lookalike", "eval", "suite", "--domains", "flags"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown suite domain 'flags'" in bad.stderr and "Traceback" not in bad.stderr


def test_brain_domain_scores_slice_heights_within_5_mm():
    pytest.importorskip("nilearn")
    from tests.support.medical import need_mricron

    need_mricron()
    d = domains.brain()
    assert d.tolerance == 5.0 and (d.query_index == -1).all() and len(d.query_labels) > 100
    assert (d.n_relevant() >= 6).all()  # every query height has slices within 5 mm
    cell, (scores, relevant), _ = run_domain(get_extractor("effnet-lite0"), [], d)
    chance = float(np.mean(d.n_relevant() / len(d.gallery)))
    assert cell.map10 > 2 * chance and cell.recall1 > 3 * chance, (cell, chance)
    assert relevant.shape == (len(d.query_labels), PAIR_DEPTH)


def test_brain_is_skipped_with_a_note_when_its_data_is_missing_unless_asked_for(tmp_path, monkeypatch):
    from lookalike.eval import brain_slices

    monkeypatch.setattr(brain_slices, "CH2", tmp_path / "ch2.nii.gz")
    monkeypatch.setattr(domains, "DOMAINS", {"brain": domains.brain})
    notes: list[str] = []
    assert domains.load_domains(None, note=notes.append) == []
    assert notes == [f"skipping the brain domain: {tmp_path / 'ch2.nii.gz'} is missing: apt-get install mricron-data"]
    with pytest.raises(NotFound, match="apt-get install mricron-data"):
        domains.load_domains(["brain"])


def test_changes_against_a_baseline_come_with_paired_intervals(small):
    ext = get_extractor("effnet-lite0")
    result = SuiteResult(small, ["plain", "same", "qe"])
    for method, options in (("plain", []), ("same", []), ("qe", ["qe"])):
        result.cells[method] = {d.name: run_domain(ext, options, d)[0] for d in small}
    for d in small:  # one AP per query, each in [0, 1]
        aps = result.cells["qe"][d.name].aps
        assert len(aps) == len(d.query_labels) and ((0 <= aps) & (aps <= 1)).all()
    changes = change_intervals(result, "plain")
    assert set(changes) == {"same", "qe"} and list(changes["qe"]) == [d.name for d in small] + ["mean"]
    assert all(v == [0.0, 0.0, 0.0] for v in changes["same"].values())  # the same rankings: no change at all
    for d in small:
        change, low, high = changes["qe"][d.name]
        assert change == pytest.approx(100 * (result.cells["qe"][d.name].map10 - result.cells["plain"][d.name].map10), abs=0.06)
        assert low <= change <= high
    table = intervals_table(result, "plain")
    assert "| qe |" in table and "mean |" in table and "plain |" not in table
