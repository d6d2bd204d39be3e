"""`lookalike serve`: the web page and REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..config import api_key, default_library
from ..errors import Forbidden, InvalidQuery
from .app import LibraryOpt, StoreOpt, TokenOpt, app, err, store_spec, user_errors


@app.command()
def serve(
    library: Optional[Path] = LibraryOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    allow_anonymous_writes: bool = typer.Option(
        False, "--allow-anonymous-writes", help="Allow uploads and deletes without $LOOKALIKE_API_KEY on a non-loopback address."),
    max_upload_mb: Optional[float] = typer.Option(
        None, "--max-upload-mb", min=0.001, help="Largest request body in MB [default: $LOOKALIKE_MAX_UPLOAD_MB or 20]."),
    allow_url_queries: bool = typer.Option(
        False, "--allow-url-queries", help="Let clients make the server download an image URL (public addresses only)."),
    no_url_queries: bool = typer.Option(False, "--no-url-queries", hidden=True, help="URL queries are off by default now."),
    url_allow: Optional[list[str]] = typer.Option(
        None, "--url-allow", metavar="CIDR", help="With --allow-url-queries: also fetch from this non-public network (repeatable)."),
    allowed_host: Optional[list[str]] = typer.Option(
        None, "--allowed-host", metavar="NAME", help="A host name clients reach the server by (e.g. behind a reverse proxy; repeatable)."),
    max_pixels_opt: int = typer.Option(
        40_000_000, "--max-pixels", min=1, help="Largest image (width x height) a client may make the server decode."),
    cors_origin: Optional[list[str]] = typer.Option(
        None, "--cors-origin", metavar="ORIGIN", help="A shop page origin (https://shop.example) whose scripts may call the API "
                                                      "(the catalogue widget); repeatable."),
    watch: Optional[list[Path]] = typer.Option(
        None, "--watch", metavar="FOLDER", help="Keep this folder indexed while serving (repeatable; see `lookalike watch`)."),
    store: Optional[str] = StoreOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Serve the web page and the REST API (OpenAPI docs at /docs) for a library."""
    with user_errors():
        from ..api.app import API_KEY_ENV, create_app
        from ..api.guard import is_loopback

        if not api_key() and not is_loopback(host) and not allow_anonymous_writes:
            raise Forbidden(f"refusing to serve on {host} without ${API_KEY_ENV}: anyone could upload and delete images; "
                            f"set ${API_KEY_ENV} or pass --allow-anonymous-writes")
        if allow_url_queries and no_url_queries:
            raise InvalidQuery("--allow-url-queries and --no-url-queries contradict each other; give one")
        directory = library or default_library()
        web = create_app(directory, store_spec(store, directory, milvus_token),
                         max_upload_bytes=int(max_upload_mb * 1_000_000) if max_upload_mb else None,
                         url_queries=allow_url_queries, url_allow=url_allow or (), pixel_limit=max_pixels_opt,
                         allowed_hosts=[host, *(allowed_host or ())], any_ip_host=host in ("0.0.0.0", "::"),
                         cors_origins=cors_origin or (), watch=watch or ())
        import uvicorn

        shown = f"[{host}]" if ":" in host else host
        err.print(f"serving {web.state.service.lib.directory} ({len(web.state.service.lib)} images) "
                  f"on http://{shown}:{port}/  (API docs: /docs)", highlight=False, markup=False)
        writes = "need $LOOKALIKE_API_KEY" if api_key() else "open to anyone who can reach it (no API key)"
        urls = ("ON (public addresses" + (f" + {', '.join(url_allow)}" if url_allow else "") + ")") if allow_url_queries else "off"
        err.print(f"uploads/deletes: {writes}; URL queries: {urls}; "
                  f"hosts answered: {', '.join(dict.fromkeys(['localhost', '127.0.0.1', '::1', host, *(allowed_host or ())]))}"
                  + (" and any IP address" if host in ("0.0.0.0", "::") else ""),
                  highlight=False, markup=False)
        uvicorn.run(web, host=host, port=port, log_level="info", timeout_graceful_shutdown=5, server_header=False)
