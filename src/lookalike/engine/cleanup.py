"""Acting on duplicates: move the images a user does not keep into a folder, or send them to
the system trash, writing an undo log that `undo` replays.

Safety rules, each enforced here rather than in the shells:
- a keeper is never acted on (an id kept in one choice and removed in another is refused);
- a file that changed since it was indexed (size or modification time differ) or is gone is
  skipped, never acted on: the duplicate report no longer describes it;
- nothing happens on a dry run (the shells' default);
- every action is appended to the undo log (JSON lines, flushed and fsynced) as soon as it
  is done, so an interrupted run can still be undone;
- the library follows: a moved or trashed image is forgotten (set aside, it is no longer
  part of the collection, so it stops showing up in searches and duplicate reports); undo
  puts the file back and indexes it again (no model run for a byte copy of a kept image).

On Linux (freedesktop trash) the log records where the trashed file went, so undo restores
it; on other systems undo says to restore it from the system trash."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence
from urllib.parse import unquote

from ..config import xdg_data_home
from ..errors import Conflict, InvalidQuery, LookalikeError, MissingExtra, NotFound
from ..store import ImageRecord, Upsert
from .duplicates import DuplicateReport
from .scan import absolute, printable

if TYPE_CHECKING:
    from .library import Library

MODES = ("move", "trash")
LOG_VERSION = 1
UNDO_DIR = "undo"  # default home of undo logs, inside the library directory


@dataclass
class Choice:
    """One group's decision: keep `keep`, act on `remove`."""

    keep: int
    remove: list[int]


@dataclass
class Action:
    id: int
    path: str
    keeper: int  # the id kept in its place
    dest: str | None = None  # where a move puts it; None for the trash

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = printable(self.path, controls=False)
        if self.dest is not None:
            d["dest"] = printable(self.dest, controls=False)
        return d


@dataclass
class CleanupReport:
    mode: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)  # planned (dry run) or done
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    log: str | None = None  # the undo log written (None on a dry run or when nothing was done)
    bytes: int = 0  # total size of the files acted on

    def to_dict(self) -> dict:
        return {"mode": self.mode, "dry_run": self.dry_run, "actions": [a.to_dict() for a in self.actions],
                "skipped": [{"path": printable(p, controls=False), "reason": r} for p, r in self.skipped],
                "log": self.log, "bytes": self.bytes}


@dataclass
class UndoReport:
    restored: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"restored": [printable(p, controls=False) for p in self.restored],
                "skipped": [{"path": printable(p, controls=False), "reason": r} for p, r in self.skipped]}


def choices_from_report(report: DuplicateReport) -> list[Choice]:
    """Keep each group's keeper, act on the rest."""
    return [Choice(g.keeper.id, [m.id for m in g.members[1:]]) for g in report.groups]


def plan(lib: Library, choices: Sequence[Choice], mode: str, move_to: str | os.PathLike | None = None) -> CleanupReport:
    """The actions `choices` ask for, checked against the library (nothing is touched)."""
    if mode not in MODES:
        raise InvalidQuery(f"unknown action {mode!r}: choose from {', '.join(MODES)}")
    if (mode == "move") != (move_to is not None):
        raise InvalidQuery("a move needs a destination folder" if mode == "move" else "only a move takes a destination folder")
    for i in (i for c in choices for i in (c.keep, *c.remove)):
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 2**63:
            raise InvalidQuery(f"{i!r} is not an image id")
    kept = {c.keep for c in choices}
    removed: list[int] = [i for c in choices for i in c.remove]
    both = kept & set(removed)
    if both:
        raise Conflict(f"image {min(both)} is both kept and to be removed: a keeper is never moved or trashed")
    if len(set(removed)) != len(removed):
        raise InvalidQuery("an image is listed for removal twice")
    records = lib.store.get(sorted(kept | set(removed)))
    missing = sorted((kept | set(removed)) - set(records))
    if missing:
        raise NotFound(f"no image with id {missing[0]} in this library")
    report = CleanupReport(mode, dry_run=True)
    dest_root = absolute(move_to) if move_to is not None else None
    todo = [(records[i], c.keep) for c in choices for i in c.remove]
    if dest_root is not None:
        outside = {r.id for r, _ in todo if not _under(r.path, dest_root)}
        report.skipped += [(r.path, f"already in {dest_root}") for r, _ in todo if r.id not in outside]
        base = os.path.commonpath([os.path.dirname(r.path) for r, _ in todo if r.id in outside]) if outside else ""
        taken: set[str] = set()
        for rec, keeper in todo:
            if rec.id in outside:
                dest = _free_name(os.path.join(dest_root, os.path.relpath(rec.path, base)), taken)
                taken.add(dest)
                report.actions.append(Action(rec.stored_id, rec.path, keeper, dest))
    else:
        report.actions = [Action(rec.stored_id, rec.path, keeper) for rec, keeper in todo]
    report.bytes = sum(records[a.id].size for a in report.actions)
    return report


def apply(lib: Library, planned: CleanupReport, log_path: str | os.PathLike | None = None) -> CleanupReport:
    """Carry out a plan; returns what was done. The undo log goes to `log_path` (default:
    <library>/undo/duplicates-<time>.jsonl)."""
    trash = _send2trash() if planned.mode == "trash" else None
    done = CleanupReport(planned.mode, dry_run=False, skipped=list(planned.skipped))
    records = lib.store.get([a.id for a in planned.actions])
    log = Path(log_path) if log_path is not None else lib.directory / UNDO_DIR / \
        f"duplicates-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.jsonl"
    writer: _LogWriter | None = None
    try:
        for a in planned.actions:
            rec = records.get(a.id)
            reason = _unchanged(rec, a.path)
            if reason:
                done.skipped.append((a.path, reason))
                continue
            assert rec is not None
            if writer is None:
                writer = _LogWriter(log, lib, planned.mode)
            try:
                entry = _move(a, rec) if a.dest is not None else _trash(a, rec, trash)
                lib.store.write(removes=[a.id])
            except OSError as e:
                done.skipped.append((a.path, f"could not {planned.mode} it ({e.strerror or e})"))
                continue
            writer.append(entry)
            done.actions.append(a)
            done.bytes += rec.size
    finally:
        if writer is not None:
            writer.close()
            done.log = str(log)
    return done


def undo(lib: Library, log_path: str | os.PathLike) -> UndoReport:
    """Put back every file an undo log names, newest action first; the library follows."""
    entries = _read_log(Path(log_path))
    report = UndoReport()
    for e in reversed(entries):
        src = e["from"]
        if os.path.lexists(src):
            report.skipped.append((src, "a file is already there"))
            continue
        held = e.get("to") if e["op"] == "move" else e.get("trash_file")
        if not held:
            report.skipped.append((src, "it went to the system trash: restore it from there"))
            continue
        if not os.path.exists(held):
            report.skipped.append((src, f"{held} is gone"))
            continue
        try:
            os.makedirs(os.path.dirname(src), exist_ok=True)
            shutil.move(held, src)
        except OSError as err:
            report.skipped.append((src, f"could not restore it ({err.strerror or err})"))
            continue
        if e["op"] == "trash" and e.get("trash_info"):
            Path(e["trash_info"]).unlink(missing_ok=True)
        _follow_back(lib, e, src)
        report.restored.append(src)
    return report


def log_library(log_path: str | os.PathLike) -> str | None:
    """The library an undo log was written for (its header), if it says."""
    try:
        with open(log_path, encoding="utf-8") as f:
            header = json.loads(f.readline() or "null")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return header.get("library") if isinstance(header, dict) and isinstance(header.get("library"), str) else None


# -- helpers ------------------------------------------------------------------------------------
def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _free_name(dest: str, taken: set[str]) -> str:
    """`dest`, or `name (2).ext`, ... when a file is already there or planned."""
    stem, ext = os.path.splitext(dest)
    n, candidate = 1, dest
    while candidate in taken or os.path.lexists(candidate):
        n += 1
        candidate = f"{stem} ({n}){ext}"
    return candidate


def _unchanged(rec: ImageRecord | None, path: str) -> str | None:
    """Why a planned file must not be touched, or None."""
    if rec is None or rec.path != path:
        return "no longer indexed at this path"
    try:
        st = os.stat(path)
    except OSError:
        return "the file is gone"
    if st.st_size != rec.size or st.st_mtime != rec.mtime:
        return "the file changed since it was indexed (run `lookalike index` and look again)"
    return None


def _move(a: Action, rec: ImageRecord) -> dict:
    assert a.dest is not None
    os.makedirs(os.path.dirname(a.dest), exist_ok=True)
    if os.path.lexists(a.dest):
        raise FileExistsError(17, "a file appeared at the destination", a.dest)
    shutil.move(a.path, a.dest)  # a rename on one file system; copy (times kept) and delete across
    return {"op": "move", "id": a.id, "from": a.path, "to": a.dest, "keeper": a.keeper, "sha256": rec.sha256}


def _trash(a: Action, rec: ImageRecord, send2trash) -> dict:
    before = time.time()
    send2trash(a.path)
    file, info = _find_in_trash(a.path, before)
    return {"op": "trash", "id": a.id, "from": a.path, "trash_file": file, "trash_info": info,
            "keeper": a.keeper, "sha256": rec.sha256}


def _send2trash():
    try:
        from send2trash import send2trash
    except ImportError:
        raise MissingExtra("moving duplicates to the trash", "trash") from None
    return send2trash


def _trash_dirs(path: str) -> Iterable[tuple[Path, Path | None]]:
    """(trash dir, top dir its relative paths start from) per the freedesktop trash spec."""
    yield xdg_data_home() / "Trash", None
    mount = os.path.realpath(os.path.dirname(path))
    while not os.path.ismount(mount):
        mount = os.path.dirname(mount)
    yield Path(mount) / ".Trash" / str(os.getuid()), Path(mount)
    yield Path(mount) / f".Trash-{os.getuid()}", Path(mount)


def _find_in_trash(path: str, since: float) -> tuple[str | None, str | None]:
    """Where send2trash put `path` (freedesktop trash), by its .trashinfo; None elsewhere."""
    if os.name != "posix" or not hasattr(os, "getuid"):
        return None, None
    best: tuple[float, Path, Path] | None = None
    for trash, top in _trash_dirs(path):
        info_dir = trash / "info"
        if not info_dir.is_dir():
            continue
        for info in info_dir.glob("*.trashinfo"):
            try:
                st = info.stat()
                if st.st_mtime < since - 2:
                    continue
                text = info.read_text("utf-8", "replace")
            except OSError:
                continue
            line = next((ln for ln in text.splitlines() if ln.startswith("Path=")), "")
            original = unquote(line[5:])
            if top is not None and not original.startswith("/"):
                original = str(top / original)
            if os.path.abspath(original) == path and (best is None or st.st_mtime >= best[0]):
                best = (st.st_mtime, info, trash / "files" / info.name.removesuffix(".trashinfo"))
    return (str(best[2]), str(best[1])) if best else (None, None)


class _LogWriter:
    def __init__(self, path: Path, lib: Library, mode: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "a", encoding="utf-8")
        self.append({"lookalike_undo": LOG_VERSION, "library": str(lib.directory.absolute()), "mode": mode,
                     "created": datetime.now(UTC).isoformat(timespec="seconds")})

    def append(self, entry: dict) -> None:
        # surrogateescape-safe: paths that are not UTF-8 round-trip through os.fsencode/fsdecode
        self.f.write(json.dumps(entry, ensure_ascii=True) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


def _read_log(path: Path) -> list[dict]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise NotFound(f"{path}: no such undo log") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LookalikeError(f"{path}: cannot read the undo log ({e})") from None
    entries: list[dict] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                continue  # a line cut short by a crash: the action it named was not recorded
            raise InvalidQuery(f"{path}: line {n} is not JSON: not an undo log") from None
        if n == 1:
            if not isinstance(entry, dict) or entry.get("lookalike_undo") != LOG_VERSION:
                raise InvalidQuery(f"{path}: not a Lookalike undo log (line 1 has no \"lookalike_undo\": {LOG_VERSION})")
            continue
        if not isinstance(entry, dict) or entry.get("op") not in MODES or not isinstance(entry.get("from"), str):
            raise InvalidQuery(f"{path}: line {n} is not an undo entry")
        entries.append(entry)
    return entries


def _follow_back(lib: Library, entry: dict, src: str) -> None:
    """The library follows the file back: indexed again at its old path (a record still at
    the moved-to path, e.g. re-indexed there meanwhile, is moved back instead)."""
    held = entry.get("to")
    rec = lib.store.find_path(held) if held else None
    if rec is not None:
        rec.path, rec.mtime = src, os.stat(src).st_mtime
        lib.store.write([Upsert(rec)])
    else:
        lib.add([src])
