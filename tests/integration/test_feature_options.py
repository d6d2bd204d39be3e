"""The feature options of the suite (multi-layer, multi-scale, R-MAC, pad/crop) with the real
Lite0 weights on real photos: unit vectors, deterministic, stable under a small resize, and the
NumPy pooling path equal to the search graph's own pooling."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import InvalidQuery
from lookalike.eval.suite import parse_method
from lookalike.models import get_extractor
from lookalike.models.effnet import EFFNET_SPECS
from lookalike.models.feature_options import FeatureOptions, options_extractor

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]


@pytest.fixture(scope="module")
def images(photos) -> list[Image.Image]:
    return [photos[n] for n in PHOTOS]


def slightly_resized(im: Image.Image) -> Image.Image:
    return im.resize((int(im.width * 0.9), int(im.height * 0.9)), Image.Resampling.LANCZOS)


def test_options_without_changes_reproduce_the_search_graph(images):
    """NumPy pooling of the taps graph == the graphs' in-graph pooling (the models' own features)."""
    for name in ("effnet-lite0", "effnet-lite0-ml"):
        model = get_extractor(name)
        same = options_extractor(name, [])
        np.testing.assert_allclose(same.embed(images), model.embed(images), atol=2e-5)
        assert same.dim == model.dim
    assert get_extractor("effnet-lite0").dim == 1280 and get_extractor("effnet-lite0-ml").dim == 1280 + 112 + 192
    # effnet-lite0 is the plain graph with GeM; effnet-lite0-ml adds stages 5 and 6, each weighted 1.5.
    np.testing.assert_allclose(options_extractor("effnet-lite0-avg", ["gem3"]).embed(images),
                               get_extractor("effnet-lite0").embed(images), atol=2e-5)
    rebuilt = options_extractor("effnet-lite0-avg", ["gem3", "stage5w1.5", "stage6w1.5"])
    np.testing.assert_allclose(rebuilt.embed(images), get_extractor("effnet-lite0-ml").embed(images), atol=2e-5)


@pytest.mark.parametrize("options", [["stage5"], ["stage6w1.5"], ["s288"], ["rmac"], ["pad"], ["crop"], ["gem4", "stage4"]])
def test_option_vectors_are_unit_deterministic_and_stable(images, options):
    ext = options_extractor("effnet-lite0-avg", options)
    a = ext.embed(images)
    assert a.shape == (len(images), ext.dim)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, ext.embed(images))
    b = ext.embed([slightly_resized(im) for im in images])
    same = (a * b).sum(axis=1)
    others = a @ a.T - 2 * np.eye(len(images))
    assert same.min() > 0.9, same
    assert same.min() > others.max(), (same, others.max())  # each photo's nearest is its resized copy
    # The batch path (model-size inputs, as the indexer feeds them) agrees with `embed`.
    if "s288" not in options:  # embed_batch scales the 224 px input up: close, not equal
        np.testing.assert_allclose(ext.embed_batch(np.stack([ext.preprocess(im) for im in images])).vectors, a, atol=1e-5)


def test_multi_layer_dimension_and_parsing():
    spec = EFFNET_SPECS["effnet-lite0"]
    opts = FeatureOptions.of(spec, ["stage5w2", "stage6", "s192", "gem4", "crop"])
    assert opts.stages[-2:] == ((5, 2.0), (6, 1.0)) and opts.scales == (192,) and opts.gem_p == 4.0
    assert opts.resize == "crop"
    ext = options_extractor("effnet-lite0", ["stage5", "stage6"])
    assert ext.dim == spec.dim + 112 + 192
    assert parse_method("effnet-lite0+stage5w1.5+s288+flip") == ("effnet-lite0", ["stage5w1.5", "s288", "flip"])
    with pytest.raises(InvalidQuery, match="needs an effnet"):
        parse_method("color-hist+stage5")
    with pytest.raises(InvalidQuery, match="unknown feature option"):
        parse_method("effnet-lite0+stage9")
