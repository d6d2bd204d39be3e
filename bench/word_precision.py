"""Precision@10 of everyday words (`lookalike search --text WORD`) on labelled images that
install offline: a Fashion-MNIST test sample (10 clothing classes) plus the photos that
scikit-image and scikit-learn ship (hand-labelled below), indexed into one real library.

    python bench/word_precision.py [--fashion 1000]"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from lookalike import Library
from lookalike.demo.samples import build_gallery
from lookalike.eval.datasets import load_fashion_mnist

# word -> the Fashion-MNIST classes that are right answers for it.
FASHION_WORDS = {
    "shirt": {"T-shirt/top", "Shirt"}, "t-shirt": {"T-shirt/top"}, "sweater": {"Pullover"},
    "trousers": {"Trouser"}, "dress": {"Dress"}, "coat": {"Coat"}, "sandal": {"Sandal"},
    "shoe": {"Sneaker", "Sandal", "Ankle boot"}, "boot": {"Ankle boot"}, "bag": {"Bag"},
}
# word -> the bundled photos that show it (each photo's content, judged by eye).
PHOTO_WORDS = {"cat": {"chelsea"}, "coffee": {"coffee"}, "cup": {"coffee"}, "rocket": {"rocket"},
               "flower": {"flower"}, "building": {"china"}, "camera": {"camera"}, "animal": {"chelsea"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fashion", type=int, default=1000)
    args = ap.parse_args()
    data = load_fashion_mnist("test")
    idx = np.random.default_rng(0).permutation(len(data))[: args.fashion]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        truth: dict[str, str] = {}
        for i in idx:
            name = data.class_names[data.labels[i]]
            path = root / "fashion" / f"{int(i)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            data.image(int(i)).save(path)
            truth[str(path)] = name
        for name, files in build_gallery(root / "photos", with_variants=False).items():
            truth[str(files[0])] = name
        with Library.open(root / "lib") as lib:
            lib.add([root / "fashion", root / "photos"])
            paths = {r.path: r.path for r in lib.records()}
            print(f"{len(paths)} images: {len(idx)} Fashion-MNIST test + {len(paths) - len(idx)} bundled photos")
            print("| word | ImageNet classes | right answers in library | P@10 | hits |\n|---|---|---|---|---|")
            rows = []
            for word, right in [*FASHION_WORDS.items(), *PHOTO_WORDS.items()]:
                hits = lib.search_text(word, k=10)
                n_right = sum(truth.get(h.path) in right for h in hits)
                available = sum(v in right for v in truth.values())
                p = n_right / min(10, available)
                rows.append(p)
                print(f"| {word} | {len(lib.expand(word).labels)} | {available} | {p:.2f} | {len(hits)} |")
            print(f"mean P@10 over {len(rows)} words: {np.mean(rows):.3f}")


if __name__ == "__main__":
    main()
