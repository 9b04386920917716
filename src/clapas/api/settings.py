"""`/api/v1/settings`: the departments change their own settings at run time (issue 16, `clapas.selfservice`).

A change names a setting by its config-file path (`flood.gauges.<eui>.yellow_m`) and needs the scope of the
department that path belongs to (`settings:environment`…, `config:write` for the notifier routes): which scope a
change needs depends on its path, so the route declares a write and refuses, after reading the path, a caller
without that scope (403, saying which scope and why). The value is checked by the rules of the config file (422
with their message), kept in the store, applied from the next batch, and audited as `settings.changed` with the
path, the old and the new value.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Body, Query, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.access import serves
from clapas.api.errors import ApiError, errors
from clapas.api.identity import REALM
from clapas.charter import DEPARTMENT_SCOPES, RESTRICTED, Caller
from clapas.selfservice import paths
from clapas.selfservice.holder import InvalidValue, SettingsHolder, decode
from clapas.selfservice.paths import PLATFORM, NotOverridable, scope_of

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["settings"])
Reader = Annotated[Caller, serves(RESTRICTED)]
# derived: the scope needed depends on the path in the body; the route checks it (`_allowed`)
Writer = Annotated[Caller, serves(RESTRICTED, derived=True, write=True)]
CHANGED, REVERTED = "settings.changed", "settings.reverted"


class Change(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    path: str
    value: Any


def _holder(request: Request) -> SettingsHolder:
    h: SettingsHolder = request.app.state.settings_holder
    h.maybe_reload()
    return h


def _devices(request: Request) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """kind → EUIs of the kinds with per-device settings, and each one's registry tags."""
    store = request.app.state.store
    by_kind: dict[str, list[str]] = {}
    tags: dict[str, dict[str, str]] = {}
    for kind in paths.DEVICE_TABLES.values():
        for d in store.devices(kind=kind, limit=100_000):
            by_kind.setdefault(kind, []).append(d["eui"])
            tags[d["eui"]] = dict(d.get("tags") or {})
    return by_kind, tags


def _rules() -> list[str]:
    from clapas.detectors.score import RULES

    return list(RULES)


def _in_use(settings: Any, e: paths.Entry, tags: dict[str, str]) -> Any:
    """What a per-device setting that is not set falls back to (the gauge's registry tag, the city-wide rate)."""
    if not e.device or not e.path.startswith("flood.gauges."):
        return None
    field = paths.split(e.path)[-1]
    yellow, orange, red = settings.flood.level_thresholds(e.device, tags)
    r1, r3 = settings.flood.rise_thresholds(e.device)
    return {"yellow_m": yellow, "orange_m": orange, "red_m": red, "rise_1h_m_per_h": r1,
            "rise_3h_m_per_h": r3}.get(field)


SETTINGS_SCOPES = (*DEPARTMENT_SCOPES.values(), scope_of(PLATFORM))


def _some_scope(caller: Caller) -> None:
    """A caller who may change no setting at all is refused before the body is read (a write refused unread)."""
    if not any(caller.can(s) for s in SETTINGS_SCOPES):
        need = f"one of the scopes {', '.join(SETTINGS_SCOPES)}"
        if caller.anonymous:
            raise ApiError(401, f"changing a setting needs a credential with {need}", {"WWW-Authenticate": REALM})
        raise ApiError(403, f"the role {caller.role!r} of this credential lacks {need}")


def _allowed(caller: Caller, path: str) -> tuple[str, str, str]:
    """(normalized path, department, scope) of a change the caller may make; 422 for a path nobody may change,
    401/403 for a caller without the department's scope."""
    try:
        segs = paths.split(path)
        dept = paths.department(segs)
    except NotOverridable as e:
        raise ApiError(422, str(e)) from None
    scope = scope_of(dept)
    if not caller.can(scope):
        whose = "shared by every department" if dept == PLATFORM else f"the {dept} department's"
        need = f"the scope {scope} to change {paths.join(segs)} ({whose} settings)"
        if caller.anonymous:
            raise ApiError(401, f"this change needs a credential with {need}", {"WWW-Authenticate": REALM})
        raise ApiError(403, f"the role {caller.role!r} of this credential lacks {need}")
    return paths.join(segs), dept, scope


def _history_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "path": r["path"], "value": decode(r["value"]), "previous": decode(r["previous"]),
            "removed": bool(r["removed"]), "actor": r["actor"], "via": r["via"], "role": r["role"],
            "key_id": r["key_id"], "time": r["time"]}


@router.get("/settings", summary="The settings this caller may change, with their values",
            responses=errors(401, 403))
def list_settings(request: Request, caller: Reader,
                  department: Annotated[str | None, Query(description="water, environment, mobility, culture, "
                                                                      "platform")] = None,
                  all_: Annotated[bool, Query(alias="all", description="also those the caller may not change")]
                  = False) -> Response:
    """Each setting a department may change at run time: its path, department, scope, kind of value, its value
    now, the config file's value, whether it is overridden (by whom, when) and, per device, what applies when it is
    not set (the gauge's registry tag)."""
    h = _holder(request)
    devices, tags = _devices(request)
    base, current = paths.tree(h.base), paths.tree(h.current)
    out = []
    for e in paths.catalog(devices, _rules()):
        if department and e.department != department:
            continue
        may = caller.can(e.scope)
        if not may and not all_:
            continue
        segs = paths.split(e.path)
        o = h.overrides.get(e.path)
        row = {"path": e.path, "department": e.department, "scope": e.scope, "kind": e.kind, "device": e.device,
               "value": paths.get(current, segs), "base": paths.get(base, segs), "overridden": o is not None,
               "may_change": may, "changed_by": o["actor"] if o else None, "changed_at": o["time"] if o else None}
        if e.device:  # what applies: now, and with the config file alone (its value, else the registry tag)
            row["in_use"] = _in_use(h.current, e, tags.get(e.device, {}))
            row["base_in_use"] = _in_use(h.base, e, tags.get(e.device, {}))
        out.append(row)
    held = {d: caller.can(s) for d, s in DEPARTMENT_SCOPES.items()}
    held[PLATFORM] = caller.can(scope_of(PLATFORM))
    request.state.audit_rows = len(out)
    return JSONResponse({"departments": held, "settings": out, "skipped": h.skipped, "version": h.version})


@router.put("/settings", summary="Change one setting (applied from the next batch, kept, audited)",
            responses=errors(401, 403, 422))
def change_setting(request: Request, caller: Writer,
                   payload: Annotated[dict[str, Any], Body(examples=[
                       {"path": "flood.gauges.0004a30b001c2f3a.yellow_m", "value": 2.4}])]) -> Response:
    """`{"path": …, "value": …}`: the path as in the config file (TOML dotted key), the value as JSON. Refused
    (403) without the scope of the path's department; refused (422) if the config file's rules refuse the value."""
    _some_scope(caller)
    try:
        body = msgspec.convert(payload, Change)
    except msgspec.ValidationError as e:
        raise ApiError(422, f"body: {e} (expected {{\"path\": …, \"value\": …}})") from None
    path, dept, scope = _allowed(caller, body.path)
    h = _holder(request)
    try:
        row = h.change(path, body.value, actor=caller.actor, via=caller.via, role=caller.role, key_id=caller.key_id)
    except (InvalidValue, NotOverridable) as e:
        raise ApiError(422, f"{path}: {e}") from None
    request.state.audit_event = CHANGED
    request.state.audit_detail = {"path": path, "value": body.value, "previous": row["previous"],
                                  "department": dept, "change_id": row["id"]}
    change = {k: row[k] for k in ("id", "path", "actor", "via", "role", "key_id", "time")}
    change.update(value=body.value, previous=row["previous"], removed=False)
    return JSONResponse({"change": change, "department": dept, "scope": scope, "version": h.version})


@router.delete("/settings", summary="Back to the config file's value", responses=errors(401, 403, 404, 422))
def revert_setting(request: Request, caller: Writer,
                   path: Annotated[str, Query(description="the setting's path")]) -> Response:
    _some_scope(caller)
    path, dept, _ = _allowed(caller, path)
    h = _holder(request)
    row = h.revert(path, actor=caller.actor, via=caller.via, role=caller.role, key_id=caller.key_id)
    if row is None:
        raise ApiError(404, f"{path} is not overridden: it has the config file's value")
    request.state.audit_event = REVERTED
    request.state.audit_detail = {"path": path, "previous": row["previous"], "department": dept,
                                  "change_id": row["id"]}
    return JSONResponse({"reverted": path, "value": h.value(paths.split(path)), "version": h.version})


@router.get("/settings/history", summary="The changes made, newest first", responses=errors(401, 403))
def settings_history(request: Request, caller: Reader,
                     path: Annotated[str | None, Query(description="one setting's path")] = None,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
                     offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    if path is not None:
        try:
            path = paths.join(paths.split(path))
        except NotOverridable as e:
            raise ApiError(422, str(e)) from None
    rows = request.app.state.store.settings_history(path, limit, offset)
    request.state.audit_rows = len(rows)
    return JSONResponse({"changes": [_history_row(r) for r in rows], "limit": limit, "offset": offset})
