"""The embeddable "similar products" widget: `/widget.js` for a script tag on a shop's page, and
`/widget/similar/{item}`, a page for an iframe, themed by query parameters. Both render with
the same script (web/static/widget.js) from `GET /api/items/{item}/similar`."""

from __future__ import annotations

from html import escape
from typing import Optional

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse

from ..engine.catalogue.edit import get_item
from ..web import STATIC_DIR
from .routes import ERRORS

router = APIRouter(tags=["widget"])
CSS_COLOUR = r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,20})$"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/static/widget-page.css"></head>
<body><div id="widget" {attributes}></div><script src="/widget.js"></script></body></html>
"""


@router.get("/widget.js", include_in_schema=False)
def widget_script() -> FileResponse:
    return FileResponse(STATIC_DIR / "widget.js", media_type="text/javascript", headers={"Cache-Control": "public, max-age=300"})


@router.get("/widget/similar/{item}", response_class=HTMLResponse, responses=ERRORS, summary="Similar-products widget page (iframe)")
def widget_page(request: Request, item: str = PathParam(..., min_length=1, max_length=512),
                k: int = Query(6, ge=1, le=24), title: str = Query("Similar products", max_length=80),
                bg: Optional[str] = Query(None, pattern=CSS_COLOUR), fg: Optional[str] = Query(None, pattern=CSS_COLOUR),
                accent: Optional[str] = Query(None, pattern=CSS_COLOUR),
                font: Optional[str] = Query(None, pattern=r"^(system|serif|sans-serif|monospace)$"),
                radius: Optional[int] = Query(None, ge=0, le=32), columns: Optional[int] = Query(None, ge=1, le=8),
                currency: Optional[str] = Query(None, max_length=8),
                colour: Optional[str] = Query(None, max_length=20), collapse: Optional[str] = Query(None, max_length=128),
                distinct: bool = Query(False), where: Optional[str] = Query(None, max_length=2000)) -> HTMLResponse:
    """An HTML page showing the items most similar to `item`, for
    `<iframe src="https://search.example/widget/similar/SKU-123?k=6&accent=%23c00">`."""
    get_item(request.app.state.service.lib, item)  # an unknown item is a 404 page, not an empty widget
    data = {"lookalike-similar": item, "k": str(k), "title": title, "bg": bg, "fg": fg, "accent": accent, "font": font,
            "radius": None if radius is None else str(radius), "columns": None if columns is None else str(columns),
            "currency": currency, "colour": colour, "collapse": collapse, "distinct": "true" if distinct else None,
            "where": where}
    attributes = " ".join(f'data-{name}="{escape(value, quote=True)}"' for name, value in data.items() if value is not None)
    return HTMLResponse(PAGE.format(title=escape(title), attributes=attributes), headers={"Cache-Control": "no-cache"})
