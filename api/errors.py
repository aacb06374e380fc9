"""The domain's refusals as HTTP answers: one handler per kind, registered once in the app.

Routers let service errors through; the status and body shape live here only, so the
same refusal reads the same on every route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from gateway.services.accounts import LoginThrottledError
from gateway.services.errors import (
    ConflictError,
    InvalidReferenceError,
    InvalidValueError,
    NotAllowedError,
    NotFoundError,
    OutOfRangeError,
    TooManyError,
)
from gateway.store.alerts import AlertNotFound, AlertTransitionError

# How long a throttled login is told to wait: the throttle's window.
LOGIN_RETRY_AFTER_S = 300

Handler = Callable[[Request, Any], Awaitable[JSONResponse]]


def _plain(code: int) -> Handler:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handle


def _field_error(loc: list[str], message: str, kind: str) -> JSONResponse:
    """A 422 shaped like FastAPI's own validation errors, naming where the fault is."""
    return JSONResponse(
        {"detail": [{"loc": loc, "msg": message, "type": kind}]},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _invalid_reference(request: Request, exc: InvalidReferenceError) -> JSONResponse:
    return _field_error(["body", exc.field], str(exc), "reference")


async def _invalid_value(request: Request, exc: InvalidValueError) -> JSONResponse:
    # A GET carries its input in the query string; every other method in its body.
    where = "query" if request.method == "GET" else "body"
    loc = [where] if exc.field is None else [where, exc.field]
    return _field_error(loc, str(exc), "value_error")


async def _throttled(request: Request, exc: LoginThrottledError) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc)},
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(LOGIN_RETRY_AFTER_S)},
    )


HANDLERS: dict[type[Exception], Handler] = {
    NotFoundError: _plain(status.HTTP_404_NOT_FOUND),
    NotAllowedError: _plain(status.HTTP_403_FORBIDDEN),
    AlertNotFound: _plain(status.HTTP_404_NOT_FOUND),
    ConflictError: _plain(status.HTTP_409_CONFLICT),
    AlertTransitionError: _plain(status.HTTP_409_CONFLICT),
    OutOfRangeError: _plain(status.HTTP_422_UNPROCESSABLE_CONTENT),
    InvalidReferenceError: _invalid_reference,
    InvalidValueError: _invalid_value,
    LoginThrottledError: _throttled,
    TooManyError: _plain(status.HTTP_429_TOO_MANY_REQUESTS),
}


def add_error_handlers(app: FastAPI) -> None:
    """Register the handlers; a subclass is answered by its nearest registered kind."""
    for kind, handler in HANDLERS.items():
        app.add_exception_handler(kind, handler)
