"""Deleted files never come back in results: a hit whose file is gone is dropped at search
time (one stat per hit), more are fetched so k still come back, and the image is removed
from the library, unless its whole folder is missing (an unmounted drive comes back)."""

from __future__ import annotations

import os
import shutil

from lookalike import Library


def test_search_drops_deleted_files_and_still_returns_k(tmp_path, originals_dir):
    pics = tmp_path / "pics"
    shutil.copytree(originals_dir, pics / "a")
    shutil.copytree(originals_dir, pics / "b")  # byte copies: the same scores, two folders
    with Library.open(tmp_path / "lib") as lib:
        assert lib.add([pics]).failed == []
        total = len(lib)
        query = str(pics / "a" / "coffee.jpg")
        k = 6
        before = lib.search(query, k=k)
        victims = [h.path for h in before[:3]]
        for v in victims:
            os.remove(v)
        after = lib.search(query, k=k)
        assert len(after) == k and not set(victims) & {h.path for h in after}
        assert [h.rank for h in after] == list(range(1, k + 1))
        assert len(lib) == total - 3 and all(lib.store.find_path(v) is None for v in victims)  # queued and removed
        # tag search follows the same rule
        tagged = lib.search_text("espresso", k=3)
        assert tagged and all(h.path not in victims for h in tagged)

        # a whole folder missing (say, an unplugged drive): not in results, but kept in the library
        shutil.move(pics / "b", tmp_path / "unplugged")
        hits = lib.search(query, k=k)
        assert hits and all(h.path.startswith(str(pics / "a")) for h in hits)
        assert len(lib) == total - 3
        shutil.move(tmp_path / "unplugged", pics / "b")
        assert any(h.path.startswith(str(pics / "b")) for h in lib.search(query, k=k))
