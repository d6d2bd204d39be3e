"""Videos: sampled frames become entries `FILE#t=SECONDS`; a photo finds the video at the
moment it is shown; re-indexing replaces, skips or refreshes a video's frames as a unit;
prune/remove treat a video's frames as its file; unused files are counted by extension."""

from __future__ import annotations

import os
import shutil

import pytest

from lookalike import Library
from lookalike.engine.entries import entry_time, file_of, split_entry
from lookalike.errors import Unsupported
from lookalike.media.video import sample_frames
from tests.support.media import write_jpeg, write_mp4

SCENES = ["astronaut", "coffee", "chelsea", "rocket", "camera"]  # 3 s each, in this order
SECONDS_EACH = 3.0


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("videos")
    write_mp4(root / "clip.mp4", [photos[n] for n in SCENES], SECONDS_EACH, creation_time="2022-07-14T18:30:00.000000Z")
    (root / "stills").mkdir()
    for name in ("coins", "brick", "moon"):
        write_jpeg(root / "stills" / f"{name}.jpg", photos[name])
    (root / "notes.txt").write_text("shopping list")
    (root / "stills" / "layers.psd").write_bytes(b"8BPS" + b"\0" * 64)
    (root / "stills" / "a.xyz").write_bytes(b"x")
    (root / "stills" / "b.xyz").write_bytes(b"y")
    (root / "README").write_text("no extension")
    return root


@pytest.fixture()
def indexed(tmp_path, gallery):
    folder = tmp_path / "media"
    shutil.copytree(gallery, folder, copy_function=shutil.copy2)
    lib = Library.open(tmp_path / "lib")
    report = lib.add([folder])
    yield lib, folder, report
    lib.close()


def test_sampling_keeps_one_frame_per_scene(gallery):
    info = sample_frames(gallery / "clip.mp4")
    assert info.duration == pytest.approx(15.0, abs=0.2) and (info.width, info.height) == (320, 240)
    assert info.created == "2022-07-14T18:30:00+00:00"
    scenes = [int(f.time // SECONDS_EACH) for f in info.frames]
    assert scenes == list(range(len(SCENES)))  # every scene once; repeated candidates of a still shot dropped
    assert all(f.index == round(f.time * info.fps) for f in info.frames)


def test_sampling_is_bounded(gallery):
    every = sample_frames(gallery / "clip.mp4", interval=0.5, min_change=0.0)
    assert len(every.frames) == 30  # 15 s every 0.5 s
    capped = sample_frames(gallery / "clip.mp4", interval=0.5, max_frames=4, min_change=0.0)
    assert len(capped.frames) == 4
    assert [f.time for f in capped.frames] == pytest.approx([0.0, 3.75, 7.5, 11.3], abs=0.11)  # 15 s / 4


def test_seek_sampling_gives_the_same_frames(gallery):
    decoded = sample_frames(gallery / "clip.mp4", interval=2.5, seek_above=1e9)
    sought = sample_frames(gallery / "clip.mp4", interval=2.5, seek_above=0.0)
    assert [f.time for f in sought.frames] == [f.time for f in decoded.frames]
    assert [f.image.tobytes() for f in sought.frames] == [f.image.tobytes() for f in decoded.frames]


def test_keyframe_interval_is_measured(tmp_path, photos):
    import av

    from lookalike.media.video import _keyframe_interval

    dense = write_mp4(tmp_path / "dense.mp4", [photos["coffee"], photos["rocket"]], 3.0, gop=10)  # a keyframe a second
    assert _keyframe_interval(av, str(dense)) == pytest.approx(1.0, abs=0.11)
    # x264 puts a keyframe at each cut (here at 3 s) and otherwise every 250 frames (25 s).
    cut = write_mp4(tmp_path / "cut.mp4", [photos["coffee"], photos["rocket"]], 3.0)
    assert _keyframe_interval(av, str(cut)) == pytest.approx(3.0, abs=0.11)
    still = write_mp4(tmp_path / "still.mp4", [photos["coffee"]], 6.0)  # one keyframe: the probed span
    assert _keyframe_interval(av, str(still)) >= 5.8


def test_photo_finds_the_video_at_the_right_time(indexed, photos):
    lib, folder, report = indexed
    assert report.failed == [] and report.videos == 1 and report.frames == len(SCENES)
    for rank_scene, name in enumerate(SCENES):
        hit = lib.search(photos[name], k=1)[0]
        file, fragment = split_entry(hit.path)
        assert file == str(folder / "clip.mp4"), (name, hit)
        t = entry_time(hit.path)
        assert rank_scene * SECONDS_EACH <= t < (rank_scene + 1) * SECONDS_EACH, (name, hit.path)
        assert hit.score > 0.9


def test_frame_records_and_fields(indexed):
    lib, folder, _ = indexed
    frames = [r for r in lib.records() if file_of(r.path) == str(folder / "clip.mp4")]
    assert len(frames) == len(SCENES)
    st = os.stat(folder / "clip.mp4")
    for r in frames:
        assert (r.size, r.mtime, r.width, r.height) == (st.st_size, st.st_mtime, 320, 240)
        assert r.fields["media"] == "video" and r.fields["video_time"] == entry_time(r.path)
        assert r.fields["duration"] == pytest.approx(15.0, abs=0.2)
        assert r.fields["frame_index"] == round(entry_time(r.path) * 10)
        assert r.fields["taken"] == "2022-07-14T18:30:00+00:00"
        assert (r.fields["name"], r.fields["format"], r.fields["folder"]) == ("clip.mp4", "mp4", str(folder))
    assert len({r.sha256 for r in frames}) == len(frames)  # a frame is its own content


def test_unused_files_counted_by_extension(indexed):
    _, _, report = indexed
    assert report.skipped_types == {".xyz": 2, ".psd": 1, ".txt": 1, "(no extension)": 1}
    assert report.skipped_summary() == "skipped 5 files of unsupported types: .xyz (2), (no extension) (1), .psd (1), .txt (1)"
    assert report.to_dict()["skipped_types"][".xyz"] == 2


def test_reindex_unchanged_touched_and_changed(indexed, photos):
    lib, folder, _ = indexed
    clip = folder / "clip.mp4"
    again = lib.add([folder])
    assert again.unchanged == 4 and again.embedded == 0 and again.videos == 0

    st = os.stat(clip)
    os.utime(clip, (st.st_atime, st.st_mtime + 60))  # touched, same bytes
    touched = lib.add([folder])
    assert touched.embedded == 0 and touched.unchanged == 4
    frames = [r for r in lib.records() if file_of(r.path) == str(clip)]
    assert len(frames) == len(SCENES) and all(r.mtime == st.st_mtime + 60 for r in frames)

    write_mp4(clip, [photos["coffee"], photos["rocket"]], SECONDS_EACH)  # re-shot: two scenes now
    changed = lib.add([folder])
    assert changed.updated == 1 and changed.frames == 2 and changed.failed == []
    paths = sorted(r.path for r in lib.records() if file_of(r.path) == str(clip))
    assert [round(entry_time(p) // SECONDS_EACH) for p in paths] == [0, 1]  # no stale frames of the old cut
    hit = lib.search(photos["rocket"], k=1)[0]
    assert file_of(hit.path) == str(clip) and SECONDS_EACH <= entry_time(hit.path) < 2 * SECONDS_EACH


def test_query_by_a_frame_entry(indexed, photos):
    lib, folder, _ = indexed
    indexed_frame = next(r.path for r in lib.records() if entry_time(r.path) is not None and entry_time(r.path) >= 9)
    hits = lib.search(indexed_frame, k=3)
    assert all(h.path != indexed_frame for h in hits)  # an indexed entry never finds itself
    # A moment that is not an entry is decoded from the video: the rocket scene at 10.5 s.
    unsampled = lib.search(f"{folder / 'clip.mp4'}#t=10.500", k=1)[0]
    assert 9 <= entry_time(unsampled.path) < 12 and unsampled.score > 0.95
    with pytest.raises(Unsupported, match="name a moment"):
        lib.search(str(folder / "clip.mp4"), k=1)


def test_prune_and_remove_treat_frames_as_their_file(indexed, tmp_path):
    lib, folder, _ = indexed
    n = len(lib)
    assert lib.remove([folder / "clip.mp4"]) == len(SCENES)
    assert len(lib) == n - len(SCENES)
    lib.add([folder])
    assert len(lib) == n
    (folder / "clip.mp4").unlink()
    report = lib.add([folder], prune=True)
    assert report.removed == len(SCENES) and len(lib) == n - len(SCENES)


def test_broken_video_is_one_failure_line(tmp_path, gallery):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.mp4").write_bytes(b"")
    data = (gallery / "clip.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(data[:2000])
    (folder / "text.mov").write_text("not a movie\n" * 100)
    with Library.open(tmp_path / "lib") as lib:
        report = lib.add([folder])
    reasons = dict((os.path.basename(p), r) for p, r in report.failed)
    assert set(reasons) == {"empty.mp4", "cut.mp4", "text.mov"}, report.failed
    assert all("\n" not in r and r for r in reasons.values())


def test_duplicates_across_videos_and_photos(tmp_path, gallery, photos):
    folder = tmp_path / "dups"
    folder.mkdir()
    shutil.copy2(gallery / "clip.mp4", folder / "clip.mp4")
    shutil.copy2(gallery / "clip.mp4", folder / "copy.mp4")
    write_jpeg(folder / "coffee.jpg", photos["coffee"])
    shot = photos["coins"]  # in no other file
    w, h = shot.size
    zoom = [shot.crop((int(w * f), int(h * f), int(w * (1 - f)), int(h * (1 - f)))) for f in (0.0, 0.08)]
    write_mp4(folder / "zoom.mp4", zoom, 2.0)  # one shot, pushing in: several frames of one scene
    with Library.open(tmp_path / "lib") as lib:
        lib.add([folder])
        assert len([r for r in lib.records() if file_of(r.path).endswith("zoom.mp4")]) >= 2
        report = lib.duplicates()
    groups = [(g.tier, sorted(os.path.basename(m.path) for m in g.members)) for g in report.groups]
    # Every frame of the copy is grouped with the same moment of the original (an exact copy;
    # the group is "near" where a photo of that scene joins it).
    together = {m[len("clip.mp4"):] for _, members in groups for m in members
                if m.startswith("clip.mp4#") and "copy.mp4" + m[len("clip.mp4"):] in members}
    assert len(together) == len(SCENES)
    assert sum(tier == "exact" for tier, _ in groups) >= len(SCENES) - 1
    # The photo and the video frames showing it are the same picture (keypoints confirm it).
    near = [members for tier, members in groups if tier == "near" and "coffee.jpg" in members]
    assert near and all(3 <= entry_time(m) < 6 for m in near[0] if m != "coffee.jpg")
    # Frames of one video are not duplicates of each other: no group is made of one video alone
    # (its frames may still join a group through another picture they all look like).
    assert all(len({file_of(m) for m in members}) > 1 for _, members in groups), groups
    assert report.unreadable == []
