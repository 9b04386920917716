"""One error shape for every failure: `{"error": {"status": N, "message": "..."}}`, with the right status code.

Clients (and the dashboard) read one field whatever went wrong: an unknown device, a bad parameter (the message
names it), a disabled ingest, a body too large. FastAPI's own 404/405/422 answers are rewritten to this shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from clapas.api import JSONResponse

log = logging.getLogger("clapas.api")


class ApiError(Exception):
    """Raise from a route to answer `status` with a readable message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


# The OpenAPI description of an error, shared by every route's `responses=`.
ERROR_SCHEMA: dict[str, Any] = {
    "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {
            "status": {"type": "integer"}, "message": {"type": "string"}}}},
    }}},
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can fail with these status codes."""
    return {c: {"description": _REASONS.get(c, "error"), **ERROR_SCHEMA} for c in codes}


_REASONS = {400: "bad request", 401: "no credential, or a bad one", 403: "the credential lacks the scope",
            404: "not found", 409: "not allowed in the current state", 413: "body too large",
            422: "invalid parameter", 429: "rate limit exceeded",
            503: "unavailable"}


def _where(loc: tuple[Any, ...]) -> str:
    """('query', 'limit') → "query parameter 'limit'"; ('path', 'eui') → "path parameter 'eui'"."""
    if not loc:
        return "request"
    kind, *rest = loc
    name = ".".join(str(p) for p in rest)
    if kind in ("query", "path", "header", "cookie"):
        return f"{kind} parameter {name!r}"
    return f"{kind} {name!r}" if name else str(kind)


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "missing":
            msg = "is required"
        parts.append(f"{_where(tuple(err.get('loc', ())))}: {msg}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    """Route every error through `error_response`."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(422, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}")
