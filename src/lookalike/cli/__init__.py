"""`lookalike` command line: thin shells over `Library`, one module per command group.
Importing this package loads no heavy runtime; each command imports the engine when it runs."""

from __future__ import annotations

from importlib import import_module

from .app import app

# Imported for their @app.command() registrations, in the order `lookalike --help` lists them.
for _module in ("index", "watch", "search", "words", "duplicates", "info", "explain", "migrate", "serve",
                "evaluation", "finetune", "scans", "catalogue"):
    import_module(f".{_module}", __name__)


def main() -> None:
    app(prog_name="lookalike")


__all__ = ["app", "main"]
