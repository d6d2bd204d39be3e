"""Real image features for store and index tests and benchmarks, and larger sets made from them.

Real: EfficientNet-Lite0 features of Fashion-MNIST product photos (Debian
`dataset-fashion-mnist`), cached as .npy so each image is embedded once per machine.
Extended: mixtures of two real features with random weights plus a little noise, so a large
set has the neighbourhood structure of real features instead of near-identical copies."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from lookalike.config import cache_dir

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist(split: str = "train") -> np.ndarray:
    """uint8 [n, 28, 28] grey product photos (train: 60k, t10k: 10k)."""
    path = FASHION_MNIST / f"{split}-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)


def fashion_mnist_features(n: int, split: str = "train", model: str = "effnet-lite0",
                           batch: int = 64, progress: bool = False) -> np.ndarray:
    """L2-normalised model features of the first n images of a split, float32 [n, dim];
    computed once and cached (resumes from a partial cache)."""
    from lookalike.models import ENSEMBLE, get_extractor
    from lookalike.models.ensemble import EnsembleExtractor

    if model == ENSEMBLE:  # each network's features, cached on their own, joined
        pair = get_extractor(model)
        assert isinstance(pair, EnsembleExtractor)
        return EnsembleExtractor.join(
            fashion_mnist_features(n, split, pair.first.name, batch, progress),
            fashion_mnist_features(n, split, pair.second.name, batch, progress))
    folder = cache_dir() / "features"
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / f"fmnist-{split}-{model}.npy"
    have = np.load(cache) if cache.exists() else None
    if have is not None and len(have) >= n:
        return have[:n]
    images = fashion_mnist(split)[:n]
    ext = get_extractor(model)
    size = ext.input_size
    parts = [have] if have is not None else []
    done = len(have) if have is not None else 0
    from PIL import Image

    while done < n:
        chunk = images[done:done + batch]
        pixels = np.stack([np.asarray(Image.fromarray(im).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
                           for im in chunk])
        parts.append(ext.embed_batch(pixels).vectors.astype(np.float32))
        done += len(chunk)
        unsaved = len(parts) - 1 if have is not None else len(parts)
        if progress:
            print(f"\rembedding Fashion-MNIST {split} {done}/{n}", end="", flush=True)
        if unsaved >= 16 or done >= n:  # checkpoint: an interrupted run resumes here
            parts = [np.concatenate(parts)]
            have = parts[0]
            tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, have)
            os.replace(tmp, cache)  # readers in other processes never see a half-written file
    if progress:
        print()
    return np.concatenate(parts)[:n]


def mixed(real: np.ndarray, n: int, seed: int = 0, noise: float = 0.02,
          partners: np.ndarray | None = None) -> np.ndarray:
    """n unit vectors: each a random mix w*a + (1-w)*b of two real vectors a, b (w uniform in
    [0.5, 1), so every vector stays nearest to one real image, as copies and edits of it do),
    plus isotropic noise of relative size `noise`, re-normalised. `partners` [len(real), m]:
    b is drawn among a's m listed neighbours (keeps mixes on the features' manifold); else
    b is any real vector. Mixing keeps the local geometry of real features; repeating them
    would make each true top-10 a random pick among near-identical copies."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        ia = rng.integers(0, len(real), m)
        if partners is None:
            ib = rng.integers(0, len(real), m)
        else:
            ib = partners[ia, rng.integers(0, partners.shape[1], m)]
        w = rng.uniform(0.5, 1.0, size=(m, 1)).astype(np.float32)
        v = w * real[ia] + (1 - w) * real[ib]
        v += rng.normal(scale=noise / np.sqrt(real.shape[1]), size=v.shape).astype(np.float32)
        out[s:s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k most cosine-similar rows of `data` for each query (unit vectors)."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 256):
        sims = queries[s:s + 256] @ data.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
        out[s:s + 256] = np.take_along_axis(part, order, axis=1)
    return out


def recall_at_k(found: list[list[int]], truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t.tolist())) / k for f, t in zip(found, truth)]))
