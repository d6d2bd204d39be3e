"""What the suite counts as relevant: same label for the category and photos domains (the same
numbers `evaluate_rankings` gives), a height within the tolerance for the brain domain."""

from __future__ import annotations

import numpy as np
from PIL import Image

from lookalike.eval.domains import Domain
from lookalike.eval.metrics import average_precision, evaluate_rankings, rank_gallery


def _domain(gallery_labels, query_labels, query_index, tolerance=None) -> Domain:
    blank = Image.new("RGB", (4, 4))
    return Domain("d", "category", "test", [blank] * len(gallery_labels), np.asarray(gallery_labels),
                  np.asarray(query_labels), np.asarray(query_index), [None] * len(query_labels), tolerance=tolerance)


def test_label_domains_score_as_evaluate_rankings_does():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 60)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    q = np.arange(0, 60, 3)
    d = _domain(labels, labels[q], q)
    ranked = rank_gallery(vectors[q], vectors, 10, q)
    relevant = d.relevant(ranked)
    ours = np.mean([average_precision(r, n, 10) for r, n in zip(relevant, d.n_relevant())])
    theirs = evaluate_rankings(ranked, labels[q], labels, (1, 10), (10,), q)
    assert np.isclose(ours, theirs.map_at[10]) and np.isclose(relevant[:, 0].mean(), theirs.recall_at[1])
    assert (d.n_relevant() == np.array([(labels == labels[i]).sum() - 1 for i in q])).all()  # never itself


def test_position_domains_count_every_gallery_item_within_the_tolerance():
    heights = np.arange(-20.0, 21.0)  # a slice every mm
    d = _domain(heights, np.array([0.0, 18.0, 2.5]), np.full(3, -1), tolerance=5.0)
    assert d.n_relevant().tolist() == [11, 8, 10]  # 18 mm: only 13..20 exist; 2.5: -2..7
    ranked = np.array([[20, 25, 30], [40, 0, 33], [22, 28, 13]])  # heights 0, 5, 10 / 20, -20, 13 / 2, 8, -7
    assert d.relevant(ranked).tolist() == [[True, True, False], [True, False, True], [True, False, False]]
    same_label = _domain(heights, np.array([0.0]), np.full(1, -1))
    assert same_label.n_relevant().tolist() == [1]  # without a tolerance a height is a label
