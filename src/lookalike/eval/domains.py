"""The labelled collections of the development suite (`lookalike eval suite`), each from a
package installed from a registry, each small enough to embed in seconds on 2 cores.

- products: Fashion-MNIST (Debian `dataset-fashion-mnist`), category retrieval;
- photos: real photos shipped by scikit-image / scikit-learn under 12 edits (eval/robustness.py),
  instance retrieval ("find this photo") among the photos plus scikit-image's LFW subset as
  distractors;
- photos-hard: the same photos plus KDE Palapeli's puzzle photos (Debian `palapeli-data`) and
  half of MATE's nature photographs (Debian `mate-backgrounds`) under 9 harsh edits
  (eval/hard_edits.py: tight crops, rotated crops, perspective, half covered, ...), among
  close-ups cut from the other half, MATE's other wallpapers and the LFW faces;
- icons: GNOME's 48 px icon theme (Debian `gnome-icon-theme`), labelled by context folder
  (actions, apps, devices, mimetypes, places, status, ...);
- digits: scikit-learn's bundled handwritten digits (8x8 scans, 10 classes);
- brain: axial slices of one brain (Debian mricron-data's ch2) searched among another's (the
  MNI152 template in nilearn's wheel, the `medical-eval` extra); relevant = a gallery slice
  within TOLERANCE_MM of the query's height (eval/brain_slices.py)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..config import cache_dir
from ..errors import MissingExtra, NotFound
from ..extras import require
from .datasets import fashion_mnist_available, load_fashion_mnist
from .hard_edits import HARD_EDITS
from .robustness import TRANSFORMS

ICON_THEME = Path("/usr/share/icons/gnome/48x48")
MATE_BACKGROUNDS = Path("/usr/share/backgrounds/mate")
PALAPELI_PHOTOS = Path("/usr/share/palapeli/collection")
PLASMA_WALLPAPERS = Path("/usr/share/wallpapers")
# The Plasma wallpapers that are photographs (the others are drawings: distractors).
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite", "OneStandsOut",
                 "Path", "summer_1am")
HARD_CROPS = 40  # distractor close-ups cut from each held-out MATE nature photo
HARD_SIDE = 640  # photos-hard images at most this long a side: enough for the model and keypoints
ICON_CONTEXTS = ("actions", "apps", "categories", "devices", "emblems", "emotes", "mimetypes", "places", "status")


@dataclass
class Domain:
    """A gallery with labels and queries with labels. `query_index[i] >= 0`: query i is that
    gallery image (excluded from its own results); -1: an outside image (`query_images[i]`)."""

    name: str
    task: str  # "category" or "instance"
    source: str  # where the images come from, for the report
    gallery: list[Image.Image]
    gallery_labels: np.ndarray
    query_labels: np.ndarray
    query_index: np.ndarray
    query_images: Sequence[Image.Image | None] = field(default_factory=list)
    tolerance: float | None = None

    def query_image(self, i: int) -> Image.Image:
        j = int(self.query_index[i])
        return self.gallery[j] if j >= 0 else self.query_images[i]  # type: ignore[return-value]

    def relevant(self, ranked: np.ndarray) -> np.ndarray:
        """[queries, k] booleans: is each ranked gallery index relevant to its query?"""
        return self._match(self.gallery_labels[ranked], self.query_labels[:, None])

    def n_relevant(self) -> np.ndarray:
        """Relevant gallery images per query, the query itself (when in the gallery) not counted."""
        n = self._match(self.gallery_labels[None, :], self.query_labels[:, None]).sum(axis=1)
        inside = self.query_index >= 0
        n[inside] -= self._match(self.gallery_labels[self.query_index[inside]], self.query_labels[inside])
        return n

    def _match(self, gallery: np.ndarray, query: np.ndarray) -> np.ndarray:
        return gallery == query if self.tolerance is None else np.abs(gallery - query) <= self.tolerance


def _category(name: str, source: str, images: list[Image.Image], labels: np.ndarray, n_queries: int,
              seed: int) -> Domain:
    rng = np.random.default_rng(seed)
    q = np.sort(rng.choice(len(images), min(n_queries, len(images)), replace=False))
    return Domain(name, "category", source, images, np.asarray(labels), np.asarray(labels)[q], q, [None] * len(q))


def products(size: int = 600, n_queries: int = 150, seed: int = 0) -> Domain:
    data = load_fashion_mnist("test")
    idx = np.sort(np.random.default_rng(seed).permutation(len(data))[:size])
    images = [Image.fromarray(data.pixels[i]).convert("RGB") for i in idx]  # type: ignore[index]
    return _category("products", "Fashion-MNIST test split, 10 classes", images, data.labels[idx], n_queries, seed)


def icons(per_class: int = 60, n_queries: int = 150, seed: int = 0, root: Path = ICON_THEME) -> Domain:
    """Distinct icons (symbolic links and identical files counted once) per context folder."""
    if not root.is_dir():
        raise NotFound(f"{root} not found: install Debian's gnome-icon-theme (apt-get install gnome-icon-theme)")
    rng = np.random.default_rng(seed)
    images, labels, seen = [], [], set()
    contexts = [c for c in ICON_CONTEXTS if (root / c).is_dir()]
    for label, context in enumerate(contexts):
        files = []
        for p in sorted((root / context).glob("*.png")):
            real = os.path.realpath(p)
            digest = hashlib.sha256(Path(real).read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                files.append(real)
        if len(files) < 5:  # too few to retrieve anything
            continue
        for i in np.sort(rng.permutation(len(files))[:per_class]):
            images.append(_on_white(Image.open(files[i])))
            labels.append(label)
    return _category("icons", f"GNOME icon theme 48 px, {len(set(labels))} context folders", images,
                     np.array(labels), n_queries, seed)


def digits(size: int = 600, n_queries: int = 150, seed: int = 0) -> Domain:
    load = require("sklearn.datasets", feature="the digits domain of the suite", extra="eval").load_digits
    bunch = load()
    idx = np.sort(np.random.default_rng(seed).permutation(len(bunch.target))[:size])
    # 0..16 ink levels, ink dark on white like a scan.
    images = [Image.fromarray((255 - bunch.images[i] * 255 / 16).astype(np.uint8)).convert("RGB") for i in idx]
    return _category("digits", "scikit-learn handwritten digits (8x8), 10 classes", images, bunch.target[idx],
                     n_queries, seed)


def photos(seed: int = 0, distractors: int = 200) -> Domain:
    """Each bundled photo under every edit; the right answer is the unedited photo, among the
    photos and `distractors` real face / non-face crops (scikit-image's LFW subset)."""
    from ..demo.samples import sample_photos

    data = require("skimage.data", feature="the photos domain of the suite", extra="eval")
    originals = list(sample_photos().values())
    lfw = data.lfw_subset()[:distractors]
    extra = [Image.fromarray((np.asarray(a) * 255).astype(np.uint8)).convert("RGB") for a in lfw]
    gallery = originals + extra
    labels = np.concatenate([np.arange(len(originals)), -1 - np.arange(len(extra))])  # distractors: own labels
    rng = np.random.default_rng(seed)
    q_images, q_labels = [], []
    for tf in TRANSFORMS.values():
        for i, im in enumerate(originals):
            q_images.append(tf(im, rng).convert("RGB"))
            q_labels.append(i)
    return Domain("photos", "instance", f"{len(originals)} scikit-image/scikit-learn photos x {len(TRANSFORMS)} edits, "
                  f"{len(extra)} distractors", gallery, labels, np.array(q_labels),
                  np.full(len(q_images), -1), q_images)


def brain(seed: int = 0) -> Domain:
    """Every ch2 slice (at heights the MNI152 template also has) against every MNI152 slice;
    deterministic, so `seed` is unused."""
    from .brain_slices import TOLERANCE_MM, load_slices

    queries, gallery = load_slices()
    return Domain("brain", "position", f"{len(queries.images)} ch2 axial slices vs {len(gallery.images)} MNI152 slices, "
                  f"relevant within ±{TOLERANCE_MM:g} mm", gallery.images, gallery.heights, queries.heights,
                  np.full(len(queries.images), -1), queries.images, tolerance=TOLERANCE_MM)


def photos_hard(seed: int = 0, distractors: int = 200, root: Path = MATE_BACKGROUNDS,
                puzzles: Path = PALAPELI_PHOTOS, plasma: Path = PLASMA_WALLPAPERS) -> Domain:
    """"Find this photo" from a detail. Originals: the bundled photos, KDE Palapeli's puzzle
    photos and every other MATE and Plasma wallpaper photograph, each under every harsh edit;
    the right answer is the unedited photo. Distractors that look like the queries: random
    crops (10-50% of the area) of the remaining wallpaper photographs, which no query comes
    from (close-ups of flowers, grass, water and lakes beside close-ups of flowers, grass,
    water and lakes), the drawn wallpapers and the LFW faces. Built once into the cache
    (about a minute); loading it again takes seconds."""
    for folder, package in _hard_sources(root, puzzles, plasma):
        if not folder.is_dir():
            raise NotFound(f"{folder} not found: install Debian's {package} (apt-get install {package})")
    cached = cache_dir() / "suite" / f"photos-hard-v1-seed{seed}-d{distractors}.npz"
    if cached.is_file():
        with np.load(cached) as z:
            gallery, q_images = _unpack(z, "gallery"), _unpack(z, "queries")
            labels, q_labels = z["labels"], z["query_labels"]
    else:
        gallery, labels, q_images, q_labels = _build_photos_hard(seed, distractors, root, puzzles, plasma)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")  # two runs building it at once never share one
        arrays = {"labels": labels, "query_labels": q_labels, **_pack("gallery", gallery), **_pack("queries", q_images)}
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as its allow_pickle flag
        os.replace(tmp, cached)
    n = int((labels >= 0).sum())
    return Domain("photos-hard", "instance", f"{n} scikit-image/scikit-learn/Palapeli/MATE photos x {len(HARD_EDITS)} "
                  f"harsh edits, {len(gallery) - n} distractors", gallery, labels, q_labels,
                  np.full(len(q_images), -1), q_images)


def photos_hard_available() -> bool:
    return all(folder.is_dir() for folder, _ in _hard_sources(MATE_BACKGROUNDS, PALAPELI_PHOTOS, PLASMA_WALLPAPERS))


def _hard_sources(root: Path, puzzles: Path, plasma: Path) -> list[tuple[Path, str]]:
    """(a folder photos-hard reads, the Debian package that installs it)."""
    return [(root / "nature", "mate-backgrounds"), (puzzles, "palapeli-data"), (plasma / "Path", "plasma-workspace-wallpapers")]


def _build_photos_hard(seed: int, distractors: int, root: Path, puzzles: Path, plasma: Path
                       ) -> tuple[list[Image.Image], np.ndarray, list[Image.Image], np.ndarray]:
    from ..demo.samples import sample_photos
    from .hard_edits import crop_area

    data = require("skimage.data", feature="the photos-hard domain of the suite", extra="eval")
    rng = np.random.default_rng(seed)
    nature = [_fit(_open_photo(p)) for p in sorted((root / "nature").glob("*.jpg"))]
    plasma_dirs = sorted(d for d in plasma.iterdir() if (d / "contents" / "images").is_dir())
    nature += [_fit(_open_photo(wallpaper_file(d))) for d in plasma_dirs if d.name in PLASMA_PHOTOS]
    originals = [_fit(im) for im in sample_photos().values()] + [_fit(_open_photo(p)) for p in sorted(puzzles.glob("*.jpg"))]
    originals += nature[0::2]
    close_ups = [crop_area(im, rng, float(rng.uniform(0.1, 0.5))) for im in nature[1::2] for _ in range(HARD_CROPS)]
    others = [_fit(_open_photo(p)) for p in sorted(root.glob("*/*")) if p.parent.name != "nature"
              and p.suffix.lower() in (".jpg", ".png") and not re.search(r"_\d+x\d+$", p.stem)]  # one size each
    others += [_fit(_open_photo(wallpaper_file(d))) for d in plasma_dirs if d.name not in PLASMA_PHOTOS]
    lfw = [Image.fromarray((np.asarray(a) * 255).astype(np.uint8)).convert("RGB") for a in data.lfw_subset()[:distractors]]
    gallery = originals + close_ups + others + lfw
    labels = np.concatenate([np.arange(len(originals)), -1 - np.arange(len(gallery) - len(originals))])
    q_images, q_labels = [], []
    for edit in HARD_EDITS.values():
        for i, im in enumerate(originals):
            q_images.append(edit(im, rng).convert("RGB"))
            q_labels.append(i)
    return gallery, labels, q_images, np.array(q_labels)


def wallpaper_file(wallpaper: Path) -> Path:
    """A Plasma wallpaper comes in many sizes named WxH: the smallest landscape one from 1280
    wide (else the widest), so decoding stays quick."""
    sizes = []
    for p in (wallpaper / "contents" / "images").iterdir():
        m = re.match(r"(\d+)x(\d+)$", p.stem)
        if m:
            sizes.append((int(m[1]), int(m[2]), p))
    wide = sorted((w, h, p) for w, h, p in sizes if w >= h and w >= 1280)
    return wide[0][2] if wide else max(sizes, key=lambda t: (t[0], str(t[2])))[2]


def _open_photo(path: Path) -> Image.Image:
    im = Image.open(path)
    im.draft("RGB", (HARD_SIDE, HARD_SIDE))  # JPEG: decode at a reduced scale
    return im.convert("RGB")


def _fit(im: Image.Image) -> Image.Image:
    im = im.convert("RGB")
    if max(im.size) > HARD_SIDE:
        s = HARD_SIDE / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.LANCZOS)
    return im


def _pack(name: str, images: list[Image.Image]) -> dict[str, np.ndarray]:
    """Images of different sizes as one flat uint8 array plus their shapes (no pickles)."""
    arrays = [np.asarray(im, np.uint8) for im in images]
    return {f"{name}_pixels": np.concatenate([a.ravel() for a in arrays]),
            f"{name}_shapes": np.array([a.shape for a in arrays], np.int64)}


def _unpack(z, name: str) -> list[Image.Image]:
    pixels, shapes = z[f"{name}_pixels"], z[f"{name}_shapes"]
    out, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(Image.fromarray(pixels[at:at + size].reshape(shape)))
        at += size
    return out


def _on_white(im: Image.Image) -> Image.Image:
    """Transparent icons flattened on white, as a file browser shows them."""
    im = im.convert("RGBA")
    canvas = Image.new("RGBA", im.size, (255, 255, 255, 255))
    canvas.alpha_composite(im)
    return canvas.convert("RGB")


DOMAINS: dict[str, Callable[..., Domain]] = {"products": products, "photos": photos, "photos-hard": photos_hard,
                                             "icons": icons, "digits": digits, "brain": brain}
# Skipped with a note, not an error, when their Debian packages or extra are missing and they
# were not asked for by name.
OPTIONAL = ("photos-hard", "brain")


def load_domains(names: list[str] | None = None, seed: int = 0, note: Callable[[str], None] | None = None) -> list[Domain]:
    """The domains asked for (default all), skipping products when Fashion-MNIST is not
    installed and an OPTIONAL domain whose extra or data is missing (with a `note`)."""
    asked = bool(names)
    names = names or [n for n in DOMAINS if n != "products" or fashion_mnist_available()]
    unknown = [n for n in names if n not in DOMAINS]
    if unknown:
        from ..errors import InvalidQuery

        raise InvalidQuery(f"unknown suite domain {unknown[0]!r} (available: {', '.join(DOMAINS)})")
    out = []
    for n in names:
        try:
            out.append(DOMAINS[n](seed=seed))
        except (MissingExtra, NotFound) as e:
            if asked or n not in OPTIONAL:
                raise
            (note or (lambda _msg: None))(f"skipping the {n} domain: {e}")
    return out
