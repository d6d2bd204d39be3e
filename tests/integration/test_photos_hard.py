"""The photos-hard domain of the suite: real photos from installed packages under harsh edits,
cached so a second load reads the same images back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.config import cache_dir
from lookalike.eval import domains
from lookalike.eval.hard_edits import HARD_EDITS

pytestmark = pytest.mark.skipif(not domains.photos_hard_available(),
                                reason="needs Debian mate-backgrounds, palapeli-data, plasma-workspace-wallpapers")


def test_photos_hard_is_labelled_cached_and_hard_to_see():
    d = domains.photos_hard()
    n = int((d.gallery_labels >= 0).sum())
    assert d.task == "instance" and n >= 25 and len(d.gallery) > 20 * n
    assert len(d.query_labels) == n * len(HARD_EDITS) and (d.query_index == -1).all()
    assert sorted(set(d.query_labels.tolist())) == list(range(n))  # every original is asked for under every edit
    assert len(set(d.gallery_labels[n:].tolist())) == len(d.gallery) - n  # distractors: each its own label
    assert all(im.mode == "RGB" and max(im.size) <= domains.HARD_SIDE for im in d.gallery[:n])
    # The edits change the picture a lot: a query is never its original at another size.
    for i in range(0, len(d.query_labels), 37):
        original = d.gallery[int(d.query_labels[i])]
        query = d.query_image(i).resize(original.size, Image.Resampling.BILINEAR)
        diff = np.abs(np.asarray(query, np.float32) - np.asarray(original, np.float32)).mean()
        assert diff > 10, (i, diff)
    assert list(cache_dir().glob("suite/photos-hard-v1-seed0-*.npz"))
    again = domains.photos_hard()  # from the cache: the same pixels
    assert np.array_equal(np.asarray(again.query_image(5)), np.asarray(d.query_image(5)))
    assert np.array_equal(again.gallery_labels, d.gallery_labels)
