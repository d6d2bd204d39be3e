"""`lookalike eval brain-slices`: does a method find the slice at the same height of another brain?

Queries are the axial slices of the single-subject template in Debian's mricron-data (Colin27
`ch2`, skull on), the gallery the axial slices of the MNI152 2009a template bundled in nilearn's
wheel (skull stripped). Both live in MNI space, so a slice's height z (mm) is a ground truth:
the retrieved slice should be at the query's height. Each slice is cropped to its own
foreground, so position in the frame gives nothing away. This measures structure retrieval
between two different brains and acquisitions; there is no labelled anomaly data offline, so
nothing here measures finding anomalies.

Also here: which aggregate ranks whole series best (slabs of slices as series), and, where
pydicom-data is installed, compression invariance (a lossy JPEG 2000 copy finds its original)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from ..config import cache_dir
from ..errors import MissingExtra, NotFound
from ..models import TrainableExtractor, get_extractor, l2_normalize, model_info
from .harness import embed_images

CH2 = Path("/usr/share/mricron/templates/ch2.nii.gz")
FOREGROUND = 0.10  # of the window's range: what counts as tissue when cropping
MIN_AREA = 0.02  # slices with less tissue than this share of the frame are left out
TOLERANCE_MM = 5.0
PIXELS = "pixels"  # the plain-pixel baseline: 32x32 grey, centred, L2-normalised
SLAB = 15  # slices per series in the series-aggregate measurement
QUERY_STRIDE = 5
CACHE_VERSION = 1  # bump when the rendering (window, crop) changes
ProgressFn = Callable[[str, int, int], None]


@dataclass
class SliceSet:
    images: list[Image.Image]
    heights: np.ndarray  # mm, world z


@dataclass
class BrainMethod:
    name: str
    kind: str
    median_error_mm: float
    recall_5mm: float
    spearman: float
    seconds: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class BrainResult:
    queries: int
    gallery: int
    methods: list[BrainMethod] = field(default_factory=list)
    aggregates: list[dict] = field(default_factory=list)  # series aggregates (the first deep method)
    compression: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"task": "brain-slices", "queries": self.queries, "gallery": self.gallery,
                "methods": [m.to_dict() for m in self.methods], "series_aggregates": self.aggregates,
                "compression": self.compression}


def load_slices() -> tuple[SliceSet, SliceSet]:
    """(queries: ch2 slices, gallery: MNI152 slices), windowed and cropped to their foreground.
    Rendered once into the cache (a few seconds of NIfTI decoding), keyed by both sources."""
    if not CH2.exists():
        raise NotFound(f"{CH2} is missing: apt-get install mricron-data")
    try:  # the version, without importing nilearn (seconds): the template ships in its wheel
        nilearn_version = metadata.version("nilearn")
    except metadata.PackageNotFoundError:
        raise MissingExtra("the brain-slices evaluation", "medical-eval") from None
    stat = CH2.stat()
    path = cache_dir() / "eval" / f"brain-slices-v{CACHE_VERSION}-{stat.st_size}-{int(stat.st_mtime)}-nilearn{nilearn_version}.npz"
    if path.exists():
        try:
            return _read_cache(path)
        except (OSError, ValueError, KeyError):
            pass  # a torn or foreign file: render again
    queries, gallery = _render()
    _write_cache(path, queries, gallery)
    return queries, gallery


def _read_cache(path: Path) -> tuple[SliceSet, SliceSet]:
    with np.load(path) as z:
        return tuple(SliceSet([Image.fromarray(z[f"{side}{i}"], "L").convert("RGB") for i in range(len(z[f"{side}_heights"]))],
                              z[f"{side}_heights"]) for side in ("q", "g"))  # type: ignore[return-value]


def _write_cache(path: Path, queries: SliceSet, gallery: SliceSet) -> None:
    arrays: dict[str, Any] = {}
    for side, s in (("q", queries), ("g", gallery)):
        arrays[f"{side}_heights"] = s.heights
        arrays.update({f"{side}{i}": np.asarray(im.convert("L")) for i, im in enumerate(s.images)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)  # atomic: a parallel run never reads half a file


def _render() -> tuple[SliceSet, SliceSet]:
    from ..medical.nifti import axial_slice, load_volume, slice_height

    try:
        import nibabel as nib
        from nilearn.datasets import load_mni152_template
    except ModuleNotFoundError:
        raise MissingExtra("the brain-slices evaluation", "medical-eval") from None
    q_vol, q_aff = load_volume(CH2.read_bytes(), str(CH2))
    mni = nib.as_closest_canonical(load_mni152_template(resolution=1))
    g_vol, g_aff = np.asarray(mni.dataobj, dtype=np.float32), np.asarray(mni.affine, dtype=np.float64)
    sets = []
    for vol, aff in ((q_vol, q_aff), (g_vol, g_aff)):
        grey = _window(vol)
        images, heights = [], []
        for k in range(vol.shape[2]):
            crop = _crop(axial_slice(grey, k))
            if crop is not None:
                images.append(Image.fromarray(crop, "L").convert("RGB"))
                heights.append(slice_height(aff, vol.shape, k))
        sets.append(SliceSet(images, np.asarray(heights)))
    queries, gallery = sets
    # Only heights both brains have: a query above the gallery's top cannot be answered.
    keep = (queries.heights >= gallery.heights.min()) & (queries.heights <= gallery.heights.max())
    queries = SliceSet([im for im, k in zip(queries.images, keep) if k], queries.heights[keep])
    return queries, gallery


def _window(vol: np.ndarray) -> np.ndarray:
    from ..medical.window import apply_window, robust_range

    nonzero = vol[vol > 0]
    lo, hi = robust_range(nonzero if nonzero.size else vol)
    return apply_window(vol, (lo + hi) / 2, max(hi - lo, 1e-6))


def _crop(img: np.ndarray) -> np.ndarray | None:
    mask = img > 255 * FOREGROUND
    if mask.mean() < MIN_AREA:
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.ascontiguousarray(img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])


def pixel_vectors(images: list[Image.Image]) -> np.ndarray:
    rows = []
    for im in images:
        a = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.BILINEAR), np.float32).ravel()
        rows.append(a - a.mean())
    return l2_normalize(np.stack(rows))


def embed_method(name: str, queries: SliceSet, gallery: SliceSet, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray, str]:
    if name == PIXELS:
        return pixel_vectors(queries.images), pixel_vectors(gallery.images), "baseline"
    ext = get_extractor(name)
    if isinstance(ext, TrainableExtractor) and not ext.is_fitted():
        ext.fit(gallery.images)  # learned on the gallery, as a library learns on what it indexes
    return embed_images(ext, queries.images, batch_size), embed_images(ext, gallery.images, batch_size), model_info(name).kind


def score_heights(q: np.ndarray, g: np.ndarray, q_heights: np.ndarray, g_heights: np.ndarray) -> tuple[float, float, float]:
    """(median |height error| mm, share within TOLERANCE_MM, Spearman of query vs retrieved height) at rank 1."""
    from scipy.stats import spearmanr

    top = np.argmax(q @ g.T, axis=1)
    found = g_heights[top]
    errors = np.abs(found - q_heights)
    rho = spearmanr(q_heights, found).statistic
    return float(np.median(errors)), float(np.mean(errors <= TOLERANCE_MM)), float(rho)


def series_aggregates(q: np.ndarray, g: np.ndarray, q_heights: np.ndarray, g_heights: np.ndarray) -> list[dict]:
    """Slabs of SLAB slices as series: each query slab (every QUERY_STRIDE slices) should rank
    first the gallery slab whose centre is nearest its own. Scored per aggregate."""
    from ..engine.series import AGGREGATES, aggregate_series

    g_slab = np.arange(len(g_heights)) // SLAB
    centres = np.array([g_heights[g_slab == s].mean() for s in range(g_slab.max() + 1)])
    sims = q @ g.T
    out = []
    starts = range(0, len(q_heights) - SLAB + 1, QUERY_STRIDE)
    for aggregate in AGGREGATES:
        hits, errors = 0, []
        for s in starts:
            rows = []
            for i in range(s, s + SLAB):
                order = np.argsort(-sims[i])
                rows.append([(int(j), float(sims[i, j])) for j in order])
            ranked = aggregate_series(rows, {j: str(g_slab[j]) for j in range(len(g_heights))}, aggregate)
            best = int(max(ranked.items(), key=lambda kv: kv[1][0])[0])
            centre = q_heights[s:s + SLAB].mean()
            hits += int(best == int(np.argmin(np.abs(centres - centre))))
            errors.append(abs(centres[best] - centre))
        out.append({"aggregate": aggregate, "series_queries": len(starts), "top1": round(hits / max(1, len(starts)), 4),
                    "median_centre_error_mm": round(float(np.median(errors)), 2)})
    return out


def compression_invariance(method: str) -> dict | None:
    """pydicom-data's images stored uncompressed and as lossy JPEG 2000: does the lossy copy
    find its original among every uncompressed image? None without pydicom-data."""
    try:
        from pydicom.data import get_testdata_file
    except ModuleNotFoundError:
        return None
    from ..medical.reader import read_scan

    bases = ["693", "MR2", "RG1", "RG3", "US1"]
    originals, lossy = [], []
    for b in bases:
        original, compressed = get_testdata_file(f"{b}_UNCI.dcm", download=False), get_testdata_file(f"{b}_J2KI.dcm", download=False)
        if not isinstance(original, str) or not isinstance(compressed, str):
            return None
        originals.append(read_scan(Path(original).read_bytes(), original)[0].image)
        lossy.append(read_scan(Path(compressed).read_bytes(), compressed)[0].image)
    ext = get_extractor(method)
    sims = ext.embed(lossy) @ ext.embed(originals).T
    return {"method": method, "pairs": len(bases), "top1": float(np.mean(np.argmax(sims, axis=1) == np.arange(len(bases)))),
            "mean_cosine_to_original": round(float(np.mean(np.diag(sims))), 4)}


def run_brain_slices(methods: list[str], progress: ProgressFn | None = None) -> BrainResult:
    progress = progress or (lambda stage, done, total: None)
    queries, gallery = load_slices()
    result = BrainResult(len(queries.images), len(gallery.images))
    names = [m for m in methods if m != PIXELS] + [PIXELS]
    for i, name in enumerate(names):
        progress("methods", i, len(names))
        t0 = time.perf_counter()
        q, g, kind = embed_method(name, queries, gallery)
        med, rec, rho = score_heights(q, g, queries.heights, gallery.heights)
        result.methods.append(BrainMethod(name, kind, round(med, 2), round(rec, 4), round(rho, 4), round(time.perf_counter() - t0, 2)))
        if not result.aggregates and kind == "bundled":
            result.aggregates = series_aggregates(q, g, queries.heights, gallery.heights)
    progress("methods", len(names), len(names))
    deep = next((m.name for m in result.methods if m.kind == "bundled"), None)
    if deep is not None:
        comp = compression_invariance(deep)
        if comp is not None:
            result.compression.append(comp)
    return result


def brain_table(result: BrainResult) -> str:
    lines = [f"brain-slices: {result.queries} ch2 query slices vs {result.gallery} MNI152 gallery slices (rank 1)",
             "", "| method | kind | median height error (mm) | recall within ±5 mm | Spearman | seconds |",
             "|---|---|---:|---:|---:|---:|"]
    for m in result.methods:
        lines.append(f"| {m.name} | {m.kind} | {m.median_error_mm:.1f} | {m.recall_5mm:.3f} | {m.spearman:.3f} | {m.seconds:.1f} |")
    if result.aggregates:
        lines += ["", f"series of {SLAB} slices ranked by aggregate (first deep method):", "",
                  "| aggregate | series queries | top-1 | median centre error (mm) |", "|---|---:|---:|---:|"]
        lines += [f"| {a['aggregate']} | {a['series_queries']} | {a['top1']:.3f} | {a['median_centre_error_mm']:.1f} |"
                  for a in result.aggregates]
    for c in result.compression:
        lines += ["", f"compression invariance ({c['method']}): {c['pairs']} lossy JPEG 2000 images find their original "
                      f"at rank 1 in {c['top1']:.0%} of cases; mean cosine to the original {c['mean_cosine_to_original']:.4f}"]
    return "\n".join(lines)


def write_brain_report(result: BrainResult, out_dir: Path) -> list[Path]:
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "brain-slices.md", out_dir / "brain-slices.json"
    md.write_text(brain_table(result) + "\n")
    js.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return [md, js]
