"""Retrieval metrics against small cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.eval.datasets import FASHION_CLASSES, fashion_mnist_available, load_fashion_mnist, load_folder_dataset
from lookalike.eval.metrics import average_precision, evaluate_embeddings, evaluate_rankings, paired_change_interval, rank_gallery


def test_average_precision_by_hand():
    # relevant at ranks 1, 3 and 6 of 3 relevant: (1/1 + 2/3 + 3/6) / 3
    rel = np.array([1, 0, 1, 0, 0, 1], bool)
    assert average_precision(rel, 3) == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    # AP@4: ranks 1 and 3 seen, divided by min(4, 3) = 3
    assert average_precision(rel, 3, k=4) == pytest.approx((1 + 2 / 3) / 3)
    # AP@2 with 3 relevant: only rank 1, divided by min(2, 3) = 2
    assert average_precision(rel, 3, k=2) == pytest.approx(0.5)
    assert average_precision(np.zeros(5, bool), 0) == 0.0
    assert average_precision(np.ones(3, bool), 3) == 1.0


def test_evaluate_rankings_by_hand():
    gallery_labels = np.array([0, 0, 1, 1, 1])
    query_labels = np.array([0, 1])
    ranked = np.array([[2, 0, 3, 1, 4],   # query 0: relevant at ranks 2 and 4 -> AP (1/2 + 2/4) / 2 = 0.5
                       [2, 3, 4, 0, 1]])  # query 1: perfect -> AP 1
    r = evaluate_rankings(ranked, query_labels, gallery_labels, ks=(1, 2), map_ks=(2,), full=True)
    assert r.map_full == pytest.approx(0.75)
    assert r.recall_at == {1: 0.5, 2: 1.0}
    assert r.precision_at[1] == 0.5 and r.precision_at[2] == pytest.approx(0.75)
    # AP@2: q0 -> (1/2) / 2 = 0.25, q1 -> 1 -> mean 0.625
    assert r.map_at[2] == pytest.approx(0.625)
    assert r.per_class_ap == {0: pytest.approx(0.25), 1: pytest.approx(1.0)}


def test_rank_gallery_excludes_the_query_itself():
    g = np.eye(4, dtype=np.float32)
    g[1] = np.array([0.9, 0.1, 0, 0]) / np.linalg.norm([0.9, 0.1])
    ranked = rank_gallery(g[:2], g, k=2, exclude=np.array([0, 1]))
    assert ranked[0, 0] == 1 and 0 not in ranked[0] and 1 not in ranked[1]
    r = evaluate_embeddings(g[:2], np.array([0, 0]), g, np.array([0, 0, 1, 1]), exclude=np.array([0, 1]),
                            ks=(1,), map_ks=(3,), full=True)
    assert r.recall_at[1] == 1.0 and r.map_full == 1.0


@pytest.mark.skipif(not fashion_mnist_available(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_loads():
    test = load_fashion_mnist("test")
    assert len(test) == 10_000 and test.pixels.shape == (10_000, 28, 28)
    assert np.bincount(test.labels).tolist() == [1000] * 10 and len(FASHION_CLASSES) == 10
    assert test.image(0).mode == "RGB" and test.image(0).size == (28, 28)


def test_folder_dataset(tmp_path, photos):
    from lookalike.demo.samples import save_jpeg

    save_jpeg(photos["chelsea"], tmp_path / "cats" / "a.jpg")
    save_jpeg(photos["coffee"], tmp_path / "cups" / "x" / "b.jpg")
    ds = load_folder_dataset(tmp_path)
    assert ds.class_names == ["cats", "cups"] and ds.labels.tolist() == [0, 1]
    assert ds.image(1).size == photos["coffee"].size


def test_excluded_query_never_counts_even_in_tiny_galleries():
    # gallery of 3, k=100 >= gallery size: the query itself must not be ranked (or counted)
    g = np.eye(3, dtype=np.float32)
    r = evaluate_embeddings(g, np.array([0, 0, 1]), g, np.array([0, 0, 1]), exclude=np.arange(3), ks=(1,), map_ks=(100,))
    ranked = rank_gallery(g, g, 100, exclude=np.arange(3))
    assert ranked.shape == (3, 2) and all(i not in row for i, row in enumerate(ranked))
    assert 0.0 <= r.map_at[100] <= 1.0


def test_paired_change_interval_reads_noise_as_noise_and_a_shift_as_real():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 150)
    # the same scores: no change, a zero-width interval
    assert paired_change_interval([(a, a)]) == (0.0, 0.0, 0.0)
    # every query 0.05 better: exactly +0.05, whatever the resampling
    change, low, high = paired_change_interval([(a, a + 0.05)])
    assert change == pytest.approx(0.05) and low == pytest.approx(0.05) and high == pytest.approx(0.05)
    # zero-mean noise per query: the interval spans zero; a real shift under the same noise does not
    noise = rng.normal(0, 0.1, 150)
    noise -= noise.mean()
    change, low, high = paired_change_interval([(a, a + noise)])
    assert abs(change) < 1e-12 and low < 0 < high
    change, low, high = paired_change_interval([(a, a + noise + 0.05)])
    assert 0 < low < change < high
    # several domains: the mean of the per-domain changes (not pooled over queries)
    change, low, high = paired_change_interval([(a, a + 0.1), (a[:10], a[:10])])
    assert change == pytest.approx(0.05) and low == pytest.approx(0.05)
    for bad in ([], [(a, a[:-1])], [(a[:0], a[:0])]):  # no domains, unpaired queries, no queries
        with pytest.raises(ValueError, match="same queries"):
            paired_change_interval(bad)
