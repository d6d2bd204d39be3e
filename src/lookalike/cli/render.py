"""Rendering helpers the commands share: file paths as terminal hyperlinks, tables that are
not wrapped mid-path when the output is piped."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 100_000  # piped output: as wide as the rows need, one line per row


def path_text(path: str) -> Text:
    """A path as plain text (never parsed as markup) that is a `file://` hyperlink on
    terminals that support them; Rich drops the link when the output is not a terminal."""
    from ..engine.scan import printable  # the engine loads when a command runs, not on import

    text = Text(printable(path))
    try:
        uri = Path(path).absolute().as_uri()
    except ValueError:  # not an absolute path we can link
        return text
    text.stylize(f"link {uri}")
    return text


def print_table(console: Console, table: Table) -> None:
    """On a terminal, fit the table to it; piped, keep every row on one line so that paths
    are never cut or wrapped (scripts and `grep` see whole paths)."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    console.width = PIPE_WIDTH  # Console.print(width=) cannot exceed the console's own width
    try:
        console.print(table, crop=False)
    finally:
        console.width = width


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 result`, `2 results`."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
