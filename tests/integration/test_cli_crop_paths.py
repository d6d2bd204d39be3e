"""`lookalike search --crop x0,y0,x1,y1` (a region of the query, fractions as in the REST API)
and `--paths` (one path per line, nothing else on stdout), as a user runs them."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from lookalike.demo.samples import save_jpeg
from tests.support.cli import run


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("crop")
    for name in ("chelsea", "coffee", "rocket", "astronaut", "moon"):
        save_jpeg(photos[name], root / "pics" / f"{name}.jpg")
    proc = run("index", root / "pics", "--library", root / "lib", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    # Two photos side by side, neither indexed as such: each half is a region query.
    left, right = (photos[n].convert("RGB").resize((400, 400)) for n in ("coffee", "rocket"))
    both = Image.new("RGB", (800, 400))
    both.paste(left, (0, 0))
    both.paste(right, (400, 0))
    save_jpeg(both, root / "both.jpg")
    return root


def _json(*args) -> dict:
    proc = run("search", *args, "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_crop_searches_only_that_region(lib_dir):
    lib, both = lib_dir / "lib", lib_dir / "both.jpg"
    left = _json(both, "-l", lib, "-k", "1", "--crop", "0,0,0.5,1")["results"][0]["path"]
    right = _json(both, "-l", lib, "-k", "1", "--crop", "0.5,0,1,1")["results"][0]["path"]
    assert left.endswith("coffee.jpg") and right.endswith("rocket.jpg")
    # The same region through stdin gives the same answer.
    proc = run("search", "-", "-l", lib, "-k", "1", "--crop", "0.5,0,1,1", "--paths", stdin=both.read_bytes())
    assert proc.stdout.decode().strip() == right


def test_crop_of_an_indexed_image_never_finds_itself(lib_dir):
    lib = lib_dir / "lib"
    cat_id = next(h["id"] for h in _json(lib_dir / "pics" / "coffee.jpg", "-l", lib, "-k", "4")["results"]
                  if h["path"].endswith("chelsea.jpg"))
    hits = _json(f"id:{cat_id}", "-l", lib, "-k", "5", "--crop", "0.2,0.1,0.8,0.9")["results"]
    assert len(hits) == 4 and cat_id not in [h["id"] for h in hits]
    hits = _json(lib_dir / "pics" / "chelsea.jpg", "-l", lib, "-k", "5", "--crop", "0.2,0.1,0.8,0.9")["results"]
    assert len(hits) == 4 and cat_id not in [h["id"] for h in hits]


def test_paths_prints_one_path_per_line_in_rank_order(lib_dir):
    lib, query = lib_dir / "lib", lib_dir / "both.jpg"
    ranked = [h["path"] for h in _json(query, "-l", lib, "-k", "3")["results"]]
    proc = run("search", query, "-l", lib, "-k", "3", "--paths")
    assert proc.returncode == 0 and proc.stdout.decode().splitlines() == ranked
    words = run("search", "--text", "cat", "-l", lib, "--paths")
    assert words.returncode == 0 and words.stdout.decode().splitlines()[0].endswith("chelsea.jpg")


@pytest.mark.parametrize("args, message", [
    (["--crop", "10,10,50,50"], b"--crop box 10,10,50,50 must satisfy 0 <= x0 < x1 <= 1"),
    (["--crop", "left"], b"--crop must be x0,y0,x1,y1"),
    (["--crop", "0,0,1,1", "--not", "x.jpg"], b"--crop takes one QUERY image"),
    (["--paths", "--json"], b"--paths prints paths alone"),
])
def test_bad_crop_and_paths_are_usage_errors(lib_dir, args, message):
    proc = run("search", lib_dir / "both.jpg", "-l", lib_dir / "lib", *args)
    assert proc.returncode == 2 and message in proc.stderr.replace(b"\n", b" ").replace(b"  ", b" "), proc.stderr.decode()
