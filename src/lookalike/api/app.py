"""`create_app`: the FastAPI application behind `lookalike serve` (REST API + web page)."""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import __version__, errors
from ..engine import Library
from ..errors import ImageLoadError, LibraryBusyError, LookalikeError
from ..store import VectorStore
from ..web import STATIC_DIR
from .guard import Guard
from .routes import router
from .service import NotFound, Service, UnknownLabel

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1000 * 1000
API_KEY_ENV = "LOOKALIKE_API_KEY"
MAX_UPLOAD_ENV = "LOOKALIKE_MAX_UPLOAD_MB"
log = logging.getLogger("lookalike.api")
_FROM_ENV = object()


@dataclass(frozen=True)
class Settings:
    api_key: str | None  # write endpoints need it in X-API-Key when set
    max_upload_bytes: int
    url_queries: bool  # may a client make the server download a URL?


def max_upload_from_env() -> int:
    value = os.environ.get(MAX_UPLOAD_ENV)
    if not value:
        return DEFAULT_MAX_UPLOAD_BYTES
    try:
        mb = float(value)
    except ValueError:
        raise LookalikeError(f"${MAX_UPLOAD_ENV} must be a number of megabytes, got {value!r}") from None
    if mb <= 0:
        raise LookalikeError(f"${MAX_UPLOAD_ENV} must be positive, got {value!r}")
    return int(mb * 1000 * 1000)


def create_app(library_dir: str | os.PathLike, store: str | VectorStore | None = None, *,
               api_key: str | None | object = _FROM_ENV, max_upload_bytes: int | None = None,
               url_queries: bool = True, watch: Sequence[str | os.PathLike] = (),
               watch_debounce: float | None = None) -> FastAPI:
    """The app over the existing library at `library_dir`. `api_key` defaults to
    `$LOOKALIKE_API_KEY`; `max_upload_bytes` to `$LOOKALIKE_MAX_UPLOAD_MB` or 20 MB.
    `watch`: folders kept indexed while the server runs (engine/watch.py)."""
    key = (os.environ.get(API_KEY_ENV) or None) if api_key is _FROM_ENV else api_key
    settings = Settings(key, max_upload_bytes or max_upload_from_env(), url_queries)  # type: ignore[arg-type]
    library = Library.open(Path(library_dir), store=store, create=False)
    library.extractor  # noqa: B018 - resolve the model once, before requests race for it

    service = Service(library)
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
    app.add_middleware(Guard, max_body_bytes=settings.max_upload_bytes)
    app.include_router(router)
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

    # The service's write lock: uploads, deletes and the watcher never write at once.
    return Watcher(service.lib, folders, debounce=debounce or DEFAULT_DEBOUNCE, lock=service.write_lock,
                   on_batch=on_batch, on_error=on_error)


def _status_for(e: ImageLoadError) -> int:
    if e.reason.startswith("not an image"):
        return 415
    if e.reason.startswith("download larger"):
        return 413
    if e.reason.startswith("download failed"):
        return 400
    return 422  # empty, truncated, corrupt, too many pixels


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(request: Request, e: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(LibraryBusyError)
    async def busy(request: Request, e: LibraryBusyError) -> JSONResponse:
        # Another process holds the library's write lock longer than the store waits: try again.
        return JSONResponse({"detail": str(e)}, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(UnknownLabel)
    async def unknown_label(request: Request, e: UnknownLabel) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.exception_handler(ImageLoadError)
    async def bad_image(request: Request, e: ImageLoadError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=_status_for(e))

    @app.exception_handler(errors.NotFound)
    async def engine_not_found(request: Request, e: errors.NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(errors.Conflict)
    async def conflict(request: Request, e: errors.Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=409)

    @app.exception_handler(errors.InvalidQuery)
    async def invalid_query(request: Request, e: errors.InvalidQuery) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.exception_handler(LookalikeError)
    async def user_error(request: Request, e: LookalikeError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=400)

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
