"""Relevance feedback on Fashion-MNIST, through a real `lookalike serve` and the REST calls the
web page makes (web/static/feedback.js): precision@10 of "more like this" for an indexed image,
then after each round of 3 thumbs (class labels as the user: lookalike/eval/feedback.py).

    python bench/feedback_rounds.py [--gallery 1000 --queries 100 --clicks 3 --rounds 2]"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from common import free_port, start_serve_process
from lookalike import Library
from lookalike.eval.datasets import load_fashion_mnist
from lookalike.eval.feedback import feedback_round

RESULTS = Path(__file__).parent / "results" / "feedback_rounds.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gallery", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--clicks", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = load_fashion_mnist("test")
    rng = np.random.default_rng(args.seed)
    picks = rng.permutation(len(data))[: args.gallery]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "imgs").mkdir()
        for i in picks:  # named by the index in the test set, which gives back the label
            data.image(int(i)).resize((112, 112), Image.BICUBIC).save(root / "imgs" / f"{i}.png")
        t0 = time.perf_counter()
        with Library.open(root / "lib") as lib:
            lib.add([root / "imgs"])
            label = {r.id: int(data.labels[int(r.fields["name"].split(".")[0])]) for r in lib.records()}
        print(f"indexed {len(label)} images in {time.perf_counter() - t0:.0f} s")
        port = free_port()
        server = start_serve_process(root / "lib", port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                def search(body: dict) -> list[int]:
                    r = client.post("/api/search", json=body)
                    r.raise_for_status()
                    return [h["id"] for h in r.json()["results"]]

                queries = [int(q) for q in rng.choice(sorted(label), args.queries, replace=False)]
                run = feedback_round(search, queries, label, clicks=args.clicks, rounds=args.rounds)
        finally:
            server.kill()
            server.wait()
    print(f"Fashion-MNIST test, gallery {len(label)}, {run.queries} queries, precision@10")
    print("| query | P@10 |\n|---|---|")
    print(f"| one image (more like this) | {run.before:.3f} |")
    for r, p in enumerate(run.precision[1:], start=1):
        print(f"| after round {r} ({r * args.clicks} clicks in all) | {p:.3f} |")
    print(f"ratio after / before one round of {args.clicks} clicks: {run.ratio:.3f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"gallery": len(label), "queries": run.queries, "clicks": args.clicks,
                                   "p10_by_round": [round(p, 4) for p in run.precision],
                                   "ratio": round(run.ratio, 4)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
