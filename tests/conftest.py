"""Shared fixtures: real photos from installed packages, the real model, real libraries."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# One model cache per test session unless CI/the developer points at a warm one.
os.environ.setdefault("LOOKALIKE_CACHE", tempfile.mkdtemp(prefix="lookalike-cache-"))

from lookalike import Library  # noqa: E402
from lookalike.demo.samples import build_gallery, sample_photos  # noqa: E402

# Catalogue fixtures (products, photo_files, image_server) for the catalogue tests of every tier.
# Fixtures shared across tiers, registered once so a session fixture (the Milvus server) is
# started once per run, not once per module that uses it.
pytest_plugins = ["tests.support.catalogue", "tests.support.milvus_server", "tests.support.ray_cluster"]


@pytest.fixture(scope="session")
def photos():
    return sample_photos()


@pytest.fixture(scope="session")
def originals_dir(tmp_path_factory) -> Path:
    """The bundled photos as JPEG files, nothing else."""
    root = tmp_path_factory.mktemp("originals")
    build_gallery(root, with_variants=False)
    return root / "photos"


@pytest.fixture(scope="session")
def originals_library(tmp_path_factory, originals_dir) -> Path:
    """A library of the originals, indexed once; tests must not modify it."""
    lib_dir = tmp_path_factory.mktemp("lib-originals")
    with Library.open(lib_dir) as lib:
        report = lib.add([originals_dir])
        assert report.failed == [] and report.added == len(list(originals_dir.glob("*.jpg")))
    return lib_dir
