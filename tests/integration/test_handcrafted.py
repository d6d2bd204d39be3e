"""The handcrafted baselines: hand-checked features, and indexing/search through a real Library."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.demo.samples import variants
from lookalike.errors import LookalikeError
from lookalike.models import get_extractor, model_info
from lookalike.models.color_hist import BINS, SIZE
from lookalike.models.sift_vlad import STATE_FILE

HANDCRAFTED = ["color-hist", "texture", "sift-vlad"]


def test_color_hist_of_a_pure_colour_is_one_bin():
    ext = get_extractor("color-hist")
    # Pure red is hue 0, saturation 1, value 1: hue bin 0, the last saturation and value bins.
    red = ext.embed([Image.new("RGB", (40, 30), (255, 0, 0))])[0]
    expected = (0 * BINS[1] + BINS[1] - 1) * BINS[2] + BINS[2] - 1
    assert red.shape == (model_info("color-hist").dim,) and np.flatnonzero(red).tolist() == [expected]
    assert red[expected] == pytest.approx(1.0)
    # Half black, half white (at the histogram's own size, so no resampling blends them):
    # two value bins at sqrt(1/2) each (Hellinger).
    half = np.zeros((SIZE, SIZE, 3), np.uint8)
    half[:, SIZE // 2:] = 255
    v = ext.embed([Image.fromarray(half)])[0]
    assert sorted(v[v > 0].round(4).tolist()) == [pytest.approx(0.7071)] * 2


@pytest.mark.parametrize("name", HANDCRAFTED)
def test_vectors_are_unit_length_even_for_flat_images(name, photos):
    ext = get_extractor(name)
    if name == "sift-vlad":
        ext.fit(list(photos.values()))
    images = [photos["chelsea"], Image.new("RGB", (50, 50), (90, 90, 90)), photos["camera"].resize((9, 7))]
    vecs = ext.embed(images)
    assert vecs.dtype == np.float32 and vecs.shape == (3, model_info(name).dim)
    assert np.isfinite(vecs).all()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_sift_vlad_needs_its_codebook(photos):
    ext = get_extractor("sift-vlad")
    assert not ext.is_fitted()
    with pytest.raises(LookalikeError, match="codebook"):
        ext.embed([photos["chelsea"]])


@pytest.mark.parametrize("name", HANDCRAFTED)
def test_library_indexes_and_searches_with_each_extractor(name, tmp_path, originals_dir, photos):
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir, model=name) as lib:
        report = lib.add([originals_dir])
        assert report.failed == [] and report.added == len(photos)
        assert lib.info()["dim"] == model_info(name).dim
        # Every photo's crop and downscaled copy finds the photo first.
        for photo_name, photo in photos.items():
            for kind in ("crop", "small"):
                hits = lib.search(variants(photo)[kind], k=3)
                assert hits[0].path.endswith(f"/{photo_name}.jpg"), (name, photo_name, kind, hits)
        first = lib.embed([photos["coffee"]])
    if name == "sift-vlad":
        assert (lib_dir / "model-state" / STATE_FILE).exists()
    # Reopened, the library reuses its state (the codebook) and embeds exactly as before.
    with Library.open(lib_dir) as lib:
        np.testing.assert_allclose(lib.embed([photos["coffee"]]), first, atol=1e-6)
        assert lib.search(photos["coffee"], k=1)[0].path.endswith("/coffee.jpg")
