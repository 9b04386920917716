"""NGSI-LD errors: the spec's error types (ETSI GS CIM 009 §5.5.2) as ProblemDetails bodies (RFC 7807).

Routes raise `NgsiError(kind, detail)`; `install` answers it, and every other failure on a `/ngsi-ld/` path (the
charter's 401/403/429, FastAPI's 404/405, an unexpected exception), with a ProblemDetails body
`{"type": IRI, "title": ..., "status": N, "detail": ...}` as `application/json` — clients of the spec read these
fields, not clapas's own `{"error": ...}` shape, which stays on every other path.

Public API (stable): `NgsiError`, `STATUS` (error type → HTTP status), `ERROR_BASE`, `problem_body`,
`problem_response`, `install(app)`, and the shorthands `bad_request`, `invalid_request`, `not_found`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.errors import ApiError

log = logging.getLogger("clapas.api.ngsi_ld")

PREFIX = "/ngsi-ld/"
ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"

# ETSI GS CIM 009 V1.8.1 table 5.5.2-1: error type → HTTP status
STATUS: dict[str, int] = {
    "InvalidRequest": 400,
    "BadRequestData": 400,
    "AlreadyExists": 409,
    "OperationNotSupported": 422,
    "ResourceNotFound": 404,
    "InternalError": 500,
    "TooComplexQuery": 403,
    "TooManyResults": 403,
    "LdContextNotAvailable": 503,
    "NoMultiTenantSupport": 501,
    "NonexistentTenant": 404,
    "Conflict": 409,
    "LenientIncompatibility": 422,
}
# HTTP-level refusals the spec gives no error type of its own (406, 415, the charter's 401/403/429, 405, 411)
_HTTP_TITLES = {401: "Unauthorized", 403: "Forbidden", 405: "Method Not Allowed", 406: "Not Acceptable",
                411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
                429: "Too Many Requests", 503: "Service Unavailable"}


class NgsiError(Exception):
    """One NGSI-LD error. `kind` is a spec error type (a key of STATUS) or, with `status`, an HTTP-level one."""

    def __init__(self, kind: str, detail: str, *, status: int | None = None, title: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status if status is not None else STATUS.get(kind, 400)
        self.title = title or (kind if kind in STATUS else _HTTP_TITLES.get(self.status, kind))
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return problem_body(self.kind, self.title, self.status, self.detail)


def problem_body(kind: str, title: str, status: int, detail: str) -> dict[str, Any]:
    """A ProblemDetails object; the spec's types get their ETSI IRI, HTTP-level ones `about:blank` (RFC 7807)."""
    iri = ERROR_BASE + kind if kind in STATUS else "about:blank"
    return {"type": iri, "title": title, "status": status, "detail": detail}


def problem_response(err: NgsiError) -> Response:
    if err.status == 411:  # §6.3.4: "just a 411 HTTP status code (without any payload body)"
        return Response(status_code=411, headers=err.headers)
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers, media_type="application/json")


def bad_request(detail: str) -> NgsiError:
    """400 BadRequestData: the request is well formed but its content is not acceptable (an invalid entity...)."""
    return NgsiError("BadRequestData", detail)


def invalid_request(detail: str) -> NgsiError:
    """400 InvalidRequest: the request itself is malformed (unknown parameter, bad JSON, bad query syntax)."""
    return NgsiError("InvalidRequest", detail)


def not_found(detail: str) -> NgsiError:
    return NgsiError("ResourceNotFound", detail)


def _http_kind(status: int) -> str:
    return {404: "ResourceNotFound", 400: "InvalidRequest", 422: "InvalidRequest",
            500: "InternalError"}.get(status, "http")


def install(app: FastAPI) -> None:
    """Answer NgsiError everywhere, and every error on a /ngsi-ld/ path as ProblemDetails (others unchanged)."""
    previous = dict(app.exception_handlers)

    @app.exception_handler(NgsiError)
    async def _ngsi(request: Request, exc: NgsiError) -> Response:
        return problem_response(exc)

    def wrap(exc_type: Any, convert: Any) -> None:
        before = previous.get(exc_type)

        async def handler(request: Request, exc: Any) -> Response:
            if request.url.path.startswith(PREFIX) or before is None:
                return problem_response(convert(request, exc))
            return await before(request, exc)

        app.add_exception_handler(exc_type, handler)

    wrap(ApiError, lambda r, e: NgsiError(_http_kind(e.status), e.message, status=e.status, headers=e.headers))
    wrap(StarletteHTTPException, lambda r, e: NgsiError(
        _http_kind(e.status_code), f"nothing at {r.url.path}" if e.status_code == 404 else
        f"method {r.method} not allowed on {r.url.path}" if e.status_code == 405 else str(e.detail),
        status=e.status_code, headers=getattr(e, "headers", None)))
    wrap(RequestValidationError, lambda r, e: NgsiError("InvalidRequest", str(e.errors())[:500]))

    def unexpected(r: Request, e: Exception) -> NgsiError:
        log.exception("unhandled error on %s %s", r.method, r.url.path, exc_info=e)
        return NgsiError("InternalError", f"internal error: {type(e).__name__}")

    wrap(Exception, unexpected)
