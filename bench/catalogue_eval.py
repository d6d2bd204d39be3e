"""Catalogue evaluation on Fashion-MNIST products (lookalike/eval/catalogue.py):

    python bench/catalogue_eval.py --per-class 100 --queries 300

1. Import: the products' CSV with `Library.import_items` vs `Library.add` of the same PNG
   files into another library (rows/s vs images/s; target >= 0.9x), interleaved twice.
2. "More like this item": precision@10 of same-category results, without and with a
   `category = ...` filter (the filter needs the where language).
3. Shoppers' photos (a product recoloured to another colour, pasted on a photo texture):
   recall@1/@10 of the photographed product and same-colour / same-category precision@10,
   for colour=any, several weights, and same.
Throughput is the median over rounds, import and index alternating first (load drift on a
shared machine hits both). Writes bench/results/catalogue_eval.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike import Library
from lookalike.engine.catalogue import similar as similar_module
from lookalike.engine.catalogue.similar import similar
from lookalike.eval.catalogue import PALETTE, build_products, shopper_photo, textures, write_csv
from lookalike.eval.datasets import load_fashion_mnist


def import_vs_index(root: Path, csv_path: Path, folder: Path, rounds: int) -> dict:
    imports, indexes = [], []
    for r in range(rounds):
        for kind in (("import", "index") if r % 2 == 0 else ("index", "import")):  # alternate: load drift hits both
            lib_dir = root / f"lib-{kind}-{r}"
            shutil.rmtree(lib_dir, ignore_errors=True)
            with Library.open(lib_dir) as lib:
                lib.extractor.embed([Image.new("RGB", (64, 64))])  # load the model and its session outside the timing
                t0 = time.perf_counter()
                if kind == "import":
                    report = lib.import_items(csv_path, "sku", ["image"], sync_index=False)
                    assert not report.problems, report.problems[:3]
                    imports.append(report.added / (time.perf_counter() - t0))
                else:
                    report = lib.add([folder], sync_index=False)
                    indexes.append(report.added / (time.perf_counter() - t0))
    return {"import_rows_per_s": round(float(np.median(imports)), 1), "index_images_per_s": round(float(np.median(indexes)), 1),
            "ratio": round(float(np.median(imports) / np.median(indexes)), 3), "rounds": rounds}


def item_precision(lib: Library, products, n_queries: int, rng, use_filter: bool) -> float:
    picks = rng.choice(len(products), size=min(n_queries, len(products)), replace=False)
    category = {f"item:{p.sku}": p.category for p in products}
    scores = []
    for i in picks:
        p = products[int(i)]
        where = f'category = "{p.category}"' if use_filter else None
        hits = similar(lib, f"item:{p.sku}", 10, where=where)
        scores.append(np.mean([category[h.path] == p.category for h in hits]) if hits else 0.0)
    return round(float(np.mean(scores)), 4)


def shopper_queries(lib: Library, products, n_queries: int, rng, weights) -> dict:
    data = load_fashion_mnist("test")
    backgrounds = textures()
    names = list(PALETTE)
    picks = rng.choice(len(products), size=min(n_queries, len(products)), replace=False)
    queries = []
    for i in picks:
        p = products[int(i)]
        colour = names[(names.index(p.colour) + 1 + int(rng.integers(len(names) - 1))) % len(names)]  # another colour
        photo = shopper_photo(data.pixels[p.index], colour, backgrounds[int(rng.integers(len(backgrounds)))], rng)
        queries.append((p, colour, photo))
    by_path = {f"item:{p.sku}": p for p in products}
    out = {}
    for weight in weights:
        r1, r10, same_colour, same_cat = [], [], [], []
        for p, colour, photo in queries:
            hits = similar(lib, photo, 10, colour=weight)
            found = [h.path for h in hits]
            r1.append(found[:1] == [f"item:{p.sku}"])
            r10.append(f"item:{p.sku}" in found)
            same_colour.append(np.mean([by_path[f].colour == colour for f in found]))
            same_cat.append(np.mean([by_path[f].category == p.category for f in found]))
        out[str(weight)] = {"recall@1": round(float(np.mean(r1)), 4), "recall@10": round(float(np.mean(r10)), 4),
                            "same_colour_precision@10": round(float(np.mean(same_colour)), 4),
                            "same_category_precision@10": round(float(np.mean(same_cat)), 4)}
        print(f"colour={weight}: {out[str(weight)]}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2, help="import/index timing rounds")
    ap.add_argument("--weights", default="any,0.25,same,0.75")
    ap.add_argument("--colour-pool", type=int, default=None, help="candidates per result re-ranked by colour (tuning)")
    ap.add_argument("--throughput-only", action="store_true", help="only the import vs index timing")
    ap.add_argument("--no-filter", action="store_true", help="skip the category-filter run (no where language)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "catalogue_eval.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookalike-catalogue-eval-") as tmp:
        root = Path(tmp)
        products = build_products(root / "products", args.per_class)
        write_csv(products, root / "products.csv")
        result: dict = {"products": len(products), "queries": args.queries}
        if args.colour_pool:
            similar_module.COLOUR_POOL = args.colour_pool
        if args.rounds:
            result["throughput"] = import_vs_index(root, root / "products.csv", root / "products", args.rounds)
        else:
            with Library.open(root / "lib-import-0") as lib:
                lib.import_items(root / "products.csv", "sku", ["image"])
        print(f"throughput: {result.get('throughput')}", file=sys.stderr)
        if args.throughput_only:
            print(json.dumps(result, indent=2))
            return
        with Library.open(root / "lib-import-0") as lib:
            result["item_precision@10"] = item_precision(lib, products, args.queries, np.random.default_rng(1), False)
            if not args.no_filter:
                result["item_precision@10_category_filter"] = item_precision(lib, products, args.queries,
                                                                             np.random.default_rng(1), True)
            print(f"item precision: {result}", file=sys.stderr)
            weights = [w if w in ("any", "same") else float(w) for w in args.weights.split(",")]
            result["shopper_photos"] = shopper_queries(lib, products, args.queries, np.random.default_rng(2), weights)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
