"""The `lookalike` command as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest

from lookalike.config import DEFAULT_MODEL
from lookalike.demo.samples import save_jpeg
from lookalike.models import model_info
from tests.support.cli import run


@pytest.fixture(scope="module")
def cli_lib(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("cli")
    for name in ("chelsea", "coffee", "rocket", "astronaut", "flower"):
        save_jpeg(photos[name], root / "pics" / f"{name}.jpg")
    (root / "pics" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    proc = run("index", root / "pics", "--library", root / "lib", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert report["added"] == 5 and [f["path"].endswith("broken.jpg") for f in report["failed"]] == [True]
    return root


def test_search_json_shape(cli_lib):
    query = cli_lib / "q.jpg"
    from PIL import Image, ImageOps
    save_jpeg(ImageOps.mirror(Image.open(cli_lib / "pics" / "coffee.jpg")), query)
    proc = run("search", query, "--library", cli_lib / "lib", "-k", "3", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(proc.stdout)
    assert list(data) == ["query", "model", "took_ms", "verdict", "good_match", "results"]
    assert data["query"] == str(query) and data["model"] == DEFAULT_MODEL
    assert isinstance(data["took_ms"], float)
    assert [list(r) for r in data["results"]] == [["rank", "id", "path", "score", "fields", "confidence"]] * 3
    assert data["results"][0]["path"].endswith("coffee.jpg")
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True) and [r["rank"] for r in data["results"]] == [1, 2, 3]


def test_stdin_id_and_indexed_path_queries(cli_lib):
    lib = cli_lib / "lib"
    cat = cli_lib / "pics" / "chelsea.jpg"
    by_stdin = json.loads(run("search", "-", "-l", lib, "--json", stdin=cat.read_bytes()).stdout)
    top = by_stdin["results"][0]
    assert top["path"] == str(cat) and top["score"] > 0.999 and by_stdin["query"] == "-"
    by_id = json.loads(run("search", f"id:{top['id']}", "-l", lib, "--json", "-k", "4").stdout)
    by_path = json.loads(run("search", cat, "-l", lib, "--json", "-k", "4").stdout)
    assert [r["id"] for r in by_id["results"]] == [r["id"] for r in by_path["results"]]
    assert top["id"] not in [r["id"] for r in by_id["results"]] and len(by_id["results"]) == 4


def test_url_query(cli_lib):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(cli_lib / "pics"))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        env = {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        ok = run("search", f"{base}/rocket.jpg", "-l", cli_lib / "lib", "--json", "-k", "1", env=env)
        assert ok.returncode == 0, ok.stderr.decode()
        assert json.loads(ok.stdout)["results"][0]["path"].endswith("rocket.jpg")
        missing = run("search", f"{base}/nope.jpg", "-l", cli_lib / "lib", env=env)
        assert missing.returncode == 1 and b"HTTP 404" in missing.stderr
    finally:
        server.shutdown()


def test_info_json(cli_lib):
    data = json.loads(run("info", "--library", cli_lib / "lib", "--json").stdout)
    dim = model_info(DEFAULT_MODEL).dim
    assert data["images"] == 5 and data["model"] == DEFAULT_MODEL and data["dim"] == dim
    assert data["size_bytes"] > 5 * dim * 4


def test_library_from_environment(cli_lib):
    proc = run("info", "--json", env={"LOOKALIKE_LIBRARY": str(cli_lib / "lib")})
    assert json.loads(proc.stdout)["images"] == 5


@pytest.mark.parametrize("args, code, needle", [
    (["search", "x.jpg", "--library", "/nonexistent/lib"], 1, b"no library at"),
    (["search", "/etc/hostname", "--library", "LIB"], 1, b"not an image"),
    (["search", "/no/such/file.jpg", "--library", "LIB"], 1, b"file not found"),
    (["search", "id:999", "--library", "LIB"], 1, b"no image with id 999"),
    (["search", "--library", "LIB"], 2, b"Missing argument"),
    (["search", "x", "-k", "0", "--library", "LIB"], 2, b"Invalid value"),
    (["frobnicate"], 2, b"No such command"),
])
def test_errors_are_one_line_with_exit_codes(cli_lib, args, code, needle):
    proc = run(*[str(cli_lib / "lib") if a == "LIB" else a for a in args])
    assert proc.returncode == code, proc.stderr.decode()
    assert needle in proc.stderr and b"Traceback" not in proc.stderr
    if code == 1:
        assert proc.stderr.decode().strip().count("\n") == 0


def test_remove_and_prune(tmp_path, photos):
    pics = tmp_path / "pics"
    for name in ("chelsea", "coffee", "rocket"):
        save_jpeg(photos[name], pics / f"{name}.jpg")
    assert run("index", pics, "-l", tmp_path / "lib").returncode == 0
    assert run("remove", pics / "coffee.jpg", "-l", tmp_path / "lib").returncode == 0
    (pics / "rocket.jpg").unlink()
    report = json.loads(run("index", pics, "-l", tmp_path / "lib", "--prune", "--json").stdout)
    assert (report["added"], report["removed"], report["unchanged"]) == (1, 1, 1)
    assert json.loads(run("info", "-l", tmp_path / "lib", "--json").stdout)["images"] == 2


@pytest.mark.parametrize("cmd", ["index", "watch", "search", "info", "remove", "models", "duplicates", "migrate", "serve", "eval",
                                 "finetune", "explain", "tags", "scans", "catalogue"])
def test_every_command_has_help(cmd):
    proc = run(cmd, "--help")
    assert proc.returncode == 0 and b"Usage" in proc.stdout


def test_index_shows_progress_and_summary(tmp_path, photos):
    save_jpeg(photos["coffee"], tmp_path / "p" / "c.jpg")
    proc = run("index", tmp_path / "p", "-l", tmp_path / "lib", env={"COLUMNS": "120"})
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "img/s" in err and "added 1" in err and Path(tmp_path / "lib").is_dir()
