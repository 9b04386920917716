"""`GET /api/v1/audit`: the audit log, for holders of audit:read (the data protection officer, admins).

The log names callers, client addresses and the devices they read (by keyed pseudonyms, not EUIs): it is personal
data itself, so the route serves the personal class, and each read of it is audited too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.access import serves
from clapas.api.errors import errors
from clapas.api.rest import StoreDep, _eui, _time
from clapas.charter import AUDIT_READ, PERSONAL, Caller

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["charter"])
Auditor = Annotated[Caller, serves(PERSONAL, scope=AUDIT_READ)]


@router.get("/audit", summary="The audit log, newest first", responses=errors(401, 403, 422))
def list_audit(
    request: Request,
    store: StoreDep,
    caller: Auditor,
    event: Annotated[str | None, Query(description="read, write, refused, rate_limited, key.created, …")] = None,
    actor: Annotated[str | None, Query(description="a key name, token subject or gateway consumer")] = None,
    key: Annotated[str | None, Query(description="a key id")] = None,
    route: Annotated[str | None, Query(description="a route template, e.g. /api/v1/devices/{eui}")] = None,
    status: Annotated[int | None, Query(description="an HTTP status")] = None,
    device: Annotated[str | None, Query(description="entries that served this device (an EUI; "
                                                            "the log shows its pseudonym)")] = None,
    from_: Annotated[str | None, Query(alias="from", description="at or after (ISO 8601)")] = None,
    to: Annotated[str | None, Query(description="before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Who did what to which data: actor, key id, route, class served, rows, devices, status, request id —
    never an observation value. `GET /api/v1/audit/verify` checks the hash chain."""
    rows = store.audit_entries(event=event, actor=actor, key_id=key, route=route, status=status,
                               subject=_eui(device) if device else None, since=_time(from_, "from"),
                               until=_time(to, "to"), limit=limit, offset=offset)
    request.state.audit_rows = len(rows)
    return JSONResponse({"entries": rows, "limit": limit, "offset": offset})


@router.get("/audit/verify", summary="Check the audit log's hash chain", responses=errors(401, 403))
def verify_audit(request: Request, store: StoreDep, caller: Auditor) -> Response:
    """`ok`, the number of entries checked, and the first broken entry (edited, inserted or removed) if any."""
    request.app.state.access.audit.flush()  # what this process queued is part of the chain checked
    v = store.verify_audit()
    return JSONResponse({"ok": v.ok, "checked": v.checked, "first_broken": v.first_broken, "reason": v.reason})
