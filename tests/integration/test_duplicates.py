"""Duplicates: exact copies, near-duplicates and similar shots in a real library of real photos,
with Fashion-MNIST products (many alike, distinct items) as hard negatives."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from lookalike import Library
from lookalike.demo.samples import save_jpeg
from lookalike.engine.duplicates import DuplicateThresholds
from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist
from tests.support.cli import run

UNRELATED = ("chelsea", "coffee", "rocket", "astronaut", "camera", "coins", "china")


@pytest.fixture(scope="module")
def dup_lib(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("dups")
    pics = root / "pics"
    for name in UNRELATED:
        save_jpeg(photos[name], pics / f"{name}.jpg", 92)
    (pics / "copies").mkdir()
    shutil.copyfile(pics / "coffee.jpg", pics / "copies" / "coffee.jpg")
    cat = photos["chelsea"]
    save_jpeg(cat.resize((cat.width // 2, cat.height // 2), Image.Resampling.LANCZOS), pics / "edits" / "chelsea-half-q60.jpg", 60)
    w, h = photos["astronaut"].size
    save_jpeg(photos["astronaut"].crop((int(w * 0.06), int(h * 0.02), w, h - int(h * 0.04))), pics / "edits" / "astronaut-crop6.jpg", 80)
    save_jpeg(ImageOps.mirror(photos["rocket"]), pics / "edits" / "rocket-mirror.jpg", 90)
    if fashion_mnist_available():
        fm = load_fashion_mnist("test")
        (pics / "fashion").mkdir()
        for i in range(40):
            fm.image(i).save(pics / "fashion" / f"fm{i:02d}.png")
    with Library.open(root / "lib") as lib:
        assert lib.add([pics]).failed == []
    return root


def _source(path: str) -> str:
    stem = Path(path).stem
    return stem if stem.startswith("fm") else stem.split("-")[0]


def test_three_tiers(dup_lib):
    with Library.open(dup_lib / "lib") as lib:
        report = lib.duplicates()
    groups = {(g.tier, frozenset(Path(m.path).relative_to(dup_lib / "pics").as_posix() for m in g.members)) for g in report.groups}
    assert ("exact", frozenset({"coffee.jpg", "copies/coffee.jpg"})) in groups
    assert ("near", frozenset({"chelsea.jpg", "edits/chelsea-half-q60.jpg"})) in groups
    assert ("near", frozenset({"astronaut.jpg", "edits/astronaut-crop6.jpg"})) in groups
    # A mirror image scores high on the CNN but fails the geometric check: similar, not near.
    assert ("similar", frozenset({"rocket.jpg", "edits/rocket-mirror.jpg"})) in groups
    for g in report.groups:
        sources = {_source(m.path) for m in g.members}
        photos = sources & set(UNRELATED)
        assert len(sources) == 1 or (not photos and g.tier == "similar"), (g.tier, sources)  # unrelated photos never grouped
        assert g.members[0].score == 1.0 and all(0 < m.score <= 1.0 for m in g.members)
        sizes = [m.width * m.height for m in g.members]
        assert sizes[0] == max(sizes)  # the one to keep first
    assert [g.group for g in report.groups] == list(range(1, len(report.groups) + 1))
    assert report.images == len(UNRELATED) + 4 + (40 if fashion_mnist_available() else 0)


def test_tier_selection_and_thresholds(dup_lib):
    with Library.open(dup_lib / "lib") as lib:
        exact = lib.duplicates(tiers=["exact"])
        assert [g.tier for g in exact.groups] == ["exact"] and exact.verified == 0
        # Demanding full coverage turns the cropped astronaut into a similar shot.
        strict = lib.duplicates(DuplicateThresholds(near_min_coverage=0.99), tiers=["near", "similar"])
        tiers = {_source(g.members[0].path): g.tier for g in strict.groups if _source(g.members[0].path) in UNRELATED}
        assert tiers["astronaut"] == "similar" and tiers["chelsea"] == "near" and "coffee" not in tiers
        with pytest.raises(Exception, match="cosine thresholds"):
            lib.duplicates(DuplicateThresholds(near_cosine=2.0))


def test_cli_json_and_csv(dup_lib):
    lib = dup_lib / "lib"
    proc = run("duplicates", "-l", lib, "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(proc.stdout)
    assert list(data) == ["images", "thresholds", "keep_policy", "counts", "seconds", "groups"]
    assert list(data["counts"]) == ["exact", "near", "similar"] and data["counts"]["exact"] == 1
    assert all(list(g) == ["group", "tier", "members"] for g in data["groups"])
    assert all(list(m) == ["id", "path", "score", "width", "height", "size", "keep", "match"]
               for g in data["groups"] for m in g["members"])
    assert all([m["keep"] for m in g["members"]] == [True] + [False] * (len(g["members"]) - 1) for g in data["groups"])
    proc = run("duplicates", "-l", lib, "--csv", "--tier", "exact", "--tier", "near")
    assert proc.returncode == 0, proc.stderr.decode()
    rows = list(csv.reader(io.StringIO(proc.stdout.decode())))
    assert rows[0] == ["group", "tier", "keep", "match", "id", "path", "score", "width", "height", "size"]
    near = json.loads(run("duplicates", "-l", lib, "--json", "--tier", "exact", "--tier", "near").stdout)
    json_rows = [(str(g["group"]), g["tier"], str(m["keep"]).lower(), m["match"] or "", m["path"])
                 for g in near["groups"] for m in g["members"]]
    assert [(r[0], r[1], r[2], r[3], r[5]) for r in rows[1:]] == json_rows and json_rows
    human = run("duplicates", "-l", lib, env={"COLUMNS": "200"})
    assert human.returncode == 0 and b"exact" in human.stdout and b"copies/coffee.jpg" in human.stdout
    assert b"1 exact" in human.stderr


@pytest.mark.parametrize("args, code, needle", [
    (["duplicates", "--tier", "fuzzy", "-l", "LIB"], 2, b"not one of exact, near, similar"),
    (["duplicates", "--json", "--csv", "-l", "LIB"], 2, b"choose one of --json and --csv"),
    (["duplicates", "-l", "/nonexistent/lib"], 1, b"no library at"),
    (["duplicates", "--help"], 0, b"Usage"),
])
def test_cli_errors_and_help(dup_lib, args, code, needle):
    proc = run(*[str(dup_lib / "lib") if a == "LIB" else a for a in args])
    assert proc.returncode == code, proc.stderr.decode()
    assert needle in (proc.stdout + proc.stderr) and b"Traceback" not in proc.stderr


def test_duplicates_compare_the_models_own_pooled_features(dup_lib, tmp_path):
    """effnet-lite0-ml appends earlier stages to its vectors (they make items of one kind
    alike, which category search wants); duplicates compare only the leading pooled features,
    so their scores are those features' cosines and alike products group no more than with
    whole vectors."""
    import numpy as np

    from lookalike.engine.duplicates import find_duplicates
    from lookalike.models import model_info

    with Library.open(tmp_path / "ml", model="effnet-lite0-ml") as lib:
        assert lib.add([dup_lib / "pics"]).failed == []
        head = model_info(lib.model).head_dim
        assert head is not None and head < lib.dim
        report = lib.duplicates()
        assert report.groups
        for g in report.groups:
            v = lib.store.vectors([m.id for m in g.members])[:, :head]
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            assert [m.score for m in g.members] == pytest.approx(np.minimum(v @ v[0], 1.0).tolist(), abs=1e-5)
        whole = find_duplicates(lib.store, tiers=["similar"])
    assert model_info("effnet-lite0").head_dim is None  # the default's vectors are all its own

    def grouped_products(r) -> int:
        return sum(_source(m.path).startswith("fm") for g in r.groups for m in g.members)

    assert grouped_products(report) <= grouped_products(whole)
