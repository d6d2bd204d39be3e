"""Exceptions shared by every layer, typed so the shells map them without reading messages.

`LookalikeError` is a user-facing error: its message is one line the CLI, API and web page
show as-is (no traceback). Each subclass says *what kind* of problem it is; the CLI maps the
type to an exit code and the REST API to an HTTP status (`cli/` and `api/` own those tables).
This module imports nothing heavy: `import lookalike.errors` must stay cheap."""

from __future__ import annotations


class LookalikeError(Exception):
    """An error caused by input or state the user can fix; the message says how."""


class InvalidQuery(LookalikeError):
    """A parameter or query is malformed or out of range (filter syntax, dates, k, crop box, ...).
    `position` is the 0-based character offset of the offending token where there is one."""

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class NotFound(LookalikeError):
    """An id, item, path or library that does not exist."""


class Conflict(LookalikeError):
    """The request contradicts the current state (e.g. a file changed since it was indexed)."""


class TooLarge(LookalikeError):
    """Input over a configured limit (bytes, pixels, frames)."""


class Unsupported(LookalikeError):
    """A format or kind of input Lookalike does not handle (names what it is)."""


class Forbidden(LookalikeError):
    """Refused by policy (e.g. a URL to a private address, a write on a keyless server)."""


class Busy(LookalikeError):
    """Another process holds the library's write lock for too long: retry later."""


class ReadOnly(LookalikeError):
    """The library cannot be written (read-only file system, permissions, full disk)."""


class ModelMismatch(LookalikeError):
    """A library built with one model (or model build) was used with another."""


class MissingExtra(LookalikeError):
    """An optional dependency is not installed; the message names the `pip install` to run."""

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(f"{feature} needs an optional dependency: pip install 'lookalike[{extra}]'")
        self.extra = extra


class ImageLoadError(LookalikeError):
    """An image could not be read or decoded; `reason` is a short phrase for summaries.
    `kind` says which sort of failure it is, so shells never parse `reason`:
    "invalid" (empty, truncated, corrupt, too many pixels, missing file), "unsupported"
    (not an image format we read), "too_large" (a download over its byte limit) or
    "unreachable" (a URL that could not be fetched)."""

    KINDS = ("invalid", "unsupported", "too_large", "unreachable")

    def __init__(self, source: str, reason: str, *, kind: str = "invalid") -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.kind = kind if kind in self.KINDS else "invalid"


# Names older code and users' scripts import.
ModelMismatchError = ModelMismatch
LibraryBusyError = Busy
