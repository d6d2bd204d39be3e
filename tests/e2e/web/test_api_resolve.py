"""POST /api/duplicates/resolve through a real server with an API key: keepers stay, the
rest is set aside (or only planned on a dry run), bad choices are refused with the right
status, and the undo log it names puts every file back."""

from __future__ import annotations

import hashlib
import shutil

import httpx
import pytest

from lookalike import Library
from lookalike.api import create_app
from lookalike.demo.samples import save_jpeg
from tests.support.server import BackgroundServer

KEY = "resolve-test-key"


@pytest.fixture
def dup_server(tmp_path, photos):
    folder = tmp_path / "photos"
    for name in ("coffee", "rocket", "chelsea"):
        save_jpeg(photos[name], folder / f"{name}.jpg", 90)
    shutil.copyfile(folder / "coffee.jpg", folder / "coffee copy.jpg")
    rocket = photos["rocket"]
    save_jpeg(rocket.resize((rocket.width // 2, rocket.height // 2)), folder / "small" / "rocket.jpg", 70)
    with Library.open(tmp_path / "lib") as lib:
        assert lib.add([folder]).failed == []
    with BackgroundServer(create_app(tmp_path / "lib", api_key=KEY)) as url, \
            httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": KEY}) as client:
        yield client, folder, tmp_path / "lib"


def tree(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resolve_moves_the_others_and_undo_restores(dup_server):
    client, folder, lib_dir = dup_server
    report = client.get("/api/duplicates").json()
    groups = [{"keep": g["members"][0]["id"], "remove": [m["id"] for m in g["members"][1:]]} for g in report["groups"]]
    assert len(groups) == 2 and all(g["members"][0]["keep"] for g in report["groups"])
    before = tree(folder)

    anonymous = httpx.post(f"{client.base_url}/api/duplicates/resolve", json={"action": "move", "groups": groups})
    assert anonymous.status_code == 401
    dry = client.post("/api/duplicates/resolve", json={"action": "move", "groups": groups, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] and len(dry.json()["actions"]) == 2 and dry.json()["log"] is None
    assert tree(folder) == before

    keeper = groups[0]["keep"]
    clash = client.post("/api/duplicates/resolve", json={"action": "trash", "groups": [*groups, {"keep": 999, "remove": [keeper]}]})
    assert clash.status_code == 409 and "both kept and to be removed" in clash.json()["detail"]
    unknown = client.post("/api/duplicates/resolve", json={"action": "trash", "groups": [{"keep": keeper, "remove": [999_999]}]})
    assert unknown.status_code == 404
    bad = client.post("/api/duplicates/resolve", json={"action": "shred", "groups": groups})
    assert bad.status_code == 422
    assert tree(folder) == before  # nothing moved by a refused request

    done = client.post("/api/duplicates/resolve", json={"action": "move", "groups": groups})
    assert done.status_code == 200, done.text
    data = done.json()
    assert not data["dry_run"] and len(data["actions"]) == 2 and data["set_aside"] == str(lib_dir.absolute() / "set-aside")
    keepers = {g["keep"] for g in groups}
    assert not keepers & {a["id"] for a in data["actions"]}
    after = tree(folder)
    assert set(before) - set(after) == {"coffee copy.jpg", "small/rocket.jpg"}
    assert client.get("/healthz").json()["images"] == 3
    with Library.open(lib_dir, create=False) as lib:
        undone = lib.undo_cleanup(data["log"])
    assert len(undone.restored) == 2 and tree(folder) == before
