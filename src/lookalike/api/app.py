"""`create_app`: the FastAPI application behind `lookalike serve` (REST API + web page)."""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Sequence

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..config import DEFAULT_MAX_UPLOAD_MB
from ..config import api_key as config_api_key
from ..config import max_upload_bytes as config_max_upload_bytes
from ..engine import Library
from ..engine.fetch import DEFAULT_DEADLINE_S, Fetcher, FetchPolicy, parse_networks
from ..store import VectorStore
from ..web import STATIC_DIR
from .errors import install
from .guard import LOOPBACK_NAMES, Guard
from .items import router as items_router
from .ratelimit import RateLimited, TokenBuckets
from .routes import router
from .service import Service
from .widget import router as widget_router

DEFAULT_MAX_UPLOAD_BYTES = int(DEFAULT_MAX_UPLOAD_MB * 1_000_000)
API_KEY_ENV = "LOOKALIKE_API_KEY"
log = logging.getLogger("lookalike.api")


class _FromEnv(Enum):
    """Default of `api_key`: read it from the environment (None means no key)."""

    TOKEN = 0


_FROM_ENV = _FromEnv.TOKEN

DEFAULT_SERVER_PIXELS = 40_000_000  # a client's image: far below the indexer's 150 MP
DEFAULT_UPLOADS_PER_MINUTE = 60
DEFAULT_URL_SEARCHES_PER_MINUTE = 20


@dataclass(frozen=True)
class Settings:
    api_key: str | None  # write endpoints need it in X-API-Key when set
    max_upload_bytes: int
    url_queries: bool  # may a client make the server download a URL?
    uploads: TokenBuckets = field(default_factory=lambda: TokenBuckets("uploads", DEFAULT_UPLOADS_PER_MINUTE, 20))
    url_searches: TokenBuckets = field(
        default_factory=lambda: TokenBuckets("URL searches", DEFAULT_URL_SEARCHES_PER_MINUTE, 5))


def create_app(library_dir: str | os.PathLike, store: str | VectorStore | None = None, *,
               api_key: str | None | _FromEnv = _FROM_ENV, max_upload_bytes: int | None = None,
               url_queries: bool = False, url_allow: Sequence[str] = (), url_deadline_s: float = DEFAULT_DEADLINE_S,
               allowed_hosts: Sequence[str] | None = (), any_ip_host: bool = False,
               pixel_limit: int = DEFAULT_SERVER_PIXELS, uploads_per_minute: float = DEFAULT_UPLOADS_PER_MINUTE,
               url_searches_per_minute: float = DEFAULT_URL_SEARCHES_PER_MINUTE,
               cors_origins: Sequence[str] = (), watch: Sequence[str | os.PathLike] = (),
               watch_debounce: float | None = None) -> FastAPI:
    """The app over the existing library at `library_dir`. `api_key` defaults to
    `$LOOKALIKE_API_KEY`; `max_upload_bytes` to `$LOOKALIKE_MAX_UPLOAD_MB` or 20 MB.
    URL queries are off unless `url_queries`; then only public addresses (and `url_allow`
    CIDRs) are fetched. The Host header must be a loopback name or one of `allowed_hosts`
    (None: any, for in-process test clients). docs/security.md explains every limit.
    `cors_origins`: shop pages (scheme://host[:port]) whose scripts may call the read
    endpoints, e.g. the catalogue widget (none by default). `watch`: folders kept indexed
    while the server runs (engine/watch.py, docs/watch.md)."""
    key = config_api_key() if api_key is _FROM_ENV else api_key
    limit = max_upload_bytes or config_max_upload_bytes()
    settings = Settings(key, limit, url_queries,
                        TokenBuckets("uploads", uploads_per_minute, max(20, int(uploads_per_minute / 4))),
                        TokenBuckets("URL searches", url_searches_per_minute, max(5, int(url_searches_per_minute / 4))))
    fetcher = Fetcher(FetchPolicy(allow=parse_networks(tuple(url_allow)), max_bytes=limit,
                                  deadline_s=url_deadline_s)) if url_queries else None
    library = Library.open(Path(library_dir), store=store, create=False)
    library.extractor  # noqa: B018 - resolve the model once, before requests race for it

    service = Service(library, fetcher, pixel_limit)
    watcher = _watcher(service, watch, watch_debounce) if watch else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        _ = library.extractor.session if hasattr(library.extractor, "session") else None  # load ONNX Runtime now
        if watcher is not None:
            # started here, so the catch-up scan runs before requests are served
            await run_in_threadpool(watcher.start)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            library.close()

    # FastAPIOffline serves Swagger UI / ReDoc assets from the package, so /docs works offline.
    app = FastAPIOffline(title="Lookalike", version=__version__, lifespan=lifespan,
                  description="Reverse image search: find the indexed images that look like a query image. "
                              f"Write endpoints need the `X-API-Key` header when the server has ${API_KEY_ENV} set. "
                              "Errors are JSON: `{\"detail\": \"one-line message\"}`.")
    app.state.service = service
    app.state.watcher = watcher
    app.state.settings = settings
    hosts = None if allowed_hosts is None else LOOPBACK_NAMES + tuple(allowed_hosts)
    app.add_middleware(Guard, max_body_bytes=settings.max_upload_bytes, allowed_hosts=hosts, any_ip_host=any_ip_host,
                       embed_origins=tuple(cors_origins))
    app.include_router(router)
    app.include_router(items_router)
    app.include_router(widget_router)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET"],
                           allow_headers=["Content-Type"], max_age=600)
    _error_handlers(app)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    return app


def _watcher(service: Service, folders: Sequence[str | os.PathLike], debounce: float | None):
    from ..engine.watch import DEFAULT_DEBOUNCE, Watcher

    def on_error(message: str) -> None:
        log.warning("watch: %s", message)

    def on_batch(batch) -> None:
        r = batch.report
        log.info("watch: added %d, updated %d, moved %d, removed %d, failed %d", r.added, r.updated, r.moved,
                 batch.removed, len(r.failed))

    # The service's write lock: uploads, deletes, duplicate resolving and the watcher never write at once.
    return Watcher(service.lib, folders, debounce=debounce or DEFAULT_DEBOUNCE, lock=service.write_lock,
                   on_batch=on_batch, on_error=on_error)


def _error_handlers(app: FastAPI) -> None:
    install(app)  # LookalikeError types -> statuses (api/errors.py)

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, e: RateLimited) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=429, headers={"Retry-After": f"{e.retry_after:.0f}"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        # One readable line, e.g. "query k: Input should be greater than or equal to 1"; details follow.
        first = e.errors()[0] if e.errors() else {}
        where = " ".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid request')}".strip(": "),
                             "errors": _jsonable(e.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def crash(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(e).__name__}); see the server log"}, status_code=500)


def _jsonable(errors) -> list[dict]:
    return [{k: (v if isinstance(v, (str, int, float, list, tuple, type(None))) else str(v)) for k, v in err.items()
             if k in ("loc", "msg", "type")} for err in errors]
