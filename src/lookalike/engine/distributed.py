"""`lookalike index --ray ADDRESS|local`: the embedding runs on a Ray cluster.

The driver (this process) does everything local indexing does except the per-file work: the
scan, change detection by size and mtime, the decisions (new, changed, touched, moved,
copied) and every store write, in the same order, one transaction per batch. Ray Data streams
the paths of the files to look at through a pool of actors, one ONNX Runtime model each
(CUDA when the worker has it), which read the files from storage every node sees, hash them
(SHA-256), and decode and embed content the library does not know yet. Known content (a
touched, moved or copied file) comes back hashed but not embedded, so the driver handles it
exactly like local indexing; a decode failure comes back as that file's one-line error.

The driver writes the store, for Milvus too: the decisions and record ids are made there,
batches stay one write each (what makes an interrupted run resumable), and workers need no
store credentials; a vector is 5 KB against the tens of milliseconds of model time it costs,
so the driver's writes are not what limits a cluster."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import pickle
import secrets
import socket
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..config import cpu_threads, ray_local_environment
from ..errors import InvalidQuery, LookalikeError, MissingExtra, NotFound, Unsupported
from ..extras import require
from ..models import FeatureExtractor, configure_runtime, get_extractor
from ..store import VectorStore
from .indexer import Indexer, ProgressFn, _Prepared, prepare_file
from .scan import FileEntry

LOCAL = "local"
# One token per process: Ray caches the first token it reads, so a second local cluster in the
# same process must get the same one.
_LOCAL_TOKEN = secrets.token_hex(32)
FEATURE = "--ray (indexing on a Ray cluster)"
CONNECT_TIMEOUT_S = 10.0


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def check_installed() -> None:
    """MissingExtra unless Ray and Ray Data's packages are installed; imports nothing, so it
    fails in one line before any model or cluster work."""
    for module in ("ray", "pyarrow", "pandas"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtra(FEATURE, "ray")


def import_ray() -> Any:
    """The `ray` module with Ray Data, or a one-line MissingExtra naming the `ray` extra."""
    ray = require("ray", feature=FEATURE, extra="ray")
    try:
        import ray.data  # noqa: F401  (needs pyarrow and pandas, part of ray[data])
    except ModuleNotFoundError:
        raise MissingExtra(FEATURE, "ray") from None
    return ray


@contextlib.contextmanager
def ray_cluster(address: str) -> Iterator[Any]:
    """Connected to the Ray cluster at `address` (`host:port` of its head, from a machine that
    is a node of the cluster), or for `local` to a one-node cluster started here (loopback
    only, its own token) and stopped afterwards. Yields the `ray` module. Ray Client
    addresses (`ray://`) are refused: Ray Data fails through Ray Client in 2.60 (seen here:
    "'Worker' object has no attribute 'core_worker'")."""
    if address.startswith("ray://"):
        raise Unsupported(f"--ray {address}: Ray Client (ray://) cannot run Ray Data in Ray 2.60; run `lookalike index` "
                          "on a node of the cluster (e.g. its head) with --ray HOST:6379")
    quiet = {"log_to_driver": False, "logging_level": "WARNING"}
    if address == LOCAL:
        # Ray reads its variables when it is imported: set them first.
        with ray_local_environment(_LOCAL_TOKEN):
            ray = import_ray()
            try:
                ray.init(num_cpus=cpu_threads(), include_dashboard=False, **quiet)
            except Exception as err:
                raise LookalikeError(f"could not start a local Ray cluster: {_one_line(err)}") from None
            try:
                yield ray
            finally:
                ray.shutdown()
        return
    _check_reachable(address)
    ray = import_ray()
    try:
        ray.init(address=address, **quiet)
    except Exception as err:  # ConnectionError, an authentication error, a malformed address
        raise NotFound(f"no Ray cluster at {address}: {_one_line(err)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A head that does not answer is one line now: Ray itself retries for minutes."""
    if address == "auto":  # Ray's own lookup of the cluster running on this machine
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidQuery(f"--ray {address}: expected HOST:PORT of the cluster's head (e.g. 10.0.0.5:6379) or `local`")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise NotFound(f"no Ray cluster at {address}: {err.strerror or err}") from None


class EmbedFiles:
    """A Ray Data actor: one model, loaded once; each batch of files is read, hashed and, when
    the content is new, decoded and embedded (the local indexer's per-file work)."""

    def __init__(self, model: str, state_dir: str | None, known: np.ndarray, threads: int, accelerator: bool) -> None:
        self.extractor = get_extractor(model, Path(state_dir) if state_dir else None)
        configure_runtime(self.extractor, threads, accelerator)
        self.known = known  # sorted first 64 bits of every SHA-256 the library holds

    def _is_known(self, sha: str) -> bool:
        # A false match only skips decoding here: the driver then embeds that file itself.
        key = np.uint64(int(sha[:16], 16))
        i = int(np.searchsorted(self.known, key))
        return i < len(self.known) and self.known[i] == key

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        preps = [prepare_file(FileEntry(os.fsdecode(bytes(p)), int(s), float(m)), self.extractor, self._is_known)
                 for p, s, m in zip(batch["path"], batch["size"], batch["mtime"])]
        vectors = np.zeros((len(preps), self.extractor.dim), np.float32)
        todo = [i for i, p in enumerate(preps) if p.pixels is not None]
        if todo:
            feats = self.extractor.embed_batch(np.stack([p.pixels for p in preps if p.pixels is not None]))
            for j, i in enumerate(todo):
                vectors[i] = feats.vectors[j]
                preps[i].tags = feats.tags[j] if j < len(feats.tags) else []
        embedded = np.zeros(len(preps), bool)
        embedded[todo] = True
        for p in preps:
            p.pixels = None  # the driver needs the vector, not the model input
        return {"vector": vectors, "embedded": embedded,
                "meta": np.array([pickle.dumps(p) for p in preps], dtype=object)}


def _no_restarts() -> dict[str, Any]:
    return {"max_restarts": 0}


class RayIndexer(Indexer):
    """The local `Indexer` with its per-file stage on a Ray cluster (see the module text)."""

    def __init__(self, ray: Any, store: VectorStore, extractor: FeatureExtractor, model: str,
                 state_dir: Path | None, batch_size: int = 32, progress: ProgressFn | None = None,
                 detect_moves: bool = True) -> None:
        super().__init__(store, extractor, batch_size, None, progress, detect_moves)
        self.ray = ray
        self.model = model
        self.state_dir = state_dir

    def _prepared_all(self, todo: list[FileEntry]) -> Iterator[_Prepared]:
        from ray.data import ActorPoolStrategy, DataContext

        ctx = DataContext.get_current()
        ctx.execution_options.preserve_order = True  # the same write order, so the same ids, as local indexing
        ctx.enable_progress_bars = False  # the driver shows one bar of its own
        ctx.print_on_execution_start = False
        for name in ("ray.data", "ray"):  # Ray Data's own progress lines would break that bar
            logging.getLogger(name).setLevel(logging.ERROR)
        resources = self.ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
        known = np.array(sorted({int(h[:16], 16) for h in self._hashes}), dtype=np.uint64)
        items = [{"path": os.fsencode(e.path), "size": e.size, "mtime": e.mtime} for e in todo]
        ds = self.ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / self.batch_size)))
        with warnings.catch_warnings():  # ray_remote_args_fn: deprecated in 2.60, the only way to set max_restarts
            warnings.simplefilter("ignore")
            ds = ds.map_batches(
                EmbedFiles, batch_size=self.batch_size, batch_format="numpy",
                fn_constructor_kwargs={"model": self.model, "state_dir": str(self.state_dir) if self.state_dir else None,
                                       "known": known, "threads": 1, "accelerator": gpus > 0},
                # One actor per GPU, else one per CPU with one ONNX thread each (no oversubscription).
                compute=ActorPoolStrategy(min_size=1, max_size=gpus or cpus), num_gpus=1 if gpus else 0, num_cpus=1,
                # A lost actor fails the run (the next run resumes) rather than being restarted.
                ray_remote_args_fn=_no_restarts)
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for vector, embedded, meta in zip(batch["vector"], batch["embedded"], batch["meta"]):
                    prep: _Prepared = pickle.loads(meta)
                    if embedded:
                        prep.vector = np.asarray(vector, dtype=np.float32)
                    yield prep
        except Exception as err:  # a lost node, a worker without Lookalike, ...: one line
            raise LookalikeError(f"the Ray cluster failed: {_one_line(err)}") from None

    def _features(self, preps: list[_Prepared]) -> tuple[np.ndarray, list]:
        """Vectors from the workers; the rare file the driver had to decode itself (its content
        vanished from the library during the run) goes through the local model."""
        vectors = np.zeros((len(preps), self.extractor.dim), np.float32)
        tags = [p.tags for p in preps]
        local = [i for i, p in enumerate(preps) if p.vector is None]
        if local:
            v, t = super()._features([preps[i] for i in local])
            for j, i in enumerate(local):
                vectors[i] = v[j]
                tags[i] = t[j] if j < len(t) else []
        for i, p in enumerate(preps):
            if p.vector is not None:
                vectors[i] = p.vector
        return vectors, tags
