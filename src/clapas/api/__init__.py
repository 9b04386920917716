"""The HTTP side: REST API (`rest.py`), errors in one shape (`errors.py`), the app that serves them (`app.py`).

`JSONResponse` lives here because routes and error handlers share it: msgspec encodes a 100,000-point history
several times faster than FastAPI's `jsonable_encoder`, and handlers return it directly so nothing re-encodes it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import JSONResponse as _StarletteJSON

_encoder = msgspec.json.Encoder()

# Offsets and ids are 64-bit integers in both stores (BIGINT in DuckDB and PostgreSQL): a larger number in a query
# or path is refused (422) rather than failing in the store (found by tests/api/test_schema_fuzz.py).
MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)


class JSONResponse(_StarletteJSON):
    """JSON encoded by msgspec (datetimes as RFC 3339, bytes as base64)."""

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


__all__ = ["MAX_INT64", "MIN_INT64", "JSONResponse"]
