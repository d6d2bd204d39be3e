"""The architecture's one rule, checked on every import in src/: each layer imports only the
layers below it, and the shells (cli/, api/) reach the store only through the engine."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "lookalike"
# Lower numbers sit lower; a module may import its own layer or any lower one.
LAYER = {"errors": 0, "config": 0, "extras": 0, "imaging": 1, "filters": 1, "medical": 1, "models": 2, "store": 3,
         "engine": 4, "eval": 5, "training": 5, "demo": 5, "cli": 6, "api": 6, "web": 6}
IMPORT = re.compile(r"^\s*from (\.+)([\w.]*) import (.+)$")


def _imports(path: Path) -> list[tuple[str, str]]:
    """(imported top-level package of lookalike, source line) for each relative import."""
    rel = path.relative_to(SRC)
    found = []
    for line in path.read_text().splitlines():
        m = IMPORT.match(line)
        if not m:
            continue
        dots, module = len(m.group(1)), m.group(2)
        base = list(rel.parts[:-1])[: len(rel.parts) - dots]
        target = base + (module.split(".") if module else [])
        if target:
            found.append((target[0], line.strip()))
        else:  # "from .. import config, errors"
            found += [(name.strip().split(" as ")[0], line.strip()) for name in m.group(3).strip("()").split(",")]
    return found


def test_each_layer_imports_only_downward():
    upward = []
    for path in SRC.rglob("*.py"):
        own = path.relative_to(SRC).parts[0].removesuffix(".py")
        if own not in LAYER:
            continue  # the package root and __main__ may import anything
        upward += [(str(path.relative_to(SRC)), line) for target, line in _imports(path)
                   if target in LAYER and LAYER[target] > LAYER[own]]
    assert upward == []


def test_shells_never_touch_the_store_directly():
    reaching = [(str(p.relative_to(SRC)), n) for shell in ("cli", "api") for p in (SRC / shell).rglob("*.py")
                for n, line in enumerate(p.read_text().splitlines(), 1)
                if re.search(r"\blib\.store\b|\.lib\.store\b|from \.\.store\.(embedded|milvus)", line)]
    assert reaching == []
