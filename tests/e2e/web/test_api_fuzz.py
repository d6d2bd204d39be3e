"""Fuzzing the REST API from its own OpenAPI schema with schemathesis: generated requests
(valid and invalid parameters, bodies of every declared media type) against the app on a
real small library. No 500s, no hangs; answers that claim success match the schema."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from lookalike import Library
from lookalike.api import create_app
from lookalike.demo.samples import sample_photos, save_jpeg

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

EXAMPLES = int(os.environ.get("LOOKALIKE_API_FUZZ_EXAMPLES", "12"))  # per operation; CI's short form


def _app(tmp_root):
    """A library of five real photos and an exact copy, served without an API key (writes
    are fuzzed too) and without URL downloads (nothing may leave the machine)."""
    folder = tmp_root / "photos"
    for name, photo in list(sample_photos().items())[:5]:
        save_jpeg(photo, folder / f"{name}.jpg", 85)
    first = sorted(folder.iterdir())[0]
    shutil.copyfile(first, folder / "copy.jpg")
    with Library.open(tmp_root / "lib") as lib:
        lib.add([folder])
    return create_app(tmp_root / "lib", api_key=None, max_upload_bytes=2_000_000, url_queries=False,
                      allowed_hosts=None)  # in-process requests carry Host: testserver




@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    app = _app(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(root / "xdg"))  # fuzzed "trash" actions use a trash of their own
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_server_errors(api_schema):
    """Each operation gets EXAMPLES valid and EXAMPLES invalid generated requests. (schemathesis' own pytest decorator
    does not run under this pytest version, so the loop drives its hypothesis strategies.)"""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    tried: dict[str, set[int]] = {}
    for op, mode in ((op, mode) for op in operations for mode in GenerationMode):
        try:
            _fuzzer(op, mode, tried.setdefault(f"{op.method.upper()} {op.path}", set()))()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no parameters, no body
    print("\n" + "\n".join(f"{name}: {sorted(codes)}" for name, codes in tried.items()))
    assert all(codes and max(codes) < 500 for codes in tried.values()), tried


def _fuzzer(op, mode: GenerationMode, codes: set[int]):
    @given(case=op.as_strategy(mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        response = case.call_and_validate(checks=[not_a_server_error])
        codes.add(response.status_code)

    return fuzz
