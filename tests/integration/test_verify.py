"""Geometric verification ("find this photo") on a real library of real photos: a tight crop
of a photo, turned and re-lit, that the CNN features rank below other images is put first by
verification, from Python, the CLI and the REST API; bad values are one-line errors."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from lookalike import Library
from lookalike.api import create_app
from lookalike.demo.samples import save_jpeg
from lookalike.errors import InvalidQuery
from lookalike.eval.hard_edits import crop_area
from tests.support.cli import run
from tests.support.server import BackgroundServer

pytest.importorskip("cv2")


def _detail(photo: Image.Image) -> Image.Image:
    """15% of the photo, turned 90°, grey, brighter and flatter: what is left is the detail."""
    part = crop_area(photo, np.random.default_rng(0), 0.15).transpose(Image.Transpose.ROTATE_90)
    part = ImageOps.grayscale(part).convert("RGB")
    return ImageEnhance.Contrast(ImageEnhance.Brightness(part).enhance(1.5)).enhance(0.6)


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory, photos):
    """The bundled photos plus close-ups cut from two other real photos (a street scene, gravel)."""
    data = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("verify")
    for name, im in photos.items():
        save_jpeg(im, root / "pics" / f"{name}.jpg", 95)
    rng = np.random.default_rng(1)
    for n, source in enumerate((data.stereo_motorcycle()[0], data.gravel())):
        im = Image.fromarray(source).convert("RGB")
        for i in range(15):
            save_jpeg(crop_area(im, rng, float(rng.uniform(0.1, 0.4))), root / "pics" / f"close-up-{n}-{i}.jpg", 95)
    _detail(photos["camera"]).save(root / "query.png")
    with Library.open(root / "lib") as lib:
        lib.add(root / "pics")
    return root


def test_verification_puts_the_original_of_a_detail_first(lib_dir):
    query = lib_dir / "query.png"
    with Library.open(lib_dir / "lib") as lib:
        # Plain nearest neighbours on both sides: with query expansion a longer candidate list
        # (depth 20) picks a different top 10, which is not what this checks.
        plain = lib.search(query, k=10, rerank="none")
        verified = lib.search(query, k=10, verify=True, rerank="none")
    names = [h.path.rsplit("/", 1)[-1] for h in plain]
    assert names[0] != "camera.jpg" and "camera.jpg" in names  # the features alone put something else first
    assert verified[0].path.endswith("camera.jpg") and verified[0].inliers is not None and verified[0].inliers >= 15
    assert [h.rank for h in verified] == list(range(1, 11))
    assert all(h.inliers is not None for h in verified) and all(h.inliers is None for h in plain)
    by_path = {h.path: h.score for h in plain}
    assert verified[0].score == by_path[verified[0].path]  # score stays the cosine; only the order changes
    assert sorted(h.path for h in verified) == sorted(h.path for h in plain)  # same candidates within depth 20
    # A shallow check cannot reach an original the features rank lower than its depth.
    rank = names.index("camera.jpg") + 1
    with Library.open(lib_dir / "lib") as lib:
        shallow = lib.search(query, k=10, verify=True, verify_depth=rank - 1)
    assert not shallow[0].path.endswith("camera.jpg")


def test_bad_values_are_one_line_errors(lib_dir):
    with Library.open(lib_dir / "lib") as lib:
        for kwargs, message in (({"verify": True, "verify_depth": 0}, "verify_depth must be an integer from 1 to 200"),
                                ({"verify": True, "verify_depth": 201}, "from 1 to 200"),
                                ({"verify": "yes"}, "verify must be true or false")):
            with pytest.raises(InvalidQuery, match=message):
                lib.search(lib_dir / "query.png", **kwargs)
        with pytest.raises(InvalidQuery, match="verify takes one query image"):
            lib.search([lib_dir / "query.png", lib_dir / "pics" / "coffee.jpg"], verify=True)


def test_cli_verify(lib_dir):
    lib, query = lib_dir / "lib", lib_dir / "query.png"
    proc = run("search", query, "--library", lib, "--verify", "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert results[0]["path"].endswith("camera.jpg") and results[0]["inliers"] >= 15
    plain = json.loads(run("search", query, "--library", lib, "--json").stdout)["results"]
    assert not plain[0]["path"].endswith("camera.jpg") and "inliers" not in plain[0]
    table = run("search", query, "--library", lib, "--verify-depth", "30")
    assert table.returncode == 0 and "inliers" in table.stdout.decode()
    for args, message in ((("--verify-depth", "0"), "--verify-depth must be an integer from 1 to 200"),
                          (("--verify", "--not", lib_dir / "pics" / "coffee.jpg"), "--verify takes one QUERY image")):
        bad = run("search", query, "--library", lib, *args)
        err = bad.stderr.decode()
        assert bad.returncode == 2 and message in err and "Traceback" not in err, err


def test_rest_verify(lib_dir):
    data = (lib_dir / "query.png").read_bytes()
    with BackgroundServer(create_app(lib_dir / "lib")) as url, httpx.Client(base_url=url, timeout=120) as client:
        files = {"file": ("query.png", data, "image/png")}
        form = client.post("/api/search", files=files, data={"verify": "true"})
        assert form.status_code == 200, form.text
        first = form.json()["results"][0]
        assert first["path"].endswith("camera.jpg") and first["inliers"] >= 15
        raw = client.post("/api/search?verify=true&verify_depth=25", content=data, headers={"content-type": "image/png"})
        assert raw.status_code == 200 and raw.json()["results"][0]["path"].endswith("camera.jpg")
        plain = client.post("/api/search", files=files).json()["results"]
        assert "inliers" not in plain[0] and not plain[0]["path"].endswith("camera.jpg")
        camera = first["id"]
        by_id = client.post("/api/search", json={"id": camera, "verify": True, "k": 3})
        assert by_id.status_code == 200 and all(h["id"] != camera for h in by_id.json()["results"])
        for bad, message in ((client.post("/api/search", files=files, data={"verify": "maybe"}), "verify must be true or false"),
                             (client.post("/api/search", json={"id": camera, "verify_depth": 500}), "from 1 to 200"),
                             (client.post("/api/search", json={"ids": [camera, camera + 1], "verify": True}),
                              "verify takes one query image")):
            assert bad.status_code == 422 and message in bad.json()["detail"], bad.text
