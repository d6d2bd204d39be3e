"""The web page (plain HTML, CSS and JavaScript; no build step, no CDN), served by `lookalike.api`."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
