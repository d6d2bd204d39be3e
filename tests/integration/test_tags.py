"""Search by tag and the folder/date filters: engine and CLI, real model, real photos."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lookalike import Library
from lookalike.demo.samples import save_jpeg
from lookalike.engine.tags import MIN_CONFIDENCE, match_labels
from lookalike.models.imagenet_labels import imagenet_labels
from lookalike.store import SearchFilter
from tests.support.cli import run


def test_label_matching_is_whole_word_synonyms_case_insensitive():
    cat = match_labels("cat")
    assert {"tabby, tabby cat", "Egyptian cat", "tiger cat", "Persian cat", "Siamese cat, Siamese"} <= set(cat)
    assert not any(label.startswith(("catamaran", "polecat", "oystercatcher")) for label in cat)
    assert match_labels("CATS") == match_labels("Cat") == cat  # case and a plural s do not matter
    # Through WordNet an espresso maker is no kind of espresso; plain label matching (any
    # label list, or no WordNet) finds the word in both labels.
    assert match_labels("espresso") == ["espresso"]
    assert match_labels("espresso", imagenet_labels()) == ["espresso maker", "espresso"]
    assert match_labels("mountain lion") == ["cougar, puma, catamount, mountain lion, painter, panther, Felis concolor"]
    assert match_labels("lion mountain") == []  # a phrase keeps its word order
    assert set(match_labels("espresso, tabby")) == {"espresso", "tabby, tabby cat"}
    assert match_labels("xyzzy") == match_labels("  ,  ") == []
    # Every label is found by its own first synonym.
    labels = imagenet_labels()
    assert all(label in match_labels(label.split(",")[0]) for label in labels)


def test_search_text_ranks_by_confidence(originals_library):
    with Library.open(originals_library) as lib:
        records = {Path(r.path).stem: r for r in lib.records()}
        wanted = set(match_labels("cat"))
        mass = {r.id: sum(p for lab, p in r.tags if lab in wanted) for r in records.values()}
        expected = sorted(((m, i) for i, m in mass.items() if m >= MIN_CONFIDENCE), key=lambda sr: (-sr[0], sr[1]))
        hits = lib.search_text("cat", k=50)
        assert [h.id for h in hits] == [i for _, i in expected] and hits
        assert hits[0].path == records["chelsea"].path and hits[0].score > 0.5
        assert [h.score for h in hits] == pytest.approx([round(min(1.0, s), 6) for s, _ in expected])
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        top = lib.search_text("Espresso", k=1)
        assert [h.path for h in top] == [records["coffee"].path]
        assert lib.search_text("xyzzy") == []
        assert lib.search_text("cat", min_score=2.0) == []
        # Filters: a folder the images are not in, and a date range that excludes them.
        assert lib.search_text("cat", where=SearchFilter(path_prefix="/nowhere/")) == []
        assert lib.search_text("cat", where=SearchFilter(max_mtime=0.0)) == []
        assert [h.id for h in lib.search_text("cat", where=SearchFilter(min_mtime=0.0))] == [h.id for h in hits[:10]]


def test_text_filters_an_image_search(originals_library, originals_dir):
    with Library.open(originals_library) as lib:
        cat_ids = {h.id for h in lib.search_text("cat", k=100)}
        plain = lib.search(originals_dir / "coffee.jpg", k=20)
        filtered = lib.search(originals_dir / "coffee.jpg", k=20, text="cat")
        assert filtered and {h.id for h in filtered} <= cat_ids
        assert [h.id for h in filtered] == [h.id for h in plain if h.id in cat_ids]  # same order, same scores
        assert lib.search(originals_dir / "coffee.jpg", text="xyzzy") == []


@pytest.fixture(scope="module")
def dated_lib(tmp_path_factory, photos):
    """Photos in two folders with file dates in 2023 and 2024."""
    root = tmp_path_factory.mktemp("dated")
    stamps = {"chelsea": "2023-05-01", "coffee": "2023-12-31", "rocket": "2024-03-10", "astronaut": "2024-07-01"}
    for name, day in stamps.items():
        path = save_jpeg(photos[name], root / "pics" / day[:4] / f"{name}.jpg")
        t = time.mktime(time.strptime(day + " 12:00", "%Y-%m-%d %H:%M"))
        os.utime(path, (t, t))
    proc = run("index", root / "pics", "-l", root / "lib", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    return root


def _paths(proc) -> list[str]:
    assert proc.returncode == 0, proc.stderr.decode()
    return [Path(r["path"]).stem for r in json.loads(proc.stdout)["results"]]


def test_cli_text_search_json_shape(dated_lib):
    proc = run("search", "--text", "espresso", "-l", dated_lib / "lib", "--json")
    data = json.loads(proc.stdout)
    assert list(data) == ["query", "model", "took_ms", "verdict", "good_match", "results"] and data["query"] == "espresso"
    assert [list(r) for r in data["results"]] == [["rank", "id", "path", "score", "fields", "confidence"]]
    assert data["results"][0]["path"].endswith("coffee.jpg") and 0 < data["results"][0]["score"] <= 1
    human = run("search", "-t", "cat", "-l", dated_lib / "lib", env={"COLUMNS": "200"})
    assert human.returncode == 0 and b"confidence" in human.stdout and b"chelsea.jpg" in human.stdout


def test_cli_image_query_with_text_and_date_filters(dated_lib):
    lib, query = dated_lib / "lib", dated_lib / "pics" / "2024" / "rocket.jpg"
    assert _paths(run("search", query, "--text", "cat", "-l", lib, "--json")) == ["chelsea"]
    assert sorted(_paths(run("search", query, "--since", "2023-06-01", "-l", lib, "--json"))) == ["astronaut", "coffee"]
    # --until with a date alone includes that whole day (coffee is from 2023-12-31 12:00).
    assert sorted(_paths(run("search", query, "--until", "2023-12-31", "-l", lib, "--json"))) == ["chelsea", "coffee"]
    assert _paths(run("search", query, "--under", dated_lib / "pics" / "2023", "--since", "2023-06-01",
                      "--until", "2023-12-31T13:00", "-l", lib, "--json")) == ["coffee"]
    # Text alone needs no model: filters apply the same way.
    assert _paths(run("search", "--text", "cat", "--since", "2024-01-01", "-l", lib, "--json")) == []
    assert _paths(run("search", "--text", "cat", "--until", "2023-05-01T11:00", "-l", lib, "--json")) == []
    assert _paths(run("search", "--text", "cat", "--under", dated_lib / "pics" / "2023", "-l", lib, "--json")) == ["chelsea"]


@pytest.mark.parametrize("args, code, needle", [
    (["search", "-l", "LIB"], 2, b"Missing argument 'QUERY'"),
    (["search", "--text", "cat", "--since", "last tuesday", "-l", "LIB"], 2, b"is not a date"),
    (["search", "--text", "xyzzy", "-l", "LIB"], 1, b"'xyzzy' is not a word Lookalike can search for"),
])
def test_cli_tag_search_errors(dated_lib, args, code, needle):
    proc = run(*[str(dated_lib / "lib") if a == "LIB" else a for a in args])
    assert proc.returncode == code and needle in proc.stderr, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
