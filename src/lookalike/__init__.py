"""Lookalike: reverse image search on deep CNN features."""

from .engine import AddReport, Hit, Library
from .errors import ImageLoadError, LookalikeError, ModelMismatchError

__version__ = "0.1.0"
__all__ = ["AddReport", "Hit", "ImageLoadError", "Library", "LookalikeError", "ModelMismatchError"]
