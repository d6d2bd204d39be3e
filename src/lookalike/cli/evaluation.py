"""`lookalike eval`: retrieval quality, speed and robustness of the extractors."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import InvalidQuery
from .app import app, err, out, user_errors
from .progress import phase_tracker, progress_bar

DEFAULT_METHODS = "effnet-lite0,effnet-lite2,color-hist,texture,sift-vlad"
SUITE_METHODS = "effnet-lite0-avg,effnet-lite0,effnet-lite2"


def _suite(methods: str, domains: Optional[str], out_dir: Path, seed: int) -> None:
    import json

    from ..eval.suite import change_intervals, intervals_table, run_suite, suite_table

    with user_errors():
        names = [m.strip() for m in methods.split(",") if m.strip()]
        result = run_suite(names, [d.strip() for d in domains.split(",")] if domains else None, seed,
                           lambda msg: err.print(msg, highlight=False, markup=False))
        baseline = names[0] if len(names) > 1 else None
        out.print(suite_table(result, baseline), highlight=False, markup=False, soft_wrap=True)
        report = result.to_dict()
        if baseline:
            out.print(intervals_table(result, baseline), highlight=False, markup=False, soft_wrap=True)
            report["change_vs_baseline"] = {"baseline": baseline, "methods": change_intervals(result, baseline)}
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "suite.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        err.print(f"wrote {out_dir / 'suite.json'} ({result.seconds:.0f} s)", highlight=False, markup=False, soft_wrap=True)


@app.command("eval")
def eval_(
    dataset: str = typer.Argument(
        ..., help="'fashion-mnist' (Debian's dataset-fashion-mnist, test split), 'brain-slices' (scans: slice height "
                  "across two brains, docs/medical.md), a folder ROOT/<class>/<images>, or 'suite' "
                  "(every domain of the development suite: products, photos under edits, photos-hard, icons, digits, "
                  "brain slices; one table)."),
    methods: str = typer.Option(DEFAULT_METHODS, "--methods",
                                help="Comma-separated model names (see `lookalike models`); for 'suite' a name may add "
                                     "+flip, +pcaN, +qe, +dba, +verify[N], and for effnet-* +gemP, +stageK[wW], +sN, +rmac, +pad, +crop "
                                     "(docs/evaluation.md) [default for suite: " + SUITE_METHODS + "]."),
    domains: Optional[str] = typer.Option(None, "--domains",
                                          help="suite only: comma-separated subset of products,photos,photos-hard,icons,digits,brain "
                                               "(brain needs the medical-eval extra and mricron-data; skipped when missing "
                                               "unless named)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=2, help="Use a seeded sample of N gallery images (quick runs)."),
    queries: int = typer.Option(1000, "--queries", min=1, help="Queries: a seeded sample of the gallery."),
    out_dir: Path = typer.Option(Path("eval-report"), "--out", help="Directory for report.md, results.json and PNG plots."),
    robustness: bool = typer.Option(False, "--robustness", help="Also measure near-duplicate recall under 12 image edits."),
    robustness_queries: int = typer.Option(100, "--robustness-queries", min=1,
                                           help="Dataset images edited per transform (plus every bundled photo)."),
    whiten: Optional[str] = typer.Option(None, "--whiten", help="e.g. 128,256,512: also score each deep method "
                                         "PCA-whitened to these dims, learned on Fashion-MNIST train."),
    whiten_train: int = typer.Option(5000, "--whiten-train", min=2, help="Fashion-MNIST train images the whitening learns from."),
    whiten_methods: Optional[str] = typer.Option(None, "--whiten-methods",
                                                 help="Comma-separated methods to whiten [default: every deep one]."),
    seed: int = typer.Option(0, "--seed", help="Seed for the gallery sample, queries and edits."),
) -> None:
    """Measure retrieval quality (mAP, recall@k), speed and robustness of feature extractors."""
    if dataset == "suite":
        _suite(SUITE_METHODS if methods == DEFAULT_METHODS else methods, domains, out_dir, seed)
        return
    from ..eval.harness import EvalConfig, run_eval
    from ..eval.report import retrieval_table, write_report

    if dataset == "brain-slices":
        from .scans import eval_brain_slices

        return eval_brain_slices(methods, out_dir)
    with user_errors():
        try:
            dims = tuple(int(d) for d in whiten.split(",") if d.strip()) if whiten else ()
        except ValueError:
            raise InvalidQuery(f"--whiten takes comma-separated integers, not {whiten!r}") from None
        config = EvalConfig(dataset, [m.strip() for m in methods.split(",") if m.strip()], limit, queries, seed,
                            robustness, robustness_queries, dims, whiten_train,
                            tuple(m.strip() for m in whiten_methods.split(",")) if whiten_methods else None)
        with progress_bar(err, label_width=28) as bar:
            result = run_eval(config, phase_tracker(bar))
        files = write_report(result, out_dir)
        out.print(retrieval_table(result), highlight=False, markup=False)
        err.print(f"wrote {', '.join(str(f) for f in files)}", highlight=False, soft_wrap=True, markup=False)
