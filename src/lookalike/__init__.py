"""Lookalike: reverse image search on deep CNN features.

The package root is lazy: `import lookalike` loads nothing heavy; `lookalike.Library` and the
other names below import the engine (ONNX Runtime, faiss, ...) on first use."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any


def _version() -> str:
    """pyproject.toml is the one place the version is set: read it when running from a source
    tree (whatever an older install's metadata says), else the installed distribution's."""
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file() and Path(__file__).resolve().parent.parent.name == "src":
        import tomllib

        try:
            project = tomllib.loads(pyproject.read_text()).get("project", {})
            if project.get("name") == "lookalike":
                return str(project["version"])
        except (OSError, tomllib.TOMLDecodeError, KeyError):
            pass
    try:
        return version("lookalike")
    except PackageNotFoundError:
        return "0.0.0+unknown"


__version__ = _version()
# public name -> module that defines it
_EXPORTS = {
    "Library": ".engine", "Hit": ".engine", "AddReport": ".engine",
    "LookalikeError": ".errors", "InvalidQuery": ".errors", "NotFound": ".errors", "Conflict": ".errors",
    "TooLarge": ".errors", "Unsupported": ".errors", "Forbidden": ".errors", "Busy": ".errors", "ReadOnly": ".errors",
    "ModelMismatch": ".errors", "MissingExtra": ".errors", "ImageLoadError": ".errors", "ModelMismatchError": ".errors",
    "LibraryBusyError": ".errors",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .engine import AddReport, Hit, Library  # noqa: F401
    from .errors import (  # noqa: F401
        Busy,
        Conflict,
        Forbidden,
        ImageLoadError,
        InvalidQuery,
        LibraryBusyError,
        LookalikeError,
        MissingExtra,
        ModelMismatch,
        ModelMismatchError,
        NotFound,
        ReadOnly,
        TooLarge,
        Unsupported,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lookalike' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
