"""alpha-QE and DBA math (engine/rerank.py) on small hand-made vectors, and the option's checks."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.engine.rerank import DEFAULT_RERANK, QueryExpansion, augment_database, check_rerank, expand_queries
from lookalike.errors import InvalidQuery


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, np.float32)
    return v / np.linalg.norm(v)


# The query, a close relevant image, a second relevant image close to the first but farther
# from the query, and a distractor that the query alone ranks above the second relevant one.
QUERY = unit(1, 0, 0)
RELEVANT_NEAR = unit(0.9, 0.436, 0)
RELEVANT_FAR = unit(0.5, 0.866, 0)
DISTRACTOR = unit(0.6, 0, 0.8)
GALLERY = np.stack([RELEVANT_NEAR, DISTRACTOR, RELEVANT_FAR])


def test_query_expansion_moves_a_relevant_image_above_a_distractor():
    sims = GALLERY @ QUERY
    assert list(np.argsort(-sims)) == [0, 1, 2]  # plain: near, distractor, far
    top = np.argsort(-sims)[:1]
    expanded = expand_queries(QUERY[None], GALLERY[top][None], sims[top][None], alpha=3.0)[0]
    assert np.isclose(np.linalg.norm(expanded), 1.0, atol=1e-6)
    assert list(np.argsort(-(GALLERY @ expanded))) == [0, 2, 1]  # the far relevant image now beats the distractor


def test_weights_follow_alpha_and_ignore_opposite_neighbours():
    sims = np.array([[0.9, -0.5]], np.float32)
    neighbours = np.stack([RELEVANT_NEAR, -QUERY])[None]
    for alpha in (0.0, 1.0, 3.0):
        got = expand_queries(QUERY[None], neighbours, sims, alpha)[0]
        want = QUERY + 0.9 ** alpha * RELEVANT_NEAR  # the negative-cosine neighbour adds nothing
        np.testing.assert_allclose(got, want / np.linalg.norm(want), atol=1e-6)
    # A large alpha leaves the query almost as it was when its neighbours are not very close.
    far = expand_queries(QUERY[None], RELEVANT_FAR[None, None], np.array([[0.5]], np.float32), 30.0)[0]
    assert far @ QUERY > 0.999999


def test_database_augmentation_mixes_each_row_with_its_nearest_other_rows():
    out = augment_database(GALLERY, k=1, alpha=1.0)
    assert out.shape == GALLERY.shape and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6)
    sims = GALLERY @ GALLERY.T
    np.fill_diagonal(sims, -np.inf)
    for i, j in enumerate(sims.argmax(axis=1)):  # itself (weight 1) plus its nearest other row
        want = GALLERY[i] + sims[i, j] * GALLERY[j]
        np.testing.assert_allclose(out[i], want / np.linalg.norm(want), atol=1e-6)
    np.testing.assert_array_equal(augment_database(GALLERY, k=0, alpha=3.0), GALLERY)
    # Chunked and unchunked agree; k larger than the gallery uses every other row.
    np.testing.assert_allclose(augment_database(GALLERY, 5, 3.0, chunk=1), augment_database(GALLERY, 2, 3.0), atol=1e-6)


def test_the_option_values():
    assert check_rerank("none") is None
    assert check_rerank(" QE ") == QueryExpansion()
    assert check_rerank(None) == check_rerank(DEFAULT_RERANK)
    for bad in ("qe2", "", "yes"):
        with pytest.raises(InvalidQuery, match=r"^--rerank: unknown value .* \(use one of: none, qe\)$"):
            check_rerank(bad, "--rerank")
