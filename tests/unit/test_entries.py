"""Entry addressing: a file path plus an optional fragment naming one entry inside the file."""

from __future__ import annotations

from lookalike.engine.entries import entry_time, file_of, frame_entry, split_entry, time_entry


def test_entry_paths():
    assert split_entry("/x/clip.mp4#t=12.500") == ("/x/clip.mp4", "t=12.500")
    assert split_entry("/x/ct.dcm#frame=7") == ("/x/ct.dcm", "frame=7")
    assert split_entry("/x/photo.jpg") == ("/x/photo.jpg", None)
    assert time_entry("/x/clip.mp4", 4) == "/x/clip.mp4#t=4.000"
    assert frame_entry("/x/ct.dcm", 7) == "/x/ct.dcm#frame=7"
    assert entry_time("/x/clip.mp4#t=4.000") == 4.0 and entry_time("/x/a.jpg") is None
    assert entry_time("/x/ct.dcm#frame=7") is None
    assert file_of(time_entry("/x/clip.mp4", 1.25)) == "/x/clip.mp4"


def test_a_hash_in_a_file_name_is_not_a_fragment():
    for name in ("/x/photo#1.jpg", "/x/a#t=1.jpg", "/x/#t=", "/x/b#frame=", "/x/c#t=1.5x", "/x/d#T=1"):
        assert split_entry(name) == (name, None)
