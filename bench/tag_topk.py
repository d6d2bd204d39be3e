"""How many class probabilities per image word search needs: for every (image, word) pair
where the word's ImageNet classes hold at least 10 % of the image's probability, the share
of that mass the stored top-K keeps. Images: the bundled photos + a Fashion-MNIST sample.

    python bench/tag_topk.py [--fashion 500]"""

from __future__ import annotations

import argparse

import numpy as np

from lookalike.demo.samples import sample_photos
from lookalike.eval.datasets import load_fashion_mnist
from lookalike.models import get_extractor
from lookalike.models.wordnet import wordnet_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fashion", type=int, default=500)
    ap.add_argument("--max-classes", type=int, default=150, help="skip broader words (object, artifact, ...)")
    args = ap.parse_args()
    ext = get_extractor("effnet-lite0")
    images = list(sample_photos().values())
    fm = load_fashion_mnist("test")
    images += [fm.image(int(i)) for i in np.random.default_rng(0).permutation(len(fm))[: args.fashion]]
    batch = np.stack([ext.preprocess(im) for im in images])
    probs = np.concatenate([ext.session.run(["probs"], {"images": batch[i:i + 64]})[0] for i in range(0, len(batch), 64)])
    table = wordnet_table()
    concepts = [np.array(c.classes) for c in table.concepts.values() if 2 <= len(c.classes) <= args.max_classes]
    order = np.argsort(-probs, axis=1)
    print(f"{len(images)} images, {len(concepts)} words with 2 to {args.max_classes} classes")
    print("| K | mean share kept | pairs with >= 90 % kept |\n|---|---|---|")
    for k in (5, 10, 20, 50, 100):
        kept_mask = np.zeros_like(probs, dtype=bool)
        np.put_along_axis(kept_mask, order[:, :k], True, axis=1)
        shares = []
        for cl in concepts:
            full = probs[:, cl].sum(1)
            kept = (probs[:, cl] * kept_mask[:, cl]).sum(1)
            sel = full >= 0.1
            shares += list(kept[sel] / full[sel])
        s = np.array(shares)
        print(f"| {k} | {s.mean():.3f} | {np.mean(s >= 0.9):.3f} |")


if __name__ == "__main__":
    main()
