"""`lookalike eval suite`: every method on every domain of eval/domains.py, one table.

Per domain and method: mAP@10 (relevant = same class; for the photos domain the unedited
photo: there it is the mean reciprocal rank within the top 10; for brain a slice within 5 mm
of the query's height), recall@1 and the median time to embed one query. It also returns the
(score, relevant) pairs of every query's top results, which calibration (eval/calibration.py) fits confidence on.

A method is a model name (`lookalike models`) optionally followed by feature options measured
here before any becomes a default: `+flip` (average with the mirrored image's vector) and
`+pcaN` (centring + PCA to N dims, learned on the domain's own gallery, "from the library"),
and re-ranking: `+qe` (alpha-QE, engine/rerank.py, as `search` does it: the expanded query picks
the top results, shown by their cosine to the query), `+dba` (database-side augmentation of
the gallery, measured only) and `+verify` / `+verifyN` (geometric verification of the top 20 / N
results, engine/verify.py; its query time includes decoding each candidate from JPEG bytes, as a
library reads them from disk); for the EfficientNet-Lite models also `+gemP`, `+stageK[wW]`, `+sN`,
`+rmac`, `+pad`, `+crop` (pooling, multi-layer, multi-scale, regional, resize: models/feature_options.py)."""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from ..engine.params import fit_sample
from ..engine.rerank import QueryExpansion, augment_database, expand_queries
from ..engine.verify import DEPTH, inlier_counts, verified_order, verify_images
from ..engine.verify import DRAFT_SIDE as VERIFY_DRAFT
from ..errors import InvalidQuery
from ..imaging import load_image
from ..models import FeatureExtractor, TrainableExtractor, get_extractor, l2_normalize, model_info
from ..models.feature_options import OPTION as FEATURE_OPTION
from ..models.feature_options import options_extractor
from .domains import Domain, load_domains
from .metrics import average_precision, paired_change_interval, rank_gallery

PAIR_DEPTH = 10  # top results per query kept as calibration pairs
LATENCY_QUERIES = 5
BATCH = 64
_OPTION = re.compile(rf"^(flip|pca\d+|qe|dba|verify\d*|{FEATURE_OPTION})$")
_FEATURE_OPTION = re.compile(rf"^({FEATURE_OPTION})$")  # change the network's features, not its vectors

ProgressFn = Callable[[str], None]


@dataclass
class Cell:
    map10: float
    recall1: float
    query_ms: float
    # each query's AP@10 (map10 is their mean): paired intervals against another method
    aps: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


@dataclass
class SuiteResult:
    domains: list[Domain]
    methods: list[str]
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)  # method -> domain -> cell
    # method -> domain -> (scores, relevant) of every query's top PAIR_DEPTH results
    pairs: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    # method -> domain -> (query vectors, gallery vectors), for cross-domain "unrelated" pairs
    vectors: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    seconds: float = 0.0

    def mean(self, method: str) -> float:
        return float(np.mean([c.map10 for c in self.cells[method].values()]))

    def to_dict(self) -> dict:
        return {
            "domains": [{"name": d.name, "task": d.task, "source": d.source, "gallery": len(d.gallery),
                         "queries": len(d.query_labels)} for d in self.domains],
            "methods": {m: {"mean_map10": round(self.mean(m), 4),
                            **{d: {"map10": round(c.map10, 4), "recall1": round(c.recall1, 4),
                                   "query_ms": round(c.query_ms, 2) if c.query_ms else None}  # None: not timed
                               for d, c in self.cells[m].items()}} for m in self.methods},
            "seconds": round(self.seconds, 1),
        }


def parse_method(spec: str) -> tuple[str, list[str]]:
    """"effnet-lite0+flip+pca256" -> ("effnet-lite0", ["flip", "pca256"]); unknown parts fail."""
    name, *options = [p.strip() for p in spec.split("+")]
    model_info(name)
    for o in options:
        if not _OPTION.match(o):
            raise InvalidQuery(f"unknown feature option {o!r} in {spec!r} "
                               f"(known: flip, pcaN, qe, dba, verify, verifyN, gemP, stageK, stageKwW, sN, rmac, pad, crop)")
        if _FEATURE_OPTION.match(o) and not name.startswith("effnet-"):
            raise InvalidQuery(f"feature option {o!r} in {spec!r} needs an effnet-* model")
    return name, options


def embed(ext: FeatureExtractor, images: list[Image.Image], flip: bool) -> np.ndarray:
    out = []
    for s in range(0, len(images), BATCH):
        chunk = images[s:s + BATCH]
        vecs = ext.embed(chunk)
        if flip:  # flip test-time augmentation: left-right mirrored copies vote too
            vecs = l2_normalize(vecs + ext.embed([ImageOps.mirror(im) for im in chunk]))
        out.append(vecs)
    return np.concatenate(out) if out else np.zeros((0, ext.dim), np.float32)


def pca_projection(gallery: np.ndarray, dim: int) -> Callable[[np.ndarray], np.ndarray]:
    """Centre on the gallery mean and keep the top `dim` principal axes (no whitening: a quick
    check found full whitening hurt)."""
    mean = gallery.mean(axis=0)
    _, _, vt = np.linalg.svd(gallery - mean, full_matrices=False)
    axes = vt[:min(dim, len(vt))].T
    return lambda x: l2_normalize((x - mean) @ axes)


def run_domain(ext: FeatureExtractor, options: list[str], domain: Domain
               ) -> tuple[Cell, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    flip = "flip" in options
    gallery = embed(ext, domain.gallery, flip)
    inside = domain.query_index >= 0
    queries = np.empty((len(domain.query_labels), gallery.shape[1]), np.float32)
    queries[inside] = gallery[domain.query_index[inside]]
    outside = np.flatnonzero(~inside)
    if len(outside):
        queries[outside] = embed(ext, [domain.query_images[int(i)] for i in outside], flip)  # type: ignore[misc]
    timings = []
    for i in range(min(LATENCY_QUERIES, len(domain.query_labels))):
        t0 = time.perf_counter()
        embed(ext, [domain.query_image(i)], flip)
        timings.append((time.perf_counter() - t0) * 1000)
    return score_vectors(domain, queries, gallery, options, timings)


def score_vectors(domain: Domain, queries: np.ndarray, gallery: np.ndarray, options: list[str], timings: list[float]
                  ) -> tuple[Cell, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A domain's cell from its query and gallery vectors, after the options that act on
    vectors (pcaN, dba, qe, verify[N]); `timings`: each latency query's embedding ms."""
    for o in options:
        if o.startswith("pca"):
            project = pca_projection(gallery, int(o[3:]))
            gallery, queries = project(gallery), project(queries)
    exclude = domain.query_index
    depth = next((int(o[6:] or DEPTH) for o in options if o.startswith("verify")), 0)
    settings = QueryExpansion()
    if "dba" in options:  # the gallery's stored vectors; its images as queries read them back
        gallery = augment_database(gallery, settings.k, settings.alpha)
        inside = domain.query_index >= 0
        queries = queries.copy()  # the caller's vectors stay as they were
        queries[inside] = gallery[domain.query_index[inside]]
    if "qe" in options:
        ranked = expanded_ranking(queries, gallery, max(PAIR_DEPTH, depth), exclude, settings)
    else:
        ranked = rank_gallery(queries, gallery, max(PAIR_DEPTH, depth), exclude)
    if depth:
        ranked, verify_ms = _verified(domain, queries @ gallery.T, ranked, depth)
        timings = [t + verify_ms for t in timings]
    ranked = ranked[:, :PAIR_DEPTH]
    scores = np.take_along_axis(queries @ gallery.T, ranked, axis=1)
    relevant = domain.relevant(ranked)  # same class, or (brain) within the height tolerance
    aps = np.array([average_precision(r, n, PAIR_DEPTH) for r, n in zip(relevant, domain.n_relevant())])
    cell = Cell(float(aps.mean()), float(relevant[:, 0].mean()), float(np.median(timings)) if timings else 0.0, aps)
    return cell, (scores.astype(np.float32), relevant), (queries, gallery)


def _verified(domain: Domain, sims: np.ndarray, ranked: np.ndarray, depth: int) -> tuple[np.ndarray, float]:
    """Each query's top `depth` re-ranked by geometric verification (engine/verify.py), and the
    median ms that costs per query with the candidates decoded from JPEG bytes."""
    from ..engine.keypoints import keypoints

    cache: dict[int, object] = {}
    out = ranked.copy()
    for i in range(len(ranked)):
        head = ranked[i, :depth]
        cands = [cache.setdefault(int(g), keypoints(domain.gallery[int(g)])) for g in head]
        counts = inlier_counts(domain.query_image(i), cands)  # type: ignore[arg-type]
        out[i, :depth] = head[verified_order(sims[i, head], counts)]
    files: dict[int, bytes] = {}  # the latency: candidates read as a library reads them, from encoded files
    timings = []
    for i in range(min(LATENCY_QUERIES, len(ranked))):
        for g in ranked[i, :depth]:
            files.setdefault(int(g), _jpeg(domain.gallery[int(g)]))
        t0 = time.perf_counter()
        verify_images(domain.query_image(i), [str(int(g)) for g in ranked[i, :depth]],
                      lambda name: load_image(files[int(name)], VERIFY_DRAFT))
        timings.append((time.perf_counter() - t0) * 1000)
    return out, float(np.median(timings)) if timings else 0.0


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def expanded_ranking(queries: np.ndarray, gallery: np.ndarray, k: int, exclude: np.ndarray,
                     settings: QueryExpansion) -> np.ndarray:
    """alpha-QE as `Library.search_vector` does it: the best plain match, then the expanded
    query's best k-1 others, all ordered by their cosine to the query."""
    sims = queries @ gallery.T
    first = rank_gallery(queries, gallery, settings.k, exclude)
    expanded = expand_queries(queries, gallery[first], np.take_along_axis(sims, first, axis=1), settings.alpha)
    again = rank_gallery(expanded, gallery, k + 1, exclude)
    ranked = np.array([[best, *[j for j in row if j != best][:k - 1]] for best, row in zip(first[:, 0], again)])
    order = np.argsort(-np.take_along_axis(sims, ranked, axis=1), axis=1, kind="stable")
    return np.take_along_axis(ranked, order, axis=1)


def run_suite(methods: list[str], domains: list[str] | None = None, seed: int = 0,
              progress: ProgressFn | None = None) -> SuiteResult:
    t_start = time.perf_counter()
    parsed = [parse_method(m) for m in methods]  # unknown names fail before any work
    note = progress or (lambda _msg: None)
    note("loading domains")
    result = SuiteResult(load_domains(domains, seed, note), list(methods))
    for spec, (name, options) in zip(methods, parsed):
        result.cells[spec], result.pairs[spec], result.vectors[spec] = {}, {}, {}
        for d in result.domains:
            note(f"{spec}: {d.name}")
            features = [o for o in options if _FEATURE_OPTION.match(o)]
            ext = options_extractor(name, features) if features else _extractor(name, d)
            cell, pairs, vectors = run_domain(ext, options, d)
            result.cells[spec][d.name], result.pairs[spec][d.name], result.vectors[spec][d.name] = cell, pairs, vectors
    result.seconds = time.perf_counter() - t_start
    return result


def _extractor(name: str, domain: Domain) -> FeatureExtractor:
    """The model; one with state learned per library (sift-vlad's codebook) learns it from
    this domain's gallery, as a library would from its images."""
    ext = get_extractor(name)
    if isinstance(ext, TrainableExtractor) and not ext.is_fitted():
        ext.fit([domain.gallery[i] for i in fit_sample(len(domain.gallery))])
    return ext


def suite_table(result: SuiteResult, baseline: str | None = None) -> str:
    """Markdown: one row per method, mAP@10 (and query ms) per domain, the mean, and the
    change against `baseline` in points when given."""
    names = [d.name for d in result.domains]
    head = "| method | " + " | ".join(f"{n} mAP@10 | {n} ms" for n in names) + " | mean mAP@10 |"
    lines = [head, "|---|" + "---:|---:|" * len(names) + "---:|"]
    for m in result.methods:
        cells = []
        for n in names:
            c = result.cells[m][n]
            delta = ""
            if baseline and baseline != m and baseline in result.cells:
                delta = f" ({100 * (c.map10 - result.cells[baseline][n].map10):+.1f})"
            cells.append(f"{c.map10:.3f}{delta} | {c.query_ms:.0f}" if c.query_ms else f"{c.map10:.3f}{delta} | -")  # -: not timed
        compared = baseline is not None and baseline != m and baseline in result.cells
        mean_delta = f" ({100 * (result.mean(m) - result.mean(baseline)):+.1f})" if compared else ""  # type: ignore[arg-type]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {result.mean(m):.3f}{mean_delta} |")
    return "\n".join(lines)


def change_intervals(result: SuiteResult, baseline: str) -> dict[str, dict[str, list[float]]]:
    """method -> domain (and "mean") -> [change, low, high] in mAP@10 points against `baseline`:
    95 % paired bootstrap intervals over the queries (the same queries for every method), so
    a small loss whose interval spans zero reads as noise and one that does not, as real.
    Domains without queries are left out."""
    out: dict[str, dict[str, list[float]]] = {}
    names = [d.name for d in result.domains if len(d.query_labels)]
    for m in result.methods:
        if m == baseline:
            continue
        pairs = {n: (result.cells[baseline][n].aps, result.cells[m][n].aps) for n in names}
        out[m] = {n: [round(100 * v, 1) for v in paired_change_interval([pairs[n]])] for n in names}
        out[m]["mean"] = [round(100 * v, 1) for v in paired_change_interval(list(pairs.values()))]
    return out


def intervals_table(result: SuiteResult, baseline: str) -> str:
    """Markdown: each method's change against `baseline` per domain and on the mean, in points,
    with its 95 % interval."""
    names = [d.name for d in result.domains if len(d.query_labels)]
    lines = [f"change in mAP@10 points against {baseline}, 95 % paired bootstrap interval over the queries",
             "| method | " + " | ".join(names) + " | mean |", "|---|" + "---:|" * (len(names) + 1)]
    for m, row in change_intervals(result, baseline).items():
        lines.append(f"| {m} | " + " | ".join(f"{c:+.1f} [{lo:+.1f}, {hi:+.1f}]" for c, lo, hi in row.values()) + " |")
    return "\n".join(lines)
