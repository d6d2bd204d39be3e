"""Configuration in one place: every environment variable is read by lookalike/config.py and
documented in docs/configuration.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lookalike import config
from lookalike.errors import InvalidQuery
from lookalike.store.ann_index import AnnParams

ROOT = Path(__file__).resolve().parents[2]
ENV_READ = re.compile(r"os\.environ|getenv\(|envvar=")


def test_every_variable_is_documented():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert [name for name in config.VARIABLES if f"`{name}`" not in doc] == []


def test_only_config_reads_the_environment():
    readers = [str(p.relative_to(ROOT)) for p in (ROOT / "src" / "lookalike").rglob("*.py")
               if ENV_READ.search(p.read_text()) and p.name != "config.py"]
    assert readers == []


def test_values_and_bad_values(monkeypatch):
    monkeypatch.setenv("LOOKALIKE_MAX_UPLOAD_MB", "1.5")
    assert config.max_upload_bytes() == 1_500_000
    for bad in ("abc", "-1", "nan", "inf"):
        monkeypatch.setenv("LOOKALIKE_MAX_UPLOAD_MB", bad)
        with pytest.raises(InvalidQuery, match="LOOKALIKE_MAX_UPLOAD_MB"):
            config.max_upload_bytes()
    monkeypatch.setenv("LOOKALIKE_MAX_PIXELS", "lots")
    with pytest.raises(InvalidQuery, match="LOOKALIKE_MAX_PIXELS"):
        config.max_pixels()
    monkeypatch.setenv("LOOKALIKE_LIBRARY", "")
    assert config.default_library() == Path(config.DEFAULT_LIBRARY)
    monkeypatch.setenv("LOOKALIKE_ANN_M", "16")
    assert config.ann_overrides() == {"m": 16}
    monkeypatch.setenv("LOOKALIKE_ANN_QUANT_BITS", "5")
    with pytest.raises(InvalidQuery, match="LOOKALIKE_ANN_QUANT_BITS"):
        AnnParams.from_env()
    monkeypatch.setenv("LOOKALIKE_ANN_QUANT_BITS", "4")
    assert AnnParams.from_env().quant_bits == 4
