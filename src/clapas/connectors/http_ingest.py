"""The ChirpStack v4 HTTP integration: ChirpStack POSTs each event to `…/ingest/chirpstack?event=up` (JSON or
protobuf, as the integration is configured). A connector like the MQTT one, only served by the API's HTTP server.

Whatever the body holds is accepted and handed to the pipeline, which journals it and quarantines what it cannot
decode: a bad body is kept with its reason, never refused and lost. The answer (200) is sent only once the event is
durable (issue 9), as an MQTT QoS 1 message is acknowledged: in `clapas run` once it is fsync'd in the spool
(`app.state.ingest`, the same path as MQTT's: a `kill -9` after the answer loses nothing), else once the batch holding
it is committed. ChirpStack retries what was not answered 2xx; the retry is dropped as a duplicate if the first try
was kept after all. Refused are only what cannot be a ChirpStack event at all: an unknown `event` (400), a body over
`MAX_BODY_BYTES` (413), and everything when the ingest is switched off or this process does not ingest, the spool
is full or the event could not be made durable in `DURABLE_WAIT_S` (503: retry later).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.access import serves
from clapas.api.errors import ApiError, errors
from clapas.charter import INGEST_WRITE, OPEN, Caller
from clapas.connectors import chirpstack

SOURCE = "chirpstack-http"
# No ChirpStack event comes near this; the pipeline journals anything above 256 KiB truncated anyway.
MAX_BODY_BYTES = 1024 * 1024
# Without a spool, how long a request waits for its batch's commit before answering 503 (design: ChirpStack's HTTP
# integration times out after 30 s).
DURABLE_WAIT_S = 25.0

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"], default_response_class=JSONResponse)

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "A ChirpStack v4 integration event, protobuf JSON mapping or binary protobuf",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes the limit (before reading it all when announced)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"body of {declared} bytes exceeds the {MAX_BODY_BYTES}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"body exceeds the {MAX_BODY_BYTES}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/chirpstack", status_code=200, summary="ChirpStack v4 HTTP integration endpoint",
             openapi_extra=_BODY_DOC, responses=errors(400, 413, 422, 503))
async def ingest_chirpstack(
    request: Request,
    # the answer holds no data (open); the scope is the ingest's own, without any read scope (the "ingest" role)
    caller: Annotated[Caller, serves(OPEN, scope=INGEST_WRITE, derived=True, write=True)],
    event: Annotated[str, Query(description=f"the event type: {', '.join(chirpstack.EVENTS)}")],
) -> Response:
    """Accept one event; answered once it is durable (spooled or committed), then stored or quarantined by the
    pipeline."""
    pipeline = request.app.state.pipeline
    if pipeline is None or not request.app.state.settings.chirpstack.http_ingest:
        raise ApiError(503, "ChirpStack HTTP ingest is disabled on this server "
                            "(CLAPAS_CHIRPSTACK_HTTP_INGEST, or this process does not ingest)")
    if event not in chirpstack.EVENTS:
        raise ApiError(400, f"query parameter 'event': unknown ChirpStack event {event!r} "
                            f"(expected one of {', '.join(chirpstack.EVENTS)})")
    body = await _read_body(request)
    message = chirpstack.message(body, datetime.now(UTC), event=event, source=SOURCE)
    spooled = getattr(request.app.state, "ingest", None)  # `clapas run`: the spool, as for MQTT
    if spooled is not None:
        problem = await spooled(message)
        if problem:
            raise ApiError(503, f"event not accepted: {problem}; retry later")
        durable = "spooled"
    else:  # the wait for the commit (and the writer's backpressure) stays off the event loop
        if not await run_in_threadpool(pipeline.submit_committed, message, DURABLE_WAIT_S):
            raise ApiError(503, f"event not committed within {DURABLE_WAIT_S:.0f} s (store: "
                                f"{pipeline.store_error or 'busy'}); retry later")
        durable = "committed"
    return JSONResponse({"accepted": True, "durable": durable, "event": event, "format": message.fmt,
                         "bytes": len(body)})
