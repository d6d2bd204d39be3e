"""Search by tag: each image stores its ImageNet top-5 as (label, probability), a label being
the full class string with comma-separated synonyms ("tabby, tabby cat"). A user's text is
resolved to the set of full labels it names, so any store can filter on them (the store
protocol's `SearchFilter.labels`), and hits are ranked by the classifier's confidence.

Matching rule (documented in the README):
- the text is split on commas into alternatives (any of them may match);
- an alternative matches a synonym when its words appear in the synonym as a contiguous run
  of whole words, case-insensitively ("cat" matches "tabby cat" and "Egyptian cat", never
  "catamaran" or "polecat"; "mountain lion" matches "mountain lion");
- words are runs of letters, digits and apostrophes (hyphens separate words), and a plural
  "s" is tolerated on either side ("cats" matches "cat")."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

from ..models.imagenet_labels import imagenet_labels
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


def match_labels(text: str, labels: Iterable[str] | None = None) -> list[str]:
    """The full labels (ImageNet's by default) that `text` names, in label order."""
    alternatives = [w for w in (_words(part) for part in text.split(",")) if w]
    if not alternatives:
        return []
    index = _imagenet_index() if labels is None else _index(labels)
    return [label for label, vocabulary, synonyms in index
            if any(vocabulary.issuperset(alt) and any(_contains(syn, alt) for syn in synonyms) for alt in alternatives)]


def tag_filter(text: str, where: SearchFilter | None = None) -> SearchFilter:
    """`where` further restricted to images tagged with a label that `text` names (no label
    matches: a filter that matches nothing)."""
    base = where or SearchFilter()
    labels = match_labels(text)
    if base.labels is not None:  # both must hold: intersect
        labels = [label for label in labels if label in set(base.labels)]
    return SearchFilter(path_prefix=base.path_prefix, labels=labels,
                        min_mtime=base.min_mtime, max_mtime=base.max_mtime, expr=base.expr)


def rank_by_tag(store: VectorStore, text: str, k: int, where: SearchFilter | None = None,
                min_score: float | None = None) -> list[tuple[ImageRecord, float]]:
    """Images tagged with a label `text` names, best first: (record, confidence). ImageNet
    classes exclude each other, so the confidence is the *sum* of the probabilities of the
    image's matching tags: the classifier's probability that the image shows any of them
    (a lower bound, as only the top 5 are stored). "cat" on a photo tagged Egyptian cat 0.81,
    tiger cat 0.08, tabby 0.07 scores 0.96."""
    flt = tag_filter(text, where)
    wanted = set(flt.labels or [])
    if not wanted:
        return []
    scored: list[tuple[ImageRecord, float]] = []
    for rec in store.iter_records(where=flt):
        matching = [p for label, p in rec.tags if label in wanted]
        score = min(1.0, float(sum(matching)))
        if matching and (min_score is None or score >= min_score):
            scored.append((rec, score))
    scored.sort(key=lambda rs: (-rs[1], rs[0].id))
    return scored[:k]
