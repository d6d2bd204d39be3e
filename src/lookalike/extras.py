"""Optional dependencies: import one, or fail with a one-line `pip install 'lookalike[extra]'`."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtra


def require(module: str, feature: str, extra: str) -> ModuleType:
    """Import `module` (part of the `extra` install), or raise MissingExtra naming the pip
    command. Only a missing top-level package maps to MissingExtra; a broken install of a
    present package still raises its own error, which is a different problem."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and e.name.split(".")[0] == module.split(".")[0]:
            raise MissingExtra(feature, extra) from None
        raise
