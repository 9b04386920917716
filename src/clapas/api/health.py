"""Fleet health routes (issue 13): the summary of what the health rules found, the maintenance list, each device's
state (ok, late, silent, never seen) and a device's own health.

All read the store only: the open `health.*` alerts (the rules' findings, with their evidence), the registry
(kind, zone, place, last heard) and the journal (learned intervals). Health is the network team's operational data,
restricted: it names devices and where they are. A device the caller may not read (a dwelling's meter, personal) is
counted for every caller of the route but listed, with its EUI, only to a caller who may read its class.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.access import serves
from clapas.api.charter import refused
from clapas.api.errors import ApiError, errors
from clapas.api.language import Language, localize_alert, tag
from clapas.api.rest import _eui, _time, _utc
from clapas.charter import CLASSES, RESTRICTED, Caller, most_restrictive
from clapas.charter.classes import Classifier
from clapas.config import Settings
from clapas.i18n import term
from clapas.indices.health import LATE
from clapas.reports import health as rep
from clapas.store.base import Store

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["health"])
Restricted = Annotated[Caller, serves(RESTRICTED)]
MAX_ALERTS = 1_000_000
# what each rule means for the people who go and fix it
PROBLEMS = {"health.silent": "silent", "health.gateway_offline": "gateway_offline",
            "health.battery_low": "low_battery", "health.radio": "weak_radio",
            "health.stuck_sensor": "stuck_sensor"}
# what to do about each problem: the catalog's `term.health_action.<problem>` (`clapas.i18n`), in the language asked
CSV_COLUMNS = ("eui", "name", "kind", "zone", "lat", "lon", "problem", "severity", "since", "why", "action",
               "forecast_date")


def _classes(settings: Settings | None) -> Classifier:
    return Classifier(getattr(settings, "charter", None))


def _listable(caller: Caller, classes: Classifier, d: dict[str, Any] | None) -> bool:
    """Whether a device may be named to the caller: health is restricted, and a device's own class may be more."""
    return d is None or caller.may_read(most_restrictive(RESTRICTED, classes.device(d)))


class _Listable:
    """`_listable` for the devices of one call, decided once per (data_class, kind, premises_use): what a device's
    class depends on (`Classifier.device`), a handful of groups for 45,000 devices."""

    def __init__(self, caller: Caller, classes: Classifier) -> None:
        self.caller, self.classes = caller, classes
        self.seen: dict[tuple[Any, Any, Any], bool] = {}

    def __call__(self, d: dict[str, Any] | None) -> bool:
        if d is None:
            return True
        key = (d.get("data_class"), d.get("kind"), d.get("premises_use"))
        ok = self.seen.get(key)
        if ok is None:
            ok = self.seen[key] = _listable(self.caller, self.classes, d)
        return ok


def _findings(store: Store, caller: Caller, lang: str, classes: Classifier | None = None,
              alerts: list[dict[str, Any]] | None = None,
              ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], int]:
    """(open health alerts the caller may see, their messages in `lang`; the registry rows of their devices by
    EUI; how many were withheld), of `alerts` when the caller has read them (`open_health_alerts`)."""
    classes = classes or _classes(None)
    if alerts is None:
        alerts = rep.open_health_alerts(store)
    texts = store.alert_texts([a["id"] for a in alerts])
    alerts = [localize_alert(a, lang, texts.get(a["id"])) for a in alerts]
    devices = {d["eui"]: d for d in store.health_devices(euis=sorted({a["subject"] for a in alerts}))}
    listable = _Listable(caller, classes)
    seen, withheld = [], 0
    for a in alerts:
        d = devices.get(a["subject"])
        if not listable(d):
            withheld += 1
            a = {**a, "withheld": True}
        seen.append(a)
    return seen, devices, withheld


def _judged(store: Store, fleet: rep.Fleet, listable: _Listable, *, state: str | None = None,
            kind: str | None = None, zone: str | None = None, limit: int = 1000,
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(the fleet's devices counted per group, the first `limit` of `state` the caller may see, how many of
    `state` it may not): the rights decided per group of devices (`device_groups`), the store pages the listable
    ones."""
    everything = all(listable.caller.may_read(c) for c in CLASSES)  # the operator: no group left out
    keys = {} if everything else {(g["data_class"], g["kind"], g["premises_use"]): listable(g)
                                  for g in store.device_groups()}
    shown = None if everything else sorted(k for k, ok in keys.items() if ok)
    groups, listed = fleet.judge(shown, state=state, kind=kind, zone=zone, limit=limit)
    # a group registered since `device_groups` is not listed (the store's filter), so counted withheld
    withheld = sum(g["devices"] for g in groups if (state is None or g["state"] == state)
                   and not (everything or keys.get((g["data_class"], g["kind"], g["premises_use"]), False)))
    return groups, listed, withheld


def summary(store: Store, caller: Caller, limit: int = 1000, lang: str = "en", settings: Settings | None = None,
            at: datetime | None = None) -> dict[str, Any]:
    """The fleet summary, its texts in `lang`; `at` (default now) is when device states (late, silent…) are
    judged."""
    settings = settings or Settings()
    classes = _classes(settings)
    health_alerts = rep.open_health_alerts(store)  # read once: the findings and the fleet's judging both need them
    alerts, devices, withheld = _findings(store, caller, lang, classes, health_alerts)
    by_rule: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    by_zone: dict[str, Counter[str]] = defaultdict(Counter)
    listed: list[dict[str, Any]] = []
    gateways = []
    for a in alerts:
        problem = PROBLEMS.get(a["rule"], a["rule"])
        by_rule[problem] += 1
        if a["subject_kind"] == "gateway":
            ev = a["evidence"]
            gateways.append({"gateway": a["subject"], "offline_since": _utc(a["opened_at"]),
                             "orphaned": ev.get("orphaned_count", 0),
                             "lost_redundancy": ev.get("lost_redundancy_count", 0)})
            continue
        d = devices.get(a["subject"], {})
        by_kind[d.get("kind") or ""][problem] += 1
        by_zone[d.get("zone") or a.get("zone") or ""][problem] += 1
        if not a.get("withheld") and len(listed) < limit:
            listed.append({"eui": a["subject"], "kind": d.get("kind"), "zone": d.get("zone"), "problem": problem,
                           "severity": a["severity"], "since": _utc(a["opened_at"]), "why": a["message"]})
    stale = store.stale_alerts()
    at = at or datetime.now(UTC)
    groups, late, late_withheld = _judged(store, rep.Fleet(store, settings.health, settings.profiles, at,
                                                           health_alerts),
                                          _Listable(caller, classes), state=LATE, limit=limit)
    for g in groups:
        if g["state"] == LATE:
            by_rule["late"] += g["devices"]
            by_kind[g["kind"]]["late"] += g["devices"]
            by_zone[g["zone"]]["late"] += g["devices"]
    return {"devices": sum(g["devices"] for g in groups), "at": at, "problems": dict(by_rule),
            "device_states": rep.state_counts(groups),
            "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
            "by_zone": {z: dict(v) for z, v in sorted(by_zone.items())},
            "gateways": gateways, "listed": listed, "late": [_state_out(r) for r in late],
            "withheld": withheld + late_withheld, "stale_alerts": stale}


def _state_out(r: dict[str, Any]) -> dict[str, Any]:
    return {k: (_utc(v) if isinstance(v, datetime) else v) for k, v in r.items()}


def _frames_out(f: dict[str, Any]) -> dict[str, Any]:
    return {**_state_out(f), "segments": [_state_out(s) for s in f["segments"]]}


def maintenance_csv(store: Store, caller: Caller, lang: str = "en", settings: Settings | None = None) -> str:
    """What to visit, where, why and since when: one row per open health finding, oldest first. The header's
    column names are stable machine names; `why` and `action` are in `lang`."""
    alerts, devices, _ = _findings(store, caller, lang, _classes(settings))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for a in sorted((a for a in alerts if not a.get("withheld")), key=lambda a: (a["opened_at"], a["subject"])):
        problem = PROBLEMS.get(a["rule"], a["rule"])
        d = devices.get(a["subject"], {})
        w.writerow([a["subject"], d.get("name", ""), d.get("kind", "gateway" if a["subject_kind"] == "gateway"
                                                            else ""),
                    d.get("zone", ""), d.get("lat", ""), d.get("lon", ""), problem, a["severity"],
                    _utc(a["opened_at"]).isoformat(), a["message"], term("health_action", problem, lang),
                    a["evidence"].get("forecast_date") or ""])
    return out.getvalue()


@router.get("/health", summary="The fleet's health: silent devices, gateways, batteries, radio, stuck sensors")
def fleet_health(request: Request, caller: Restricted, lang: Language,
                 limit: Annotated[int, Query(ge=0, le=100_000, description="devices listed at most")] = 1000,
                 format: Annotated[Literal["json", "csv"], Query(description="csv: the maintenance list")] = "json",
                 at: Annotated[str | None, Query(description="ISO 8601: when device states are judged (default "
                                                             "now)")] = None,
                 ) -> Response:
    """Counts of each problem by device kind and zone (`late` included: devices past 1.5 × their interval, no
    alert), devices per state (`device_states`), the offline gateways with their orphaned devices, the devices
    needing a visit (`listed`), the late ones (`late`), and how many other alerts are stale. `format=csv` is the
    maintenance list (what to visit, where, why, since when), as at `/api/v1/health/maintenance.csv`. The findings'
    texts in the language asked (`lang`, else `Accept-Language`, else the city's)."""
    store: Store = request.app.state.store
    if format == "csv":
        return _csv(request, store, caller, lang)
    body = summary(store, caller, limit, lang, request.app.state.settings, _time(at, "at"))
    request.state.audit_rows = len(body["listed"]) + len(body["late"])
    request.state.audit_class = RESTRICTED
    return tag(JSONResponse(body), lang)


@router.get("/health/maintenance.csv", summary="The maintenance list (CSV)",
            responses={200: {"content": {"text/csv": {}}}})
def maintenance(request: Request, caller: Restricted, lang: Language) -> Response:
    """One row per device or gateway to visit: where (zone, coordinates), why, since when, what to do (`why` and
    `action` in the language asked; the column names stay the same)."""
    return _csv(request, request.app.state.store, caller, lang)


def _csv(request: Request, store: Store, caller: Caller, lang: str) -> Response:
    text = maintenance_csv(store, caller, lang, request.app.state.settings)
    request.state.audit_rows = text.count("\n") - 1
    request.state.audit_class = RESTRICTED
    return tag(Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="maintenance.csv"'}), lang)


def device_states(store: Store, caller: Caller, settings: Settings, at: datetime, *, state: str | None = None,
                  kind: str | None = None, zone: str | None = None, limit: int = 1000) -> dict[str, Any]:
    """Devices per state (all counted) and those of `state` the caller may see (listed)."""
    groups, listed, withheld = _judged(store, rep.Fleet(store, settings.health, settings.profiles, at),
                                       _Listable(caller, _classes(settings)), state=state, kind=kind, zone=zone,
                                       limit=limit)
    return {"at": at, "counts": rep.state_counts(groups), "devices": [_state_out(r) for r in listed],
            "withheld": withheld}


@router.get("/health/devices", summary="Each device's state: ok, late, silent, never seen, unknown",
            responses=errors(422))
def list_device_states(
        request: Request, caller: Restricted,
        state: Annotated[Literal["ok", "late", "silent", "never_seen", "unknown"] | None,
                         Query(description="only devices in this state")] = None,
        kind: Annotated[str | None, Query(description="device kind")] = None,
        zone: Annotated[str | None, Query(description="zone id")] = None,
        at: Annotated[str | None, Query(description="ISO 8601: when states are judged (default now)")] = None,
        limit: Annotated[int, Query(ge=0, le=100_000, description="devices listed at most")] = 1000) -> Response:
    """Counts per state of every device (kind/zone filters apply), and the devices listed with what their state
    was judged on: last heard, the interval T and where it comes from (profile, registry, learned), when they turn
    (or turned) late (1.5·T) and silent (3·T), and the offline gateway they are orphaned by."""
    store: Store = request.app.state.store
    body = device_states(store, caller, request.app.state.settings, _time(at, "at") or datetime.now(UTC),
                         state=state, kind=kind, zone=zone, limit=limit)
    request.state.audit_rows = len(body["devices"])
    request.state.audit_class = RESTRICTED
    return JSONResponse(body)


def device_health(store: Store, caller: Caller, settings: Settings, eui: str, at: datetime,
                  lang: str = "en") -> dict[str, Any]:
    """One device's health: its state, its open health alerts (their texts in `lang`)."""
    d = store.device(eui)
    if d is None:
        raise ApiError(404, f"unknown device {eui!r}")
    if not _listable(caller, _classes(settings), d):
        raise refused(_classes(settings).device(d), caller)
    [row] = rep.device_states(store, settings.health, settings.profiles, at, [d])
    since = at - timedelta(seconds=settings.health.heard_window_s)
    alerts = store.alerts(states=("open", "acknowledged"), rule_prefix="health.", device=eui, limit=1000)
    texts = store.alert_texts([a["id"] for a in alerts])
    alerts = [localize_alert(a, lang, texts.get(a["id"])) for a in alerts]
    return {**_state_out(row), "at": at,
            "gateways": [_state_out(g) for g in store.device_gateways(eui, since)],
            "frames": _frames_out(rep.frame_loss(store, settings.health, eui, at)),
            "clock": _state_out(c) if (c := rep.clock(store, settings.health, d, at)) is not None else None,
            "alerts": [{"id": a["id"], "rule": a["rule"], "severity": a["severity"], "since": _utc(a["opened_at"]),
                        "why": a["message"], "evidence": a["evidence"]} for a in alerts]}


@router.get("/health/devices/{eui}", summary="One device's health", responses=errors(401, 403, 404, 422))
def get_device_health(
        request: Request, caller: Restricted, eui: str, lang: Language,
        at: Annotated[str | None, Query(description="ISO 8601: when the state is judged (default now)")] = None,
        ) -> Response:
    """The device's state (ok, late, silent, never seen, unknown) with what it was judged on, the gateways that
    heard it in the last 7 days (`heard_window_s`), its frame loss over the last 7 days per fCnt segment
    (`frames`: resets, roll-overs and retransmissions counted apart, §7.4), its clock against the network's when
    its payloads carry a time (`clock`, else null), and its open health alerts. 403 when the caller may not read
    the device's class (a dwelling's meter)."""
    store: Store = request.app.state.store
    body = device_health(store, caller, request.app.state.settings, _eui(eui),
                         _time(at, "at") or datetime.now(UTC), lang)
    request.state.audit_rows = 1
    request.state.audit_class = RESTRICTED
    request.state.audit_subjects = [body["eui"]]
    return tag(JSONResponse(body), lang)


def _offline(store: Store) -> dict[str, dict[str, Any]]:
    """Open gateway incidents by gateway id."""
    return {a["subject"]: a for a in store.alerts(states=("open", "acknowledged"), rule="health.gateway_offline",
                                                  limit=MAX_ALERTS)}


def _gateway_id(raw: str) -> str:
    gid = raw.strip().lower()
    if not gid or len(gid) > 64:
        raise ApiError(422, "a gateway id is 1 to 64 characters")
    return gid


def gateways(store: Store, settings: Settings, at: datetime) -> dict[str, Any]:
    """Every gateway that heard a device in the blast-radius window, with its counts and its incident if any."""
    since = at - timedelta(seconds=settings.health.heard_window_s)
    offline = _offline(store)
    rows = {g["gateway"]: {**g, "offline_since": None} for g in store.gateways_heard(since)}
    for gid, a in offline.items():
        row = rows.setdefault(gid, {"gateway": gid, "devices": 0, "only_by_it": 0, "last_heard": None})
        row["offline_since"] = a["opened_at"]
    return {"at": at, "since": since, "gateways": [_state_out(rows[g]) for g in sorted(rows)]}


@router.get("/gateways", summary="Gateways: devices heard, devices heard only by each, incidents",
            responses=errors(422))
def list_gateways(request: Request, caller: Restricted,
                  at: Annotated[str | None, Query(description="ISO 8601 (default now)")] = None) -> Response:
    """Each gateway that heard a device in the last 7 days (`heard_window_s`, from the uplinks' rxInfo) or has an
    open `health.gateway_offline` incident: how many devices it heard, how many only it heard (a blast radius),
    when it last heard one, since when it is offline. Counts only: no device is named."""
    body = gateways(request.app.state.store, request.app.state.settings, _time(at, "at") or datetime.now(UTC))
    request.state.audit_rows = len(body["gateways"])
    request.state.audit_class = RESTRICTED
    return JSONResponse(body)


def gateway_devices(store: Store, caller: Caller, settings: Settings, gateway: str, at: datetime,
                    limit: int = 10_000) -> dict[str, Any]:
    """The devices a gateway heard in the window; those the caller may not read counted, not listed."""
    classes = _classes(settings)
    since = at - timedelta(seconds=settings.health.heard_window_s)
    heard = store.gateway_devices(gateway, since)
    incident = _offline(store).get(gateway)
    if not heard and incident is None:
        raise ApiError(404, f"no device heard by gateway {gateway!r} since {since.isoformat()}")
    registry = {d["eui"]: d for d in store.devices(euis=[h["eui"] for h in heard], limit=len(heard) or 1)}
    listed, withheld = [], 0
    for h in heard:
        d = registry.get(h["eui"])
        if not _listable(caller, classes, d):
            withheld += 1
            continue
        if len(listed) < limit:
            d = d or {}
            listed.append({"eui": h["eui"], "name": d.get("name") or "", "kind": d.get("kind") or "",
                           "zone": d.get("zone") or "", "lat": d.get("lat"), "lon": d.get("lon"),
                           "first_heard": h["first_heard"], "last_heard": h["last_heard"], "last_snr": h["last_snr"],
                           "gateways": int(h["gateways"]), "only_this_gateway": int(h["gateways"]) == 1})
    n = Counter(min(int(h["gateways"]), 3) for h in heard)
    return {"gateway": gateway, "at": at, "since": since,
            "offline_since": incident["opened_at"] if incident else None,
            "counts": {"heard": len(heard), "only_this_gateway": n[1], "one_other_gateway": n[2]},
            "devices": [_state_out(r) for r in listed], "withheld": withheld}


@router.get("/gateways/{gateway}/devices", summary="The devices a gateway hears", responses=errors(404, 422))
def list_gateway_devices(
        request: Request, caller: Restricted, gateway: str,
        at: Annotated[str | None, Query(description="ISO 8601 (default now)")] = None,
        limit: Annotated[int, Query(ge=0, le=100_000, description="devices listed at most")] = 10_000) -> Response:
    """The devices the gateway heard in the last 7 days (`heard_window_s`, from the uplinks' rxInfo), with when
    it first and last heard each, the SNR of the last uplink it heard, how many gateways heard the device in the
    window and whether this one is its only one (it is orphaned if the gateway fails). A device the caller may not
    read (a dwelling's meter) is counted (`counts`, `withheld`), not listed. 404 when the gateway heard nothing in
    the window and has no open incident."""
    store: Store = request.app.state.store
    body = gateway_devices(store, caller, request.app.state.settings, _gateway_id(gateway),
                           _time(at, "at") or datetime.now(UTC), limit)
    request.state.audit_rows = len(body["devices"])
    request.state.audit_class = RESTRICTED
    request.state.audit_subjects = [d["eui"] for d in body["devices"]]
    return JSONResponse(body)
