"""`lookalike eval`: embed a labelled gallery with each method, rank it for a seeded sample
of queries, and measure retrieval quality, speed and (optionally) robustness to edits.

For speed the harness embeds the dataset with the extractor directly (batched) instead of
building a Library; the extractors are the same ones a Library uses, trainable ones are fitted
the same way (on a seeded sample of the gallery, `FIT_SAMPLE` images)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..demo.samples import sample_photos
from ..engine.params import fit_sample
from ..errors import InvalidQuery
from ..extras import require
from ..imaging import load_image
from ..models import FeatureExtractor, TrainableExtractor, get_extractor, l2_normalize, model_info
from .datasets import LabelledImages, load_fashion_mnist, load_folder_dataset
from .metrics import RetrievalResult, evaluate_rankings, near_duplicate_recall, precision_recall_curve, rank_gallery
from .robustness import RobustnessQueries, RobustnessResult, make_queries

FASHION = "fashion-mnist"
KS = (1, 5, 10, 100)
MAP_KS = (10, 100)
LATENCY_QUERIES = 20  # single-image queries timed end to end (embed + exact search)
EXAMPLE_QUERIES = 3  # queries shown in the example grid, from different classes
TOP_SHOWN = 8

# stage, done, total
ProgressFn = Callable[[str, int, int], None]


@dataclass
class EvalConfig:
    dataset: str  # "fashion-mnist" or a folder ROOT/<class>/<images>
    methods: list[str]
    limit: int | None = None  # gallery images used (a seeded sample), for quick runs
    n_queries: int = 1000
    seed: int = 0
    robustness: bool = False
    robustness_queries: int = 100  # dataset images edited per transform (plus every bundled photo)
    whiten: tuple[int, ...] = ()  # PCA-whitening dims for deep methods, learned on Fashion-MNIST train
    whiten_train: int = 5000
    whiten_methods: tuple[str, ...] | None = None  # which methods get whitened (None: every deep one)
    batch_size: int = 64

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class MethodResult:
    name: str
    kind: str
    dim: int
    metrics: RetrievalResult
    images_per_second: float
    query_ms: float
    pr_curve: list[float]
    examples: list[list[int]]  # top results (gallery indices) of each example query
    derived_from: str | None = None  # e.g. the model a PCA-whitened variant projects

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "dim": self.dim, **self.metrics.to_dict(),
                "images_per_second": self.images_per_second, "query_ms": self.query_ms,
                "pr_curve": self.pr_curve, "examples": self.examples, "derived_from": self.derived_from}


@dataclass
class EvalResult:
    config: EvalConfig
    dataset_name: str
    gallery: LabelledImages
    query_indices: np.ndarray
    example_queries: list[int]
    methods: list[MethodResult] = field(default_factory=list)
    robustness: RobustnessResult | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "dataset": self.dataset_name,
            "classes": self.gallery.class_names,
            "gallery_size": len(self.gallery),
            "n_queries": len(self.query_indices),
            "query_indices": self.query_indices.tolist(),
            "example_queries": self.example_queries,
            "recall_levels": [round(r, 2) for r in np.linspace(0, 1, 11).tolist()],
            "methods": [m.to_dict() for m in self.methods],
            "robustness": self.robustness.to_dict() if self.robustness else None,
            "seconds": self.seconds,
        }


def load_dataset(spec: str) -> tuple[str, LabelledImages]:
    if spec == FASHION:
        return "Fashion-MNIST (test split)", load_fashion_mnist("test")
    root = Path(spec).expanduser()
    if not root.is_dir():
        raise InvalidQuery(f"dataset {spec!r} is neither {FASHION!r} nor a folder (ROOT/<class>/<images>)")
    return f"folder {root}", load_folder_dataset(root)


def image_at(data: LabelledImages, i: int, draft_size: int | None = None) -> Image.Image:
    """Image i, decoded as the indexer decodes files (JPEG draft at the model's size)."""
    if data.paths is not None:
        return load_image(data.paths[i], draft_size)
    return data.image(i)


def _stage_progress(note: ProgressFn, stage: str, total: int) -> Callable[[int], None]:
    """A progress callback for one stage, bound to its name and total now (not to loop variables)."""
    return lambda done: note(stage, done, total)


def embed_all(ext: FeatureExtractor, data: LabelledImages, indices: np.ndarray, batch_size: int,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
    out = np.empty((len(indices), ext.dim), dtype=np.float32)
    for s in range(0, len(indices), batch_size):
        chunk = indices[s:s + batch_size]
        batch = np.stack([ext.preprocess(image_at(data, int(i), ext.draft_size)) for i in chunk])
        out[s:s + len(chunk)] = ext.embed_batch(batch).vectors
        if progress:
            progress(s + len(chunk))
    return out


def embed_images(ext: FeatureExtractor, images: list[Image.Image], batch_size: int) -> np.ndarray:
    out = [ext.embed_batch(np.stack([ext.preprocess(im) for im in images[s:s + batch_size]])).vectors
           for s in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, ext.dim), np.float32)


def fit_pca_whitening(train: np.ndarray, dim: int, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """PCA-whitening learned on `train` vectors: project to `dim` components, scale each to
    unit variance, L2-normalise again (Jegou & Chum 2012)."""
    PCA = require("sklearn.decomposition", feature="PCA-whitening (--whiten)", extra="eval").PCA

    if dim > min(train.shape):
        raise InvalidQuery(f"cannot whiten to {dim} dims from {train.shape[0]} vectors of dimension {train.shape[1]}")
    pca = PCA(n_components=dim, whiten=True, random_state=seed).fit(train)
    return lambda x: l2_normalize(pca.transform(x).astype(np.float32))


def _pick_examples(labels: np.ndarray, query_indices: np.ndarray, n: int) -> list[int]:
    """The first query of each of the first `n` classes met, in query order."""
    seen: set[int] = set()
    picked: list[int] = []
    for q in query_indices.tolist():
        if int(labels[q]) not in seen:
            seen.add(int(labels[q]))
            picked.append(q)
        if len(picked) == n:
            break
    return picked


def run_eval(config: EvalConfig, progress: ProgressFn | None = None) -> EvalResult:
    t_start = time.perf_counter()
    if not config.methods:
        raise InvalidQuery("no methods to evaluate")
    for name in config.methods:
        model_info(name)  # unknown names fail before any work
    if config.whiten and config.dataset != FASHION:
        raise InvalidQuery("--whiten learns on the Fashion-MNIST train split: use it with the fashion-mnist dataset")
    dataset_name, data = load_dataset(config.dataset)
    rng = np.random.default_rng(config.seed)
    if config.limit is not None and config.limit < len(data):
        data = data.subset(np.sort(rng.permutation(len(data))[:config.limit]))
    if len(data) < 2:
        raise InvalidQuery(f"{dataset_name} has {len(data)} image(s): need at least 2 to evaluate retrieval")
    n_q = min(config.n_queries, len(data))
    query_idx = np.sort(rng.choice(len(data), n_q, replace=False))
    result = EvalResult(config, dataset_name, data, query_idx, _pick_examples(data.labels, query_idx, EXAMPLE_QUERIES))
    note = progress or (lambda *_: None)

    train = rob_queries = None
    if config.whiten:
        train_all = load_fashion_mnist("train")
        train = train_all.subset(np.sort(np.random.default_rng(config.seed).permutation(len(train_all))[:config.whiten_train]))
    if config.robustness:
        rob_queries = _robustness_queries(data, config)
        result.robustness = RobustnessResult(rob_queries.transforms, {
            s: sum(1 for x in rob_queries.sources if x == s) for s in ("photos", "dataset")})

    all_idx = np.arange(len(data))
    for name in config.methods:
        info = model_info(name)
        ext = get_extractor(name)
        if isinstance(ext, TrainableExtractor) and not ext.is_fitted():
            note(f"{name}: learning", 0, 1)
            ext.fit([image_at(data, i, ext.draft_size) for i in fit_sample(len(data))])
            note(f"{name}: learning", 1, 1)
        stage = f"{name}: gallery"
        t0 = time.perf_counter()
        gallery = embed_all(ext, data, all_idx, config.batch_size, _stage_progress(note, stage, len(data)))
        ips = len(data) / max(time.perf_counter() - t0, 1e-9)
        query_ms = _query_latency(ext, data, query_idx[:LATENCY_QUERIES], gallery)
        # Queries are gallery images: their vectors are the gallery's, the image itself excluded.
        result.methods.append(_score(name, info.kind, ext.dim, gallery[query_idx], gallery, data, query_idx,
                                     result.example_queries, ips, query_ms))
        wanted = info.kind != "handcrafted" if config.whiten_methods is None else name in config.whiten_methods
        if train is not None and wanted:
            stage = f"{name}: whitening set"
            train_vecs = embed_all(ext, train, np.arange(len(train)), config.batch_size,
                                   _stage_progress(note, stage, len(train)))
            for dim in config.whiten:
                project = fit_pca_whitening(train_vecs, dim, config.seed)
                g = project(gallery)
                result.methods.append(_score(f"{name}+pcaw{dim}", info.kind, dim, g[query_idx], g, data, query_idx,
                                             result.example_queries, ips, query_ms, derived_from=name))
        if rob_queries is not None and result.robustness is not None:
            result.robustness.recall[name] = _robustness(ext, gallery, rob_queries, config.batch_size,
                                                         partial(note, f"{name}: robustness"))
    result.seconds = time.perf_counter() - t_start
    return result


def _score(name: str, kind: str, dim: int, queries: np.ndarray, gallery: np.ndarray, data: LabelledImages,
           query_idx: np.ndarray, examples: list[int], ips: float, query_ms: float,
           derived_from: str | None = None) -> MethodResult:
    ranked = rank_gallery(queries, gallery, None, exclude=query_idx)  # never holds the query itself
    q_labels = data.labels[query_idx]
    metrics = evaluate_rankings(ranked, q_labels, data.labels, KS, MAP_KS, exclude=query_idx, full=True)
    pr = precision_recall_curve(ranked, q_labels, data.labels, exclude=query_idx)
    pos = {int(q): i for i, q in enumerate(query_idx)}
    shown = [ranked[pos[q], :TOP_SHOWN].tolist() for q in examples]
    return MethodResult(name, kind, dim, metrics, round(ips, 2), round(query_ms, 3),
                        [round(float(p), 4) for p in pr], shown, derived_from)


def _query_latency(ext: FeatureExtractor, data: LabelledImages, queries: np.ndarray, gallery: np.ndarray) -> float:
    """Median milliseconds to embed one query image and rank the gallery (exact search)."""
    times = []
    for q in queries.tolist():
        image = image_at(data, q, ext.draft_size)
        t0 = time.perf_counter()
        vec = ext.embed([image])
        rank_gallery(vec, gallery, 10)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times)) if times else 0.0


def _robustness_queries(data: LabelledImages, config: EvalConfig) -> RobustnessQueries:
    """Every bundled photo (added to the gallery) plus a seeded sample of dataset images."""
    photos = list(sample_photos().values())
    n = min(config.robustness_queries, len(data))
    picked = np.sort(np.random.default_rng(config.seed + 1).choice(len(data), n, replace=False))
    originals = photos + [image_at(data, int(i)) for i in picked]
    targets = np.concatenate([len(data) + np.arange(len(photos)), picked])
    return make_queries(originals, targets, ["photos"] * len(photos) + ["dataset"] * n, config.seed, extra_gallery=photos)


def _robustness(ext: FeatureExtractor, gallery: np.ndarray, rq: RobustnessQueries, batch_size: int,
                progress: Callable[[int, int], None]) -> dict[str, dict[str, dict[int, float]]]:
    full = np.concatenate([gallery, embed_images(ext, rq.extra_gallery, batch_size)])
    sources = np.array(rq.sources)
    out: dict[str, dict[str, dict[int, float]]] = {}
    for t, name in enumerate(rq.transforms):
        vecs = embed_images(ext, rq.images[name], batch_size)
        ranked = rank_gallery(vecs, full, 10)
        out[name] = {"all": near_duplicate_recall(ranked, rq.targets)}
        for src in ("photos", "dataset"):
            sel = sources == src
            if sel.any():
                out[name][src] = near_duplicate_recall(ranked[sel], rq.targets[sel])
        progress(t + 1, len(rq.transforms))
    return out
