"""Several query images and negatives on Fashion-MNIST: precision@10 of each way of combining
them (engine/combine.py), as a ratio to one query image.

A gallery of N test images is embedded once (effnet-lite0); each trial draws its positive
examples from one class and, for the runs with a negative, one example of the class that
single-image searches of that class confuse it with most (shirt <-> T-shirt, coat <-> pullover
...). Query examples are excluded from the results.

    python bench/multi_query.py [--gallery 2000 --trials 300]"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from lookalike.engine.combine import combine_vectors, reciprocal_rank_fusion
from lookalike.eval.datasets import load_fashion_mnist
from lookalike.models import get_extractor

K = 10


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gallery", type=int, default=2000)
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    data = load_fashion_mnist("test")
    idx = rng.permutation(len(data))[: args.gallery]
    labels = data.labels[idx]
    ext = get_extractor("effnet-lite0")
    vecs = np.concatenate([ext.embed([data.image(int(i)) for i in idx[s:s + 64]]) for s in range(0, len(idx), 64)])

    def ranked(q: np.ndarray, exclude: set[int], n: int = K) -> list[int]:
        order = np.argsort(-(vecs @ q))
        return [int(i) for i in order if int(i) not in exclude][:n]

    # The class each class is most confused with by single-image search.
    confusion: dict[int, Counter] = {c: Counter() for c in range(10)}
    for i in rng.permutation(len(idx))[:500]:
        for j in ranked(vecs[i], {int(i)}):
            if labels[j] != labels[i]:
                confusion[int(labels[i])][int(labels[j])] += 1
    confusable = {c: (cnt.most_common(1)[0][0] if cnt else (c + 1) % 10) for c, cnt in confusion.items()}

    by_class = {c: np.flatnonzero(labels == c) for c in range(10)}
    methods = {
        "1 image": (1, 0, "mean", 0.0),
        "2 images, mean": (2, 0, "mean", 0.0),
        "3 images, mean": (3, 0, "mean", 0.0),
        "2 images, RRF": (2, 0, "rrf", 0.0),
        "3 images, RRF": (3, 0, "rrf", 0.0),
        "1 image + 1 negative, Rocchio b=0.1": (1, 1, "mean", 0.1),
        "1 image + 1 negative, Rocchio b=0.25": (1, 1, "mean", 0.25),
        "1 image + 1 negative, Rocchio b=0.5": (1, 1, "mean", 0.5),
        "1 image + 1 negative, Rocchio b=1.0": (1, 1, "mean", 1.0),
        "1 image + 1 negative, RRF": (1, 1, "rrf", 0.0),
        "2 images + 1 negative, Rocchio b=0.25": (2, 1, "mean", 0.25),
        "3 images + 1 negative, Rocchio b=0.25": (3, 1, "mean", 0.25),
    }
    trials = []
    for _ in range(args.trials):
        c = int(rng.integers(10))
        trials.append((c, rng.choice(by_class[c], 3, replace=False), int(rng.choice(by_class[confusable[c]]))))
    rows = []
    for name, (n_pos, n_neg, how, beta) in methods.items():
        precisions = []
        for c, pos_all, neg_one in trials:
            pos = [int(p) for p in pos_all[:n_pos]]
            neg = [neg_one][:n_neg]
            exclude = set(pos) | set(neg)
            if how == "mean":
                q = combine_vectors(vecs[pos], vecs[neg] if neg else None, beta=beta)
                top = ranked(q, exclude)
            else:
                fused = reciprocal_rank_fusion([ranked(vecs[p], exclude, 100) for p in pos],
                                               [ranked(vecs[n], exclude, 100) for n in neg])
                top = [i for i, _ in fused[:K]]
            precisions.append(float(np.mean(labels[top] == c)))
        rows.append((name, float(np.mean(precisions))))
    base = rows[0][1]
    print(f"Fashion-MNIST test, gallery {len(idx)}, {args.trials} trials, precision@{K}")
    print(f"confusable class per class: { {data.class_names[a]: data.class_names[b] for a, b in confusable.items()} }")
    print(f"| query | P@{K} | vs 1 image |\n|---|---|---|")
    for name, p in rows:
        print(f"| {name} | {p:.3f} | {p / base:.3f} |")


if __name__ == "__main__":
    main()
