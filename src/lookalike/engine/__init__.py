"""The engine: the one place that combines an extractor and a store. CLI, REST API, web
page, evaluation and benchmarks are thin shells over `Library`.

Lazy like the package root: `engine.params` (validation) can be imported without loading
ONNX Runtime, OpenCV or faiss; the names below load their modules on first use."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AddReport": ".library", "Hit": ".library", "Library": ".library",
    "DuplicateGroup": ".duplicates", "DuplicateReport": ".duplicates", "DuplicateThresholds": ".params",
    "match_labels": ".tags",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .duplicates import DuplicateGroup, DuplicateReport  # noqa: F401
    from .library import AddReport, Hit, Library  # noqa: F401
    from .params import DuplicateThresholds  # noqa: F401
    from .tags import match_labels  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lookalike.engine' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value
