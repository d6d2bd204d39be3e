"""`lookalike explain`: where a query and a result agree, as heat maps from the CNN's feature map."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from ..errors import Conflict
from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, app, err, open_library, out, user_errors


@app.command()
def explain(
    query: str = typer.Argument(..., help="The query image: path, http(s) URL or id:N."),
    result: str = typer.Argument(..., help="A result image: id:N (as `search` lists them), path or URL."),
    out_path: Path = typer.Option(Path("why.png"), "--out", "-o", help="PNG to write: both images with the heat map over them."),
    library: Optional[Path] = LibraryOpt,
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Why did RESULT match QUERY? A heat map on both images of where they agree (bright), from the model's last feature map."""
    from ..engine.explain import render_png

    with user_errors():
        if out_path.exists() and out_path.is_dir():
            raise Conflict(f"--out {out_path} is a directory; give a file name such as why.png")
        with open_library(library, store, token=milvus_token) as lib:
            t0 = time.perf_counter()
            explanation, q_image, r_image = lib.explain(query, result)
            took_ms = (time.perf_counter() - t0) * 1000
            out_path.write_bytes(render_png(q_image, r_image, explanation))
        if as_json:
            print(json.dumps({**explanation.to_dict(), "took_ms": round(took_ms, 1), "png": str(out_path)}))
            return
        conf = "" if explanation.confidence is None else f", confidence {explanation.confidence:.2f}"
        out.print(f"score {explanation.score:.4f}{conf}; {took_ms:.0f} ms", highlight=False, markup=False)
        err.print(f"wrote {out_path}", highlight=False, markup=False, soft_wrap=True)
