"""Lookalike: reverse image search on deep CNN features."""

from .engine import AddReport, Hit, Library
from .errors import ImageLoadError, LookalikeError, ModelMismatchError


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
__all__ = ["AddReport", "Hit", "ImageLoadError", "Library", "LookalikeError", "ModelMismatchError"]
