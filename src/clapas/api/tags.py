"""`/api/v1/devices/{eui}/tags` and `/api/v1/zones/{zone_id}/tags`: the departments change the tags of their devices
and zones at run time (issue 16, `clapas.selfservice.tags` says whose is what and what a tag may hold).

GET says the tags, whose they are (department, scope) and whether this caller may change them; PUT replaces them
(`{"tags": {…}}`), refused (403) without the department's scope, (422) for tags the registry file could not hold.
A change is written to the registry, kept in the settings history (`GET /api/v1/settings/history`), applied by the
running pipeline and detectors from their next batch, and audited as `tags.changed` with the tags before and after.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.access import serves
from clapas.api.charter import CallerView
from clapas.api.errors import ApiError, errors
from clapas.api.identity import REALM
from clapas.api.rest import _eui, _readable_or_404
from clapas.api.settings import _holder, _some_scope
from clapas.charter import RESTRICTED, Caller
from clapas.selfservice import tags
from clapas.selfservice.paths import PLATFORM, scope_of

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["settings"])
Reader = Annotated[Caller, serves(RESTRICTED, derived=True)]
# derived: the scope needed depends on the device's or zone's use; the route checks it (`_may`)
Writer = Annotated[Caller, serves(RESTRICTED, derived=True, write=True)]
CHANGED = "tags.changed"
EXAMPLE = {"tags": {"river": "Lez", "threshold_yellow": "2.40"}}


def _whose(dept: str, caller: Caller) -> dict[str, Any]:
    scope = scope_of(dept)
    return {"department": dept, "scope": scope, "may_change": caller.can(scope)}


def _may(caller: Caller, dept: str, what: str) -> None:
    scope = scope_of(dept)
    if caller.can(scope):
        return
    whose = "shared by every department" if dept == PLATFORM else f"the {dept} department's"
    need = f"the scope {scope} to change the tags of {what} ({whose})"
    if caller.anonymous:
        raise ApiError(401, f"this change needs a credential with {need}", {"WWW-Authenticate": REALM})
    raise ApiError(403, f"the role {caller.role!r} of this credential lacks {need}")


def _body(payload: Any) -> Any:
    if not isinstance(payload, dict) or set(payload) != {"tags"}:
        raise ApiError(422, 'body: expected {"tags": {"key": "value", …}} (every tag: the ones not given are removed)')
    return payload["tags"]


def _changed(request: Request, row: dict[str, Any], what: dict[str, Any]) -> dict[str, Any]:
    request.state.audit_event = CHANGED
    request.state.audit_detail = {**what, "tags": row["value"], "previous": row["previous"], "change_id": row["id"]}
    change = {k: row[k] for k in ("id", "path", "actor", "via", "role", "key_id", "time")}
    return {**change, "value": row["value"], "previous": row["previous"]}


def _replace(request: Request, caller: Caller, payload: Any, dept: str, change: Any, subject: dict[str, Any],
             key: str, what: str, ident: str, label: str) -> Response:
    """A device's or a zone's tags replaced: the department's scope checked, validated, kept, audited."""
    _may(caller, dept, what)
    try:
        row = change(_holder(request), request.app.state.store, subject, _body(payload), actor=caller.actor,
                     via=caller.via, role=caller.role, key_id=caller.key_id)
    except tags.InvalidTags as e:
        raise ApiError(422, f"tags of {label}: {e}") from None
    done = _changed(request, row, {key: ident, "department": dept})
    return JSONResponse({"change": done, key: ident, "tags": row["value"], **_whose(dept, caller)})


def _device(request: Request, caller: Caller, eui: str) -> dict[str, Any]:
    return _readable_or_404(CallerView.of(request, caller), _eui(eui))


@router.get("/devices/{eui}/tags", summary="A device's tags, whose they are", responses=errors(401, 403, 404))
def device_tags(request: Request, caller: Reader, eui: str) -> Response:
    d = _device(request, caller, eui)
    request.state.audit_rows = 1
    return JSONResponse({"eui": d["eui"], "tags": d.get("tags") or {}, "path": tags.path_of("devices", d["eui"]),
                         **_whose(tags.device_department(d), caller)})


@router.put("/devices/{eui}/tags", summary="Replace a device's tags (applied from the next batch, kept, audited)",
            responses=errors(401, 403, 404, 422))
def change_device_tags(request: Request, caller: Writer, eui: str,
                       payload: Annotated[Any, Body(examples=[EXAMPLE])]) -> Response:
    _some_scope(caller)  # a caller who may change nothing is refused before anything is looked up
    d = _device(request, caller, eui)
    return _replace(request, caller, payload, tags.device_department(d), tags.change_device, d, "eui",
                    f"the {d.get('kind') or 'generic'} {d['eui']}", d["eui"], d["eui"])


def _zone(request: Request, zone_id: str) -> dict[str, Any]:
    for z in request.app.state.store.zones():
        if z["id"] == zone_id:
            return z
    raise ApiError(404, f"unknown zone {zone_id!r}")


@router.get("/zones/{zone_id}/tags", summary="A zone's tags, whose they are", responses=errors(401, 403, 404))
def get_zone_tags(request: Request, caller: Reader, zone_id: str) -> Response:
    z = _zone(request, zone_id)
    request.state.audit_rows = 1
    return JSONResponse({"zone": z["id"], "tags": tags.zone_tags(z), "path": tags.path_of("zones", z["id"]),
                         **_whose(tags.zone_department(z), caller)})


@router.put("/zones/{zone_id}/tags", summary="Replace a zone's tags (applied from the next batch, kept, audited)",
            responses=errors(401, 403, 404, 422))
def change_zone_tags(request: Request, caller: Writer, zone_id: str,
                     payload: Annotated[Any, Body(examples=[EXAMPLE])]) -> Response:
    _some_scope(caller)
    z = _zone(request, zone_id)
    return _replace(request, caller, payload, tags.zone_department(z), tags.change_zone, z, "zone",
                    f"the zone {z['id']}", z["id"], f"the zone {z['id']}")
