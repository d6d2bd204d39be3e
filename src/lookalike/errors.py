"""Exceptions shared by every layer.

`LookalikeError` is a user-facing error: its message is one line the CLI, API and web page
show as-is (no traceback)."""

from __future__ import annotations


class LookalikeError(Exception):
    """An error caused by input or state the user can fix; the message says how."""


class ImageLoadError(LookalikeError):
    """An image could not be read or decoded; `reason` is a short phrase for summaries."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class ModelMismatchError(LookalikeError):
    """A library built with one model was used with another."""


class LibraryBusyError(LookalikeError):
    """Another process holds the library's write lock for too long."""
