"""Acting on duplicates: the keep policy, disjoint groups, moving or trashing what is not
kept (a dry run unless --yes), and undo. Real photos, the real model, a real library, the
real `lookalike` command and the real freedesktop trash (in a temporary XDG_DATA_HOME)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from lookalike import Library
from lookalike.demo.samples import save_jpeg
from lookalike.engine.cleanup import Choice
from lookalike.engine.keep_policy import KeepPolicy, capture_time, has_copy_marker
from lookalike.errors import Conflict, InvalidQuery
from lookalike.store import ImageRecord
from tests.support.cli import run

OLD = 1_500_000_000  # 2017: the originals are the oldest files


@pytest.fixture
def photo_lib(tmp_path, photos) -> tuple[Path, Path]:
    """photos/ with an exact copy, a resized re-encode and a half-size copy, indexed."""
    pics = tmp_path / "photos"
    for name in ("coffee", "rocket", "chelsea", "astronaut"):
        save_jpeg(photos[name], pics / f"{name}.jpg", 90)
    shutil.copyfile(pics / "coffee.jpg", pics / "coffee copy.jpg")
    rocket, cat = photos["rocket"], photos["chelsea"]
    save_jpeg(rocket.resize((rocket.width * 3 // 4, rocket.height * 3 // 4)), pics / "export" / "rocket (1).jpg", 60)
    save_jpeg(cat.resize((cat.width // 2, cat.height // 2)), pics / "export" / "chelsea-small.jpg", 70)
    for f in pics.rglob("*.jpg"):
        os.utime(f, (OLD, OLD))  # same times: the path criterion decides between byte copies
    os.utime(pics / "export" / "chelsea-small.jpg", (OLD - 86400, OLD - 86400))  # the small one is older
    with Library.open(tmp_path / "lib") as lib:
        assert lib.add([pics]).failed == []
    return pics, tmp_path / "lib"


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_groups_are_disjoint_and_name_one_keeper_by_policy(photo_lib):
    pics, lib_dir = photo_lib
    with Library.open(lib_dir, create=False) as lib:
        report = lib.duplicates()
        by_keeper = {Path(g.keeper.path).name: g for g in report.groups}
        # default policy: most pixels, then oldest, then the tidy name
        assert set(by_keeper) == {"coffee.jpg", "rocket.jpg", "chelsea.jpg"}
        assert [m.match for m in by_keeper["coffee.jpg"].members] == [None, "exact"]
        assert by_keeper["rocket.jpg"].tier == "near" and by_keeper["rocket.jpg"].members[1].match == "near"
        ids = [m.id for g in report.groups for m in g.members]
        assert len(ids) == len(set(ids))  # every image in one group at most
        assert all([m.keep for m in g.members] == [True] + [False] * (len(g.members) - 1) for g in report.groups)
        # "oldest" first keeps the older, smaller cat
        oldest = lib.duplicates(keep="oldest,resolution")
        cat = next(g for g in oldest.groups if "chelsea" in g.keeper.path)
        assert Path(cat.keeper.path).name == "chelsea-small.jpg" and oldest.to_dict()["keep_policy"] == "oldest,resolution"
        with pytest.raises(InvalidQuery, match="unknown keep criterion 'biggest'"):
            lib.duplicates(keep="biggest")


def test_a_deleted_file_is_not_in_any_group(photo_lib):
    pics, lib_dir = photo_lib
    os.remove(pics / "coffee copy.jpg")
    with Library.open(lib_dir, create=False) as lib:
        groups = lib.duplicates().groups
    assert {Path(g.keeper.path).name for g in groups} == {"rocket.jpg", "chelsea.jpg"}
    assert all(os.path.exists(m.path) for g in groups for m in g.members)


def test_keep_policy_reads_the_taken_field_and_copy_markers():
    def rec(path: str, w: int = 100, mtime: float = OLD, **fields) -> ImageRecord:
        return ImageRecord(path, "0" * 64, 1000, mtime, w, w, id=len(path), fields=fields)

    shot = rec("/p/b.jpg", mtime=OLD + 10, taken="2015-06-01T10:00:00")
    later = rec("/p/a.jpg", mtime=OLD)
    assert capture_time(shot) < capture_time(later)  # the capture time beats the file's mtime
    assert capture_time(rec("/p/c.jpg", taken="not a date")) == OLD
    policy = KeepPolicy.parse("oldest")
    assert min([later, shot], key=policy.order) is shot
    assert all(has_copy_marker(p) for p in ("/p/x copy.jpg", "/p/Copy of x.jpg", "/p/x (1).jpg", "/p/copies/x.jpg"))
    assert not has_copy_marker("/p/copper/x.jpg".replace("copper", "cop-per"))
    tidy = KeepPolicy.parse("path")
    assert min([rec("/p/IMG_1 (1).jpg"), rec("/p/long/folder/IMG_1.jpg")], key=tidy.order).path == "/p/long/folder/IMG_1.jpg"


def test_nothing_moves_without_yes(photo_lib, tmp_path):
    pics, lib_dir = photo_lib
    before = tree(pics)
    for action in (["--move-to", tmp_path / "aside"], ["--trash"]):
        proc = run("duplicates", "-l", lib_dir, *action, env={"XDG_DATA_HOME": str(tmp_path / "xdg")})
        assert proc.returncode == 0, proc.stderr.decode()
        assert b"dry run: 3 files" in proc.stderr and b"Add --yes" in proc.stderr
    assert tree(pics) == before and not (tmp_path / "aside").exists() and not (tmp_path / "xdg").exists()
    assert not (lib_dir / "undo").exists()


def test_move_keeps_every_keeper_and_undo_restores_every_file(photo_lib, tmp_path):
    pics, lib_dir = photo_lib
    before = tree(pics)
    aside = tmp_path / "aside"
    proc = run("duplicates", "-l", lib_dir, "--move-to", aside, "--yes", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(proc.stdout)
    keepers = {m["path"] for g in data["groups"] for m in g["members"] if m["keep"]}
    moved = {a["path"]: a["dest"] for a in data["action"]["actions"]}
    assert len(moved) == 3 and not keepers & set(moved)
    after = tree(pics)
    assert all(str(Path(k).relative_to(pics)) in after for k in keepers)  # a keeper is never moved
    for src, dest in moved.items():
        rel = str(Path(src).relative_to(pics))
        assert rel not in after and hashlib.sha256(Path(dest).read_bytes()).hexdigest() == before[rel]
    assert (aside / "export" / "rocket (1).jpg").exists()  # sub-folders mirrored
    with Library.open(lib_dir, create=False) as lib:  # the library follows: set-aside images leave it
        assert all(lib.store.find_path(d) is None and lib.store.find_path(s) is None for s, d in moved.items())
        assert len(lib) == 4 and lib.duplicates().groups == []
    # no --library: the log names its library
    undo = run("duplicates", "--undo", data["action"]["log"], env={"LOOKALIKE_LIBRARY": str(tmp_path / "elsewhere")})
    assert undo.returncode == 0, undo.stderr.decode()
    assert b"restored 3 files, 0 not restored" in undo.stderr
    assert tree(pics) == before
    with Library.open(lib_dir, create=False) as lib:
        assert all(lib.store.find_path(s) is not None for s in moved) and len(lib) == 7
        assert {Path(g.keeper.path).name for g in lib.duplicates().groups} == {"coffee.jpg", "rocket.jpg", "chelsea.jpg"}
    again = run("duplicates", "-l", lib_dir, "--undo", data["action"]["log"])  # nothing left to undo
    assert again.returncode == 1 and b"a file is already there" in again.stderr


def test_trash_and_undo(photo_lib, tmp_path):
    pics, lib_dir = photo_lib
    before = tree(pics)
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = run("duplicates", "-l", lib_dir, "--trash", "--yes", "--json", "--tier", "exact", env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    action = json.loads(proc.stdout)["action"]
    assert [Path(a["path"]).name for a in action["actions"]] == ["coffee copy.jpg"]
    assert (tmp_path / "xdg" / "Trash" / "files" / "coffee copy.jpg").exists() and not (pics / "coffee copy.jpg").exists()
    with Library.open(lib_dir, create=False) as lib:
        assert len(lib) == 6  # a trashed image is forgotten
    undo = run("duplicates", "-l", lib_dir, "--undo", action["log"], env=env)
    assert undo.returncode == 0, undo.stderr.decode()
    assert tree(pics) == before and list((tmp_path / "xdg" / "Trash" / "info").iterdir()) == []
    with Library.open(lib_dir, create=False) as lib:
        assert len(lib) == 7 and lib.store.find_path(str(pics / "coffee copy.jpg")) is not None


def test_engine_refuses_unsafe_choices_and_skips_changed_files(photo_lib, tmp_path):
    pics, lib_dir = photo_lib
    with Library.open(lib_dir, create=False) as lib:
        groups = lib.duplicates().groups
        a, b = groups[0].members[0].id, groups[0].members[1].id
        with pytest.raises(Conflict, match="both kept and to be removed"):
            lib.cleanup([Choice(a, [b]), Choice(b, [a])], "trash")
        with pytest.raises(InvalidQuery):
            lib.cleanup([Choice(a, [b])], "shred")
        changed = groups[0].members[1].path
        plan = lib.cleanup([Choice(a, [b])], "move", tmp_path / "aside")
        assert plan.dry_run and len(plan.actions) == 1
        with open(changed, "ab") as f:
            f.write(b"\0")  # edited after the report: must not be acted on
        done = lib.cleanup([Choice(a, [b])], "move", tmp_path / "aside", dry_run=False)
        assert done.actions == [] and done.skipped[0][0] == changed and "changed since it was indexed" in done.skipped[0][1]
        assert os.path.exists(changed) and done.log is None


def test_cli_refuses_bad_combinations(photo_lib, tmp_path):
    _, lib_dir = photo_lib
    for args, needle in ((["--trash", "--move-to", tmp_path], b"choose one of --move-to and --trash"),
                         (["--keep", "prettiest"], b"unknown keep criterion 'prettiest'"),
                         (["--undo", tmp_path / "nope.jsonl"], b"no such undo log")):
        proc = run("duplicates", "-l", lib_dir, *args)
        assert proc.returncode in (1, 2) and needle in proc.stderr and b"Traceback" not in proc.stderr, proc.stderr
    (tmp_path / "bad.jsonl").write_text('{"hello": 1}\n')
    proc = run("duplicates", "-l", lib_dir, "--undo", tmp_path / "bad.jsonl")
    assert proc.returncode in (1, 2) and b"not a Lookalike undo log" in proc.stderr
