"""The Typer app, its shared options and the one mapping from error types to exit codes.
Imports stay light (Typer, Rich, config, errors): the engine loads inside a command, so
`lookalike --help` answers without loading ONNX Runtime, OpenCV or faiss."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

import typer
from rich.console import Console

from .. import __version__
from ..config import default_library, default_store, milvus_token
from ..errors import Busy, InvalidQuery, LookalikeError, NotFound

if TYPE_CHECKING:
    from ..engine import Library

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Lookalike: find images that look alike, by what they show.")
out = Console()
err = Console(stderr=True)

# Exit codes: 0 success; 1 a user error, any `LookalikeError` (unknown id or label, unreadable
# image, busy library...); 2 a usage error: what Typer reports itself (unknown option or
# command, missing argument, a value of the wrong type) and an option value the engine
# refuses before any work starts (`usage_errors`); 130 interrupted. Most specific type first.
EXIT_USER_ERROR = 1
EXIT_USAGE = 2  # raised by Typer/Click, listed here so docs and tests have one source
EXIT_INTERRUPTED = 130
EXIT_CODES: tuple[tuple[type[LookalikeError], int], ...] = (
    (InvalidQuery, EXIT_USER_ERROR), (NotFound, EXIT_USER_ERROR), (Busy, EXIT_USER_ERROR), (LookalikeError, EXIT_USER_ERROR))

LibraryOpt = typer.Option(None, "--library", "-l", help="Library directory [default: $LOOKALIKE_LIBRARY or ./lookalike-library]")
StoreOpt = typer.Option(None, "--store", help="Store backend [default: $LOOKALIKE_STORE, else embedded in the library directory]")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
WhereOpt = typer.Option(None, "--where", "-w", help="Filter on the images' fields, e.g. 'format = \"jpeg\" and width >= 1000' "
                                                   "(docs/filters.md; `lookalike info` lists the fields).")
TokenOpt = typer.Option(None, "--milvus-token",
                        help="Token (or user:password) for a milvus:http(s)://... store [default: $LOOKALIKE_MILVUS_TOKEN].")


def exit_code(e: LookalikeError) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(e, kind))


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Every user error becomes one line on stderr and its exit code, never a traceback."""
    try:
        yield
    except LookalikeError as e:
        err.print(f"error: {e}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(exit_code(e)) from None
    except KeyboardInterrupt:
        err.print("interrupted: every finished batch is saved; run the same command again to finish")
        raise typer.Exit(EXIT_INTERRUPTED) from None


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Option values checked by the engine (engine/params.py) before a library is opened are
    usage errors: Typer's usage message and exit code 2, like a value of the wrong type."""
    try:
        yield
    except InvalidQuery as e:
        raise typer.BadParameter(str(e)) from None


def store_spec(store: Optional[str], directory: Path, token: Optional[str]):
    """The store to open: a spec string, or a store opened here when it needs a Milvus token."""
    store = store or default_store()
    token = token or milvus_token()
    if token and store and store.startswith("milvus:"):
        from ..store import open_store

        return open_store(store, directory, token=token)
    return store


def open_library(library: Optional[Path], store: Optional[str], model: Optional[str] = None, create: bool = False,
                 token: Optional[str] = None) -> Library:
    from ..engine import Library

    directory = library or default_library()
    return Library.open(directory, model=model, store=store_spec(store, directory, token), create=create)


def _version(value: bool) -> None:
    if value:
        out.print(f"lookalike {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """Lookalike: find images that look alike, by what they show."""
