"""`lookalike tags`: the words text search understands, what a word expands to, and the
classes stored for one image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.table import Table

from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, app, err, open_library, out, user_errors

if TYPE_CHECKING:
    from ..engine import Library


@app.command()
def tags(
    match: Optional[str] = typer.Option(None, "--match", "-m", help="Show the ImageNet classes this word names."),
    image: Optional[int] = typer.Option(None, "--image", help="Show the classes stored for the image with this id."),
    library: Optional[Path] = LibraryOpt,
    counts: bool = typer.Option(False, "--counts", help="Count the images of the library that show each word "
                                                         "(summed probability >= 0.5); implied by --library."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """List the words --text understands (ImageNet classes and the WordNet groups above them)."""
    with user_errors():
        if match is not None:
            _show_match(match, as_json)
        elif image is not None:
            with open_library(library, store, token=milvus_token) as lib:
                _show_image(lib, image, as_json)
        elif library is not None or counts or store is not None:
            with open_library(library, store, token=milvus_token) as lib:
                _show_vocabulary(lib.vocabulary(counts=True), as_json)
        else:
            from ..engine.tags import vocabulary

            _show_vocabulary([(e, None) for e in vocabulary()], as_json)


def _show_match(word: str, as_json: bool) -> None:
    from ..engine.tags import expand, unknown_words

    problem = unknown_words(word)
    if problem is not None:
        raise problem
    exp = expand(word)
    if as_json:
        print(json.dumps(exp.to_dict()))
        return
    for sense in exp.concepts:
        err.print(f"{sense.name} ({', '.join(sense.lemmas[1:]) or 'no synonyms'}; WordNet {sense.synset}): "
                  f"{len(sense.classes)} classes", highlight=False, markup=False)
    if not exp.wordnet:
        err.print("install Debian wordnet-base for word search through the WordNet hierarchy", highlight=False)
    table = Table("class", title=f"{word!r} names {len(exp.labels)} ImageNet classes", title_justify="left")
    for label in exp.labels:
        table.add_row(label)
    out.print(table)


def _show_image(lib: Library, id_: int, as_json: bool) -> None:
    tags = lib.image_tags(id_)
    if as_json:
        print(json.dumps({"id": id_, "path": lib.get(id_).path, "tags": [{"label": t, "probability": p} for t, p in tags]}))
        return
    table = Table("probability", "class", title=f"classes stored for image {id_}", title_justify="left")
    for label, p in tags:
        table.add_row(f"{p:.4f}", label)
    out.print(table)
    if len(tags) <= 5:
        err.print("only the top 5 classes are stored for this image: re-index into a new library to search it "
                  "by broader words", highlight=False, soft_wrap=True)


def _show_vocabulary(entries: list, as_json: bool) -> None:
    from ..models.wordnet import wordnet_available

    with_counts = any(n is not None for _, n in entries)
    if as_json:
        print(json.dumps([{"word": e.word, "synonyms": list(e.synonyms), "classes": len(e.classes),
                           "is_class": e.is_class, **({"images": n} if with_counts else {})} for e, n in entries]))
        return
    columns = ["word", "classes", "synonyms"] + (["images"] if with_counts else [])
    table = Table(*columns, title=f"{len(entries)} searchable words", title_justify="left")
    for e, n in entries:
        row = [e.word, "class" if e.is_class else str(len(e.classes)), ", ".join(e.synonyms)]
        table.add_row(*row, *([str(n)] if with_counts else []))
    out.print(table)
    if not wordnet_available():
        err.print("install Debian wordnet-base for word search through the WordNet hierarchy "
                  "('dog', 'bird', 'vehicle' ...)", highlight=False, soft_wrap=True)
