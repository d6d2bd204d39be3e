"""Keeping a library current while files are added, changed, moved and deleted: `Watcher`.

File-system events (watchdog: inotify, FSEvents, ReadDirectoryChangesW) only mark paths as
pending. A path is acted on once it has been quiet for `debounce` seconds: no new event and
the same size and modification time on two looks that far apart, so a file still being
copied or downloaded is never read half-way. Pending paths that settle together form one
batch, applied through the same `Library.add` / `Library.remove` that `lookalike index`
uses (same crash safety: each model batch is one store transaction). Existing paths are
added first, then missing ones removed, so a move within the watched folders is recognised
by content (no model run) rather than forgotten and re-embedded.

On start, a catch-up scan (`Library.add(roots, prune=True)`) picks up whatever changed while
nobody was watching."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import LookalikeError, MissingExtra, NotFound
from ..imaging import is_image_name
from .indexer import AddReport
from .scan import absolute, printable

if TYPE_CHECKING:
    from .library import Library

DEFAULT_DEBOUNCE = 2.0  # seconds a path must stay unchanged before it is read


@dataclass
class WatchBatch:
    """What one settled batch of changes did to the library."""

    report: AddReport
    removed: int = 0
    paths: list[str] = field(default_factory=list)  # the settled paths, for messages

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "removed": self.removed,
                "paths": [printable(p, controls=False) for p in self.paths]}


@dataclass
class _Pending:
    since: float  # when the path last changed (event or a different stat)
    stat: tuple[int, int] | None  # (size, mtime_ns); None while it does not exist


class Watcher:
    def __init__(self, lib: Library, roots: Sequence[str | os.PathLike], *, debounce: float = DEFAULT_DEBOUNCE,
                 lock: threading.Lock | None = None, on_batch: Callable[[WatchBatch], None] | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.lib = lib
        self.roots = [absolute(r) for r in roots]
        for r in self.roots:
            if not os.path.isdir(r):
                raise NotFound(f"{printable(r)}: not a folder (watch takes folders)")
        self.debounce = debounce
        self.lock = lock or threading.Lock()  # held while writing: share it with other writers (the API)
        self.on_batch = on_batch or (lambda batch: None)
        self.on_error = on_error or (lambda message: None)
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: Any = None  # a watchdog Observer once started (watchdog is an optional extra)
        self._thread: threading.Thread | None = None
        self._skip = absolute(lib.directory).rstrip(os.sep) + os.sep

    # -- life cycle -----------------------------------------------------------------------------
    def catch_up(self) -> AddReport:
        """Index what changed while nobody watched; forget what was deleted."""
        with self.lock:
            return self.lib.add(self.roots, prune=True)

    def start(self, catch_up: bool = True) -> AddReport | None:
        """Start watching (events first, so nothing slips between the scan and the watch),
        then catch up, then settle batches in a background thread."""
        self._start_observer()
        report = self.catch_up() if catch_up else None
        self._thread = threading.Thread(target=self._loop, name="lookalike-watch", daemon=True)
        self._thread.start()
        return report

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def wait(self) -> None:
        """Block until `stop` (or Ctrl-C in the caller)."""
        while not self._stop.wait(0.5):
            pass

    # -- events ---------------------------------------------------------------------------------
    def _start_observer(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            raise MissingExtra("watching folders", "watch") from None
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if event.is_directory and event.event_type in ("modified", "closed", "attrib"):
                    return  # a folder's own times change with its contents; the files say what changed
                watcher.mark(os.fsdecode(event.src_path))
                if event.dest_path:
                    watcher.mark(os.fsdecode(event.dest_path))

        observer = Observer()
        for r in self.roots:
            observer.schedule(Handler(), r, recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def mark(self, path: str) -> None:
        """Note that `path` changed (called from the observer's thread)."""
        if not self._relevant(path):
            return
        with self._pending_lock:
            self._pending[path] = _Pending(time.monotonic(), _stat(path))

    def _relevant(self, path: str) -> bool:
        if path.startswith(self._skip):
            return False  # the library's own files (uploads, thumbnails, the store)
        root = next((r for r in self.roots if path == r or path.startswith(r.rstrip(os.sep) + os.sep)), None)
        if root is None:
            return False
        parts = Path(os.path.relpath(path, root)).parts
        if any(p.startswith(".") for p in parts):
            return False  # hidden files and folders, editors' and downloaders' temporary files
        return os.path.isdir(path) or is_image_name(parts[-1] if parts else path) or not os.path.exists(path)

    # -- settling -------------------------------------------------------------------------------
    def _loop(self) -> None:
        tick = max(0.05, min(0.5, self.debounce / 4))
        while not self._stop.wait(tick):
            try:
                self.settle()
            except Exception as e:  # never let one bad batch end the watch
                self.on_error(f"{type(e).__name__}: {e}")

    def settle(self, now: float | None = None) -> WatchBatch | None:
        """Apply the paths that have been quiet for `debounce` seconds, if any."""
        now = time.monotonic() if now is None else now
        ready: list[str] = []
        with self._pending_lock:
            for path, p in list(self._pending.items()):
                st = _stat(path)
                if st != p.stat:  # still being written (or replaced): wait a full interval more
                    p.stat, p.since = st, now
                elif now - p.since >= self.debounce:
                    ready.append(path)
                    del self._pending[path]
        if not ready:
            return None
        present = sorted(p for p in ready if os.path.exists(p) and (os.path.isdir(p) or is_image_name(os.path.basename(p))))
        missing = sorted(p for p in ready if not os.path.lexists(p))
        if not present and not missing:
            return None
        batch = WatchBatch(AddReport(), paths=present + missing)
        try:
            with self.lock:
                if present:
                    batch.report = self.lib.add(present)
                gone = [p for p in missing if self.lib.is_indexed(p)]
                if gone:
                    batch.removed = self.lib.remove(gone)
        except LookalikeError as e:  # busy or read-only for now: try these paths again later
            with self._pending_lock:
                for path in ready:
                    self._pending.setdefault(path, _Pending(now, _stat(path)))
            self.on_error(str(e))
            return None
        self.on_batch(batch)
        return batch


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)
