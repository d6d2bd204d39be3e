"""Search by words: each image stores its ImageNet class probabilities (the top 50) as
(label, probability), a label being the full class string with comma-separated synonyms
("tabby, tabby cat"). A user's text is resolved to the set of full labels it names, so any
store can filter on them (the store protocol's `SearchFilter.labels`), and hits are ranked
by the classifier's confidence: the summed probability of the image's matching classes.

How a word names classes (docs/search.md):
- the text is split on commas into alternatives (any of them may match);
- with WordNet installed (Debian `wordnet-base`), an alternative is an English noun, singular
  or plural ("dogs", "mice", "sports cars"), and names every ImageNet class that is a kind of
  it in WordNet's hierarchy ("dog": 118 breeds; "vehicle": cars, trucks, boats...), through
  its usual senses only (models/wordnet.py); a noun with no ImageNet class below it names
  nothing ("beach" never reaches "beach wagon");
- text that is no WordNet noun, or any text without WordNet, matches a label when its words
  appear in a synonym as a contiguous run of whole words, case-insensitively ("cat" matches
  "tabby cat", never "catamaran"); a plural "s" is tolerated on either side."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from ..errors import InvalidQuery
from ..models.imagenet_labels import imagenet_labels
from ..models.wordnet import Concept, imagenet_wnids, normalise, wordnet_table
from ..store import ImageRecord, SearchFilter, VectorStore

_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> tuple[str, ...]:
    return tuple(_singular(w) for w in _WORD.findall(text.lower()))


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


_Index = list[tuple[str, frozenset[str], list[tuple[str, ...]]]]


def _index(labels: Iterable[str]) -> _Index:
    """(full label, all its words, [words of each synonym]) per label."""
    out: _Index = []
    for label in labels:
        synonyms = [_words(s) for s in label.split(",") if s.strip()]
        out.append((label, frozenset(w for syn in synonyms for w in syn), synonyms))
    return out


@lru_cache(maxsize=1)
def _imagenet_index() -> _Index:
    return _index(imagenet_labels())


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def _label_match(alternatives: list[tuple[str, ...]], index: _Index) -> list[str]:
    return [label for label, vocabulary, synonyms in index
            if any(vocabulary.issuperset(alt) and any(_contains(syn, alt) for syn in synonyms) for alt in alternatives)]


def match_labels(text: str, labels: Iterable[str] | None = None) -> list[str]:
    """The full labels (ImageNet's by default) that `text` names, in label order."""
    parts = [p for p in text.split(",") if _words(p)]
    if not parts:
        return []
    if labels is not None:
        return _label_match([_words(p) for p in parts], _index(labels))
    all_labels = imagenet_labels()
    table = wordnet_table()
    wanted: set[str] = set()
    for part in parts:
        if table is not None and table.base_forms(part):
            wanted |= {all_labels[c] for c in table.classes_for(part)}
        else:  # not an English noun WordNet knows (or no WordNet): today's label matching
            wanted |= set(_label_match([_words(part)], _imagenet_index()))
    return list(dict.fromkeys(label for label in all_labels if label in wanted))  # "crane" is two classes


@dataclass
class Expansion:
    """What a word names: the WordNet senses used and the ImageNet classes below them."""

    word: str
    concepts: list[Concept]
    labels: list[str]  # full ImageNet labels, in class order
    wordnet: bool  # False: WordNet is not installed, labels come from label matching

    def to_dict(self) -> dict:
        return {"word": self.word, "wordnet": self.wordnet, "labels": self.labels,
                "senses": [{"synset": c.synset, "name": c.name, "lemmas": list(c.lemmas), "classes": len(c.classes)}
                           for c in self.concepts]}


def expand(word: str) -> Expansion:
    """The classes a word names, with the senses it went through."""
    table = wordnet_table()
    concepts = table.concepts_for(word) if table is not None else []
    return Expansion(normalise(word), concepts, match_labels(word), table is not None)


@dataclass(frozen=True)
class VocabularyEntry:
    word: str  # the concept's first lemma
    synonyms: tuple[str, ...]  # its other lemmas (all searchable)
    classes: tuple[int, ...]  # ImageNet classes it names
    is_class: bool  # an ImageNet class itself (otherwise a group of classes, e.g. "dog")


@lru_cache(maxsize=1)
def vocabulary() -> list[VocabularyEntry]:
    """Every searchable concept, by name: the ImageNet classes and each WordNet ancestor that
    has at least one class below it (without WordNet: the classes alone)."""
    labels = imagenet_labels()
    table = wordnet_table()
    if table is None:
        return sorted((VocabularyEntry(normalise(lab.split(",")[0]), tuple(normalise(s) for s in lab.split(",")[1:] if s.strip()),
                                       (i,), True) for i, lab in enumerate(labels)), key=lambda e: e.word)
    class_ids = set(imagenet_wnids())
    entries = [VocabularyEntry(c.name, c.lemmas[1:], c.classes, c.synset in class_ids) for c in table.concepts.values()]
    return sorted(entries, key=lambda e: (e.word, -len(e.classes)))


@lru_cache(maxsize=1)
def _searchable_words() -> list[str]:
    table = wordnet_table()
    if table is not None:
        return sorted(table.words)
    return sorted({" ".join(w) for _, _, syns in _imagenet_index() for w in syns})


def suggest(word: str, n: int = 5) -> list[str]:
    """The searchable words closest in spelling to `word` (each one names classes): difflib's
    candidates re-ranked by typing distance, so a swapped letter ("brid") finds "bird" first."""
    target = normalise(word)
    candidates = difflib.get_close_matches(target, _searchable_words(), n=30, cutoff=0.6)
    return sorted(candidates, key=lambda c: _typing_distance(target, c))[:n]


def _typing_distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) turning `a` into `b`."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def unknown_words(text: str) -> InvalidQuery | None:
    """None when `text` names at least one class; otherwise the error to show, with the nearest
    searchable words (every one of which succeeds)."""
    if match_labels(text):
        return None
    table = wordnet_table()
    parts = [p.strip() for p in text.split(",") if p.strip()]
    hints = [s for p in parts for s in suggest(p)]
    if table is None:
        why = f"no ImageNet label matches {text!r} (install Debian wordnet-base for word search: 'dog', 'bird', 'vehicle' ...)"
    elif parts and all(table.base_forms(p) for p in parts):
        why = f"no ImageNet class is a kind of {text!r}"
        labels = imagenet_labels()
        for part in parts:
            up = table.broader_concept(part)
            if up is not None:  # semantic neighbours first: "beach" -> seashore, sandbar ...
                why += f" ({part!r} is a kind of {up.name!r})"
                hints = [up.name] + [normalise(labels[c].split(",")[0]) for c in up.classes[:6]] + hints
    else:
        why = f"{text!r} is not a word Lookalike can search for"
    tail = f"; nearest searchable words: {', '.join(list(dict.fromkeys(hints))[:8])}" if hints else \
        "; see `lookalike tags` for every searchable word"
    return InvalidQuery(why + tail)


def tag_filter(text: str, where: SearchFilter | None = None) -> SearchFilter:
    """`where` further restricted to images tagged with a label that `text` names (no label
    matches: a filter that matches nothing)."""
    base = where or SearchFilter()
    labels = match_labels(text)
    if base.labels is not None:  # both must hold: intersect
        labels = [label for label in labels if label in set(base.labels)]
    return SearchFilter(path_prefix=base.path_prefix, labels=labels,
                        min_mtime=base.min_mtime, max_mtime=base.max_mtime, expr=base.expr)


# Below this summed probability an image is not reported as showing a word: with 50 stored
# classes per image nearly every word gets a sliver of probability on every photo.
MIN_CONFIDENCE = 0.01
# An image search restricted by words keeps images that show them at least this likely.
FILTER_CONFIDENCE = 0.1


def rank_by_tag(store: VectorStore, text: str, k: int, where: SearchFilter | None = None,
                min_score: float | None = None) -> list[tuple[ImageRecord, float]]:
    """Images tagged with a label `text` names, best first: (record, confidence). ImageNet
    classes exclude each other, so the confidence is the *sum* of the probabilities of the
    image's matching tags: the classifier's probability that the image shows any of them
    (a lower bound, as only the top classes are stored). "cat" on a photo tagged Egyptian
    cat 0.81, tiger cat 0.08, tabby 0.07 scores 0.96. Images below `MIN_CONFIDENCE` (or
    `min_score` when given) are left out."""
    flt = tag_filter(text, where)
    wanted = set(flt.labels or [])
    if not wanted:
        return []
    scored: list[tuple[ImageRecord, float]] = []
    for rec in store.iter_records(where=flt):
        matching = [p for label, p in rec.tags if label in wanted]
        score = min(1.0, float(sum(matching)))
        if matching and score >= (MIN_CONFIDENCE if min_score is None else min_score):
            scored.append((rec, score))
    scored.sort(key=lambda rs: (-rs[1], rs[0].id))
    return scored[:k]
