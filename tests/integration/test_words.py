"""Words through WordNet (Debian wordnet-base), the visible vocabulary (`lookalike tags`) and
several query images with weights and negatives: real WordNet files, real model, real photos."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from lookalike import Library
from lookalike.demo.samples import build_gallery
from lookalike.engine.combine import combine_vectors, reciprocal_rank_fusion
from lookalike.engine.tags import expand, match_labels, suggest, unknown_words
from lookalike.errors import InvalidQuery
from lookalike.models.wordnet import wordnet_available, wordnet_table
from tests.support.cli import run

needs_wordnet = pytest.mark.skipif(not wordnet_available(), reason="Debian wordnet-base is not installed")


def firsts(labels: list[str]) -> set[str]:
    return {label.split(",")[0] for label in labels}


@needs_wordnet
def test_broad_words_name_every_class_below_them():
    dog = firsts(match_labels("dog"))
    assert len(dog) > 100 and {"Chihuahua", "golden retriever", "German shepherd", "pug"} <= dog
    assert "hotdog" not in dog  # the rare sense "frank, ..., dog" is not used
    bird = firsts(match_labels("bird"))
    assert len(bird) > 50 and {"indigo bunting", "goldfinch", "ostrich", "bald eagle", "flamingo"} <= bird
    vehicle = firsts(match_labels("vehicle"))
    assert {"sports car", "pickup", "trailer truck", "canoe", "fireboat", "mountain bike"} <= vehicle
    assert {"Granny Smith", "banana", "strawberry"} <= firsts(match_labels("fruit"))
    assert "daisy" in firsts(match_labels("flower"))
    assert {"ladybug", "bee", "monarch"} <= firsts(match_labels("insect"))
    assert dog < firsts(match_labels("mammal"))
    # ImageNet has a few kinds of person, no "person" class: they are what "person" finds.
    assert firsts(match_labels("person")) == {"scuba diver", "groom", "ballplayer"}


@needs_wordnet
def test_no_substring_senses():
    assert match_labels("beach") == []  # never "beach wagon"
    mountain = firsts(match_labels("mountain"))
    assert mountain == {"alp", "volcano"}  # no mountain dogs, bikes, tents or lions
    assert firsts(match_labels("coffee")) == {"espresso"}  # "coffee mug" is a mug, not coffee
    assert firsts(match_labels("rocket")) == {"missile"}


@needs_wordnet
def test_plurals_and_multi_word_terms():
    assert match_labels("dogs") == match_labels("Dog") == match_labels("DOGS")
    assert firsts(match_labels("mice")) == firsts(match_labels("mouse"))  # noun.exc
    assert firsts(match_labels("boxes")) == firsts(match_labels("box")) != set()
    assert firsts(match_labels("sports cars")) == firsts(match_labels("sports car")) == {"sports car"}
    assert firsts(match_labels("ice cream")) == {"ice cream"}
    assert firsts(match_labels("people")) == firsts(match_labels("person"))
    assert set(match_labels("cat, coffee")) == set(match_labels("cat")) | set(match_labels("coffee"))


@needs_wordnet
@pytest.mark.parametrize("word", ["dgo", "brid", "vehicel", "beach", "tree", "motorcycel", "xyzzy", "cofee", "flwoer"])
def test_unknown_word_suggestions_all_succeed(word):
    problem = unknown_words(word)
    assert isinstance(problem, InvalidQuery)
    message = str(problem)
    assert "\n" not in message and repr(word) in message
    hints = message.split("nearest searchable words: ")[1].split(", ") if "nearest" in message else []
    assert all(match_labels(h) for h in hints)  # a suggestion never fails
    assert all(match_labels(h) for h in suggest(word))
    if word in ("dgo", "brid", "cofee"):
        assert {"dgo": "dog", "brid": "bird", "cofee": "coffee"}[word] == hints[0]  # a swapped or missing letter
    if word == "beach":  # a noun with no class below: its nearest broader concept first
        assert "geological formation" in message and hints[0] == "geological formation"


@needs_wordnet
def test_expansion_and_table_cache(tmp_path, monkeypatch):
    exp = expand("Dogs")
    assert exp.wordnet and [c.name for c in exp.concepts] == ["dog"] and len(exp.labels) == len(match_labels("dog"))
    assert json.loads(json.dumps(exp.to_dict()))["senses"][0]["synset"] == "n02084071"
    table = wordnet_table()
    assert table is not None and table.classes_for("dog") == sorted(table.classes_for("dogs"))
    # The reduced table is cached on disk, keyed by the WordNet files' size and mtime.
    cached = list((Path(os.environ["LOOKALIKE_CACHE"]) / "wordnet").glob("imagenet-nouns-*.json"))
    assert cached and all(p.stat().st_size < 5_000_000 for p in cached)


def test_without_wordnet_label_matching_and_hint(tmp_path):
    env = {"LOOKALIKE_WORDNET_DIR": str(tmp_path / "missing")}
    proc = run("tags", "--match", "xyzzy", env=env)
    assert proc.returncode == 1 and b"install Debian wordnet-base" in proc.stderr and b"Traceback" not in proc.stderr
    proc = run("tags", "--match", "espresso", "--json", env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["labels"] == ["espresso maker", "espresso"]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """The bundled photos and their edited variants, indexed once."""
    root = tmp_path_factory.mktemp("words")
    groups = build_gallery(root)
    with Library.open(root / "lib") as lib:
        report = lib.add([root / "photos", root / "variants"])
        assert report.failed == []
    return root, groups


@needs_wordnet
def test_text_search_on_the_bundled_photos(gallery):
    root, groups = gallery
    lib_dir = root / "lib"
    with Library.open(lib_dir) as lib:
        cat = lib.search_text("cat", k=20)
        assert cat and {Path(h.path).stem.split("-")[0] for h in cat[:7]} == {"chelsea"}
        assert Path(lib.search_text("coffee", k=1)[0].path).stem.startswith("coffee")
        assert Path(lib.search_text("cups", k=1)[0].path).stem.startswith("coffee")
        assert Path(lib.search_text("animal", k=1)[0].path).stem.startswith("chelsea")
        assert lib.search_text("rocket")  # once refused, while its own error suggested it
        assert lib.image_tags(cat[0].id)[0][0] == "Egyptian cat" and len(lib.image_tags(cat[0].id)) > 5
        assert lib.search_text("person") == []
    ok = run("search", "--text", "coffee", "-l", lib_dir, "--json")
    assert ok.returncode == 0 and Path(json.loads(ok.stdout)["results"][0]["path"]).stem.startswith("coffee")
    none = run("search", "--text", "person", "-l", lib_dir)
    assert none.returncode == 0 and b"no images tagged 'person'" in none.stderr and none.stdout == b""
    bad = run("search", "--text", "dgo", "-l", lib_dir)
    assert bad.returncode == 1 and b"nearest searchable words:" in bad.stderr and b"dog" in bad.stderr


@needs_wordnet
def test_text_filter_on_an_image_search_needs_confidence(gallery):
    root, groups = gallery
    with Library.open(root / "lib") as lib:
        hits = lib.search(groups["rocket"][0], k=50, text="cat")
        assert hits and {Path(h.path).stem.split("-")[0] for h in hits} == {"chelsea"}


@needs_wordnet
def test_cli_tags_vocabulary_match_and_counts(gallery):
    root, groups = gallery
    words = json.loads(run("tags", "--json").stdout)
    by_word = {w["word"]: w for w in words}
    assert by_word["dog"]["classes"] > 100 and not by_word["dog"]["is_class"]
    assert by_word["tabby"]["is_class"] and "tabby cat" in by_word["tabby"]["synonyms"]
    assert all(match_labels(w["word"]) for w in words[::25])  # every listed word is searchable
    match = json.loads(run("tags", "--match", "dogs", "--json").stdout)
    assert len(match["labels"]) > 100 and match["senses"][0]["name"] == "dog"
    human = run("tags", "--match", "coffee", env={"COLUMNS": "200"})
    assert human.returncode == 0 and b"espresso" in human.stdout
    counted = {w["word"]: w["images"] for w in json.loads(run("tags", "-l", root / "lib", "--json").stdout)}
    assert counted["cat"] == len(groups["chelsea"]) and counted["dog"] == 0 and counted["espresso"] >= 5
    cat_id = next(r.id for r in Library.open(root / "lib").records() if r.path == str(groups["chelsea"][0]))
    tags = json.loads(run("tags", "--image", cat_id, "-l", root / "lib", "--json").stdout)
    assert tags["tags"][0]["label"] == "Egyptian cat" and len(tags["tags"]) > 5
    bad = run("tags", "--match", "brid")
    assert bad.returncode == 1 and b"bird" in bad.stderr and b"Traceback" not in bad.stderr


def test_combination_maths():
    a, b = np.eye(3, dtype=np.float32)[0], np.eye(3, dtype=np.float32)[1]
    assert np.allclose(combine_vectors(np.stack([a, b])), (a + b) / np.sqrt(2))
    weighted = combine_vectors(np.stack([a, b]), weights=[3, 1])
    assert weighted[0] > weighted[1] > 0 and np.isclose(np.linalg.norm(weighted), 1)
    pushed = combine_vectors(a[None] + 0.5 * b[None], negative=b[None], beta=0.25)
    assert pushed[1] < (0.5 / np.sqrt(1.25))  # moved away from the negative
    with pytest.raises(InvalidQuery, match="one weight per image"):
        combine_vectors(np.stack([a, b]), weights=[1])
    with pytest.raises(InvalidQuery, match="positive"):
        combine_vectors(np.stack([a, b]), weights=[1, -1])
    assert [i for i, _ in reciprocal_rank_fusion([[1, 2, 3], [2, 3, 1]], [[3]])][:2] == [2, 1]


def test_several_images_with_a_negative(gallery):
    root, groups = gallery
    chelsea, coffee = groups["chelsea"], groups["coffee"]
    with Library.open(root / "lib") as lib:
        assert [h.id for h in lib.search(chelsea[0], k=5)] == [h.id for h in lib.search([chelsea[0]], k=5)]
        both = lib.search([chelsea[1], coffee[1]], k=12)
        stems = [Path(h.path).stem.split("-")[0] for h in both]
        assert set(stems[:10]) == {"chelsea", "coffee"}  # variants of both, nothing else first
        assert str(chelsea[1]) not in {h.path for h in both}  # query images never find themselves
        # Weighting one image up brings its variants first.
        heavy = [Path(h.path).stem.split("-")[0] for h in lib.search([chelsea[1], coffee[1]], k=5, weights=[1, 4])]
        assert heavy[:3] == ["coffee"] * 3
        # A negative example pushes its look-alikes down.
        plain = lib.search([chelsea[1], coffee[1]], k=40)
        minus = lib.search([chelsea[1], coffee[1]], k=40, negative=[coffee[2]])
        rank = lambda hits, name: np.mean([h.rank for h in hits if Path(h.path).stem.startswith(name)])  # noqa: E731
        assert rank(minus, "coffee") > rank(plain, "coffee") and rank(minus, "chelsea") < rank(plain, "chelsea")
        assert str(coffee[2]) not in {h.path for h in minus}
        with pytest.raises(InvalidQuery, match="one weight per image"):
            lib.search([chelsea[1], coffee[1]], weights=[1])
    cli = run("search", chelsea[1], coffee[1], "--not", coffee[2], "--weight", "2", "--weight", "1",
              "-l", root / "lib", "--json", "-k", "3")
    assert cli.returncode == 0, cli.stderr.decode()
    assert [Path(r["path"]).stem.split("-")[0] for r in json.loads(cli.stdout)["results"]] == ["chelsea"] * 3
    bad = run("search", chelsea[1], coffee[1], "--weight", "2", "-l", root / "lib")
    assert bad.returncode == 1 and b"one weight per image" in bad.stderr and b"Traceback" not in bad.stderr
    alone = run("search", "--text", "cat", "--not", coffee[2], "-l", root / "lib")
    assert alone.returncode == 2 and b"need at least one QUERY" in alone.stderr


@needs_wordnet
def test_library_indexed_with_top5_says_reindex(tmp_path, photos):
    """Libraries indexed before word search kept 5 classes per image: broad words say so."""
    from lookalike.demo.samples import save_jpeg
    from lookalike.store import Upsert

    for name in ("chelsea", "coffee"):
        save_jpeg(photos[name], tmp_path / "pics" / f"{name}.jpg")
    with Library.open(tmp_path / "lib") as lib:
        lib.add([tmp_path / "pics"])
        assert lib.stored_classes() > 5
        old = []
        for rec in lib.records():
            rec.tags = rec.tags[:5]
            old.append(Upsert(rec))
        lib.store.write(old)
        assert lib.stored_classes() == 5
    broad = run("search", "--text", "animal", "-l", tmp_path / "lib", env={"COLUMNS": "300"})
    assert broad.returncode == 0 and b"re-index into a new library to enable broader words" in broad.stderr
    assert b"chelsea.jpg" in broad.stdout
    narrow = run("search", "--text", "espresso", "-l", tmp_path / "lib")
    assert narrow.returncode == 0 and b"re-index" not in narrow.stderr
