"""HTTP statuses for Lookalike's error types: one table, chosen by type, never by message."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..errors import (
    Busy,
    Conflict,
    Forbidden,
    ImageLoadError,
    InvalidQuery,
    LookalikeError,
    MissingExtra,
    ModelMismatch,
    NotFound,
    ReadOnly,
    TooLarge,
    Unsupported,
)

# Most specific first: the first type an error is an instance of decides its status.
STATUS: tuple[tuple[type[LookalikeError], int], ...] = (
    (InvalidQuery, 422), (NotFound, 404), (Conflict, 409), (TooLarge, 413), (Unsupported, 415),
    (Forbidden, 403), (Busy, 503), (ReadOnly, 503), (ModelMismatch, 409), (MissingExtra, 501),
)
IMAGE_STATUS = {"invalid": 422, "unsupported": 415, "too_large": 413, "unreachable": 400}
RETRY_AFTER_S = "2"


def status_for(e: LookalikeError) -> int:
    if isinstance(e, ImageLoadError):
        return IMAGE_STATUS.get(e.kind, 422)
    return next((code for kind, code in STATUS if isinstance(e, kind)), 400)


def install(app: FastAPI) -> None:
    """Every `LookalikeError` becomes `{"detail": message}` with its type's status."""

    @app.exception_handler(LookalikeError)
    async def user_error(request: Request, e: LookalikeError) -> JSONResponse:
        status = status_for(e)
        # Busy / read-only: another process holds the write lock, or the disk is full; retry later.
        headers = {"Retry-After": RETRY_AFTER_S} if status == 503 else None
        body: dict[str, object] = {"detail": str(e)}
        if isinstance(e, InvalidQuery) and e.position is not None:
            body["position"] = e.position
        return JSONResponse(body, status_code=status, headers=headers)
