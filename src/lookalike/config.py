"""Every environment variable Lookalike reads, read here and nowhere else (docs/configuration.md
lists them). Functions, not import-time constants, so tests and long-lived processes see the
environment as it is when a value is needed. Bad values are a one-line `InvalidQuery`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from .errors import InvalidQuery

# New libraries; an existing library keeps the model it was built with (docs/evaluation.md).
DEFAULT_MODEL = "effnet-lite0-lite1"
DEFAULT_LIBRARY = "lookalike-library"
DEFAULT_MAX_PIXELS = 150_000_000
DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_ANN_THRESHOLD = 20_000
DEFAULT_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
DEFAULT_WORDNET_DIR = "/usr/share/wordnet"

# name -> (default shown to users, meaning); docs/configuration.md is written from this table.
VARIABLES: dict[str, tuple[str, str]] = {
    "LOOKALIKE_LIBRARY": (DEFAULT_LIBRARY, "Library directory when --library is not given."),
    "LOOKALIKE_STORE": ("embedded", "Store backend when --store is not given (e.g. milvus:http://127.0.0.1:19530#images)."),
    "LOOKALIKE_MILVUS_TOKEN": ("(none)", "Token or user:password for a milvus:http(s)://... store."),
    "LOOKALIKE_DICOMWEB_AUTH": ("(none)", "`lookalike scans index dicomweb+http(s)://...`: user:password (HTTP basic) or a bearer token."),
    "LOOKALIKE_CACHE": ("~/.cache/lookalike", "Where exported ONNX models and fine-tuned models are kept."),
    "LOOKALIKE_MAX_PIXELS": (f"{DEFAULT_MAX_PIXELS:_}", "Largest image (width x height) decoded; a guard against decompression bombs."),
    "LOOKALIKE_API_KEY": ("(none)", "`lookalike serve`: write endpoints need this key in the X-API-Key header."),
    "LOOKALIKE_MAX_UPLOAD_MB": (f"{DEFAULT_MAX_UPLOAD_MB:g}", "`lookalike serve`: largest request body, in megabytes."),
    "LOOKALIKE_FASHION_MNIST": (DEFAULT_FASHION_MNIST, "Folder with the Fashion-MNIST *-ubyte.gz files (`lookalike eval fashion-mnist`)."),
    "LOOKALIKE_ANN_THRESHOLD": (f"{DEFAULT_ANN_THRESHOLD:_}", "Embedded store: image count from which searches use the ANN index."),
    "LOOKALIKE_ANN_PCA_DIM": ("384", "Embedded store ANN index: dimensions vectors are projected to."),
    "LOOKALIKE_ANN_M": ("32", "Embedded store ANN index: HNSW links per node."),
    "LOOKALIKE_ANN_EF_CONSTRUCTION": ("80", "Embedded store ANN index: HNSW construction effort."),
    "LOOKALIKE_ANN_EF": ("160", "Embedded store ANN index: candidates per query (--ef overrides it per search)."),
    "LOOKALIKE_ANN_QUANT_BITS": ("8", "Embedded store ANN index: bits per graph-vector component (8, 6, 4, or 16 for fp16)."),
    "LOOKALIKE_ANN_RERANK": ("48", "Embedded store ANN index: candidates re-ranked exactly per query (0: all `ef`)."),
    "LOOKALIKE_ANN_MERGE_MIN": ("1000", "Embedded store ANN index: pending changes before they are merged into its files."),
    "LOOKALIKE_DECODE_BUDGET_MB": ("1500", "Memory all concurrent image decodes of one process may hold, in megabytes."),
    "LOOKALIKE_WORDNET_DIR": (DEFAULT_WORDNET_DIR, "WordNet database files for word search (Debian package wordnet-base)."),
    "XDG_DATA_HOME": ("~/.local/share", "Where the system (freedesktop) trash is: `duplicates --trash` and its `--undo`."),
}


def env(name: str) -> str | None:
    """The raw value of one of `VARIABLES` (empty counts as unset)."""
    assert name in VARIABLES, name  # a new variable must be documented in the table above
    return os.environ.get(name) or None


def cache_dir() -> Path:
    """Where exported ONNX models and fine-tuned models live (`$LOOKALIKE_CACHE`)."""
    value = env("LOOKALIKE_CACHE")
    base = Path(value) if value else Path.home() / ".cache" / "lookalike"
    return base.expanduser()


def default_library() -> Path:
    return Path(env("LOOKALIKE_LIBRARY") or DEFAULT_LIBRARY).expanduser()


def default_store() -> str | None:
    """The store spec when none is given: `$LOOKALIKE_STORE`, else the embedded store."""
    return env("LOOKALIKE_STORE")


def milvus_token() -> str | None:
    return env("LOOKALIKE_MILVUS_TOKEN")


def dicomweb_auth() -> str | None:
    return env("LOOKALIKE_DICOMWEB_AUTH")


def api_key() -> str | None:
    return env("LOOKALIKE_API_KEY")


def max_pixels() -> int:
    """Largest image (width x height) we decode; guards against decompression bombs."""
    return _integer("LOOKALIKE_MAX_PIXELS", DEFAULT_MAX_PIXELS)


def max_upload_bytes() -> int:
    """Largest request body `lookalike serve` accepts (`$LOOKALIKE_MAX_UPLOAD_MB`, default 20 MB)."""
    value = env("LOOKALIKE_MAX_UPLOAD_MB")
    if value is None:
        return int(DEFAULT_MAX_UPLOAD_MB * 1_000_000)
    try:
        mb = float(value)
    except ValueError:
        raise InvalidQuery(f"$LOOKALIKE_MAX_UPLOAD_MB must be a number of megabytes, got {value!r}") from None
    if not mb > 0 or mb == float("inf"):
        raise InvalidQuery(f"$LOOKALIKE_MAX_UPLOAD_MB must be positive, got {value!r}")
    return int(mb * 1_000_000)


def fashion_mnist_dir() -> Path:
    return Path(env("LOOKALIKE_FASHION_MNIST") or DEFAULT_FASHION_MNIST)


def xdg_data_home() -> Path:
    """$XDG_DATA_HOME (default ~/.local/share): where the freedesktop trash is, for undoing
    `lookalike duplicates --trash`."""
    return Path(env("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def ann_threshold() -> int:
    return _integer("LOOKALIKE_ANN_THRESHOLD", DEFAULT_ANN_THRESHOLD)


def ann_overrides() -> dict[str, int]:
    """ANN index settings set in the environment: {"m": 16, ...} from $LOOKALIKE_ANN_M etc."""
    keys = ("pca_dim", "m", "ef_construction", "ef", "merge_min", "quant_bits", "rerank")
    return {key: _integer(f"LOOKALIKE_ANN_{key.upper()}", 0) for key in keys if env(f"LOOKALIKE_ANN_{key.upper()}")}


def decode_budget_bytes() -> int:
    """Memory all concurrent image decodes of one process may hold (`$LOOKALIKE_DECODE_BUDGET_MB`)."""
    value = env("LOOKALIKE_DECODE_BUDGET_MB")
    try:
        megabytes = float(value) if value else 1500.0
    except ValueError:
        raise InvalidQuery(f"$LOOKALIKE_DECODE_BUDGET_MB must be a number of megabytes, got {value!r}") from None
    return int(megabytes * 1_000_000)


def wordnet_dir() -> Path:
    """Where WordNet's database files are (`$LOOKALIKE_WORDNET_DIR`, else Debian's wordnet-base)."""
    return Path(env("LOOKALIKE_WORDNET_DIR") or DEFAULT_WORDNET_DIR)


def cpu_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextlib.contextmanager
def ray_local_environment(token: str) -> Iterator[None]:
    """Ray's own variables for `--ray local` while its cluster runs: token authentication with
    a fresh token (Ray 2.60 requires one), services bound to 127.0.0.1 only (Ray binds a
    single-node cluster to loopback when multi-node clusters are turned off), no usage stats
    sent. The previous values come back afterwards."""
    wanted = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
              "RAY_USAGE_STATS_ENABLED": "0"}
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _integer(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        return int(value.replace("_", ""))
    except ValueError:
        raise InvalidQuery(f"${name} must be an integer, got {value!r}") from None
