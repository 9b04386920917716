"""Fleet health routes (issue 13): the summary of what the health rules found, and the maintenance list.

Both read the store only: the open `health.*` alerts (the rules' findings, with their evidence) and the registry
(kind, zone, place). Health is the network team's operational data, restricted: it names devices and where they
are. A personal device (a dwelling's meter) is counted for every caller of the route but listed, with its EUI,
only to a caller who may read personal data.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.access import serves
from clapas.api.language import Language, localize_alert, tag
from clapas.api.rest import _utc
from clapas.charter import PERSONAL, READ_SCOPE, RESTRICTED, Caller
from clapas.i18n import term
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


def _findings(store: Store, caller: Caller, lang: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], int]:
    """(open health alerts the caller may see, their messages in `lang`; the registry by EUI; how many were
    withheld)."""
    alerts = store.alerts(states=("open", "acknowledged"), rule_prefix="health.", limit=MAX_ALERTS)
    texts = store.alert_texts([a["id"] for a in alerts])
    alerts = [localize_alert(a, lang, texts.get(a["id"])) for a in alerts]
    devices = {d["eui"]: d for d in store.devices(limit=10_000_000)}
    personal = caller.can(READ_SCOPE[PERSONAL])
    seen, withheld = [], 0
    for a in alerts:
        d = devices.get(a["subject"])
        if d is not None and (d.get("data_class") or "open") == PERSONAL and not personal:
            withheld += 1
            a = {**a, "withheld": True}
        seen.append(a)
    return seen, devices, withheld


def summary(store: Store, caller: Caller, limit: int = 1000, lang: str = "en") -> dict[str, Any]:
    alerts, devices, withheld = _findings(store, caller, lang)
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
    stale = sum(1 for a in store.alerts(states=("open", "acknowledged"), limit=MAX_ALERTS)
                if a.get("stale_since") is not None)
    return {"devices": len(devices), "problems": dict(by_rule),
            "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
            "by_zone": {z: dict(v) for z, v in sorted(by_zone.items())},
            "gateways": gateways, "listed": listed, "withheld": withheld,
            "stale_alerts": stale}


def maintenance_csv(store: Store, caller: Caller, lang: str = "en") -> str:
    """What to visit, where, why and since when: one row per open health finding, oldest first. The header's
    column names are stable machine names; `why` and `action` are in `lang`."""
    alerts, devices, _ = _findings(store, caller, lang)
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
                 ) -> Response:
    """Counts of each problem by device kind and zone, the offline gateways with their orphaned devices, the
    devices needing a visit (`listed`), and how many other alerts are open. `format=csv` is the maintenance list
    (what to visit, where, why, since when), as at `/api/v1/health/maintenance.csv`. The findings' texts in the
    language asked (`lang`, else `Accept-Language`, else the city's)."""
    store: Store = request.app.state.store
    if format == "csv":
        return _csv(request, store, caller, lang)
    body = summary(store, caller, limit, lang)
    request.state.audit_rows = len(body["listed"])
    request.state.audit_class = RESTRICTED
    return tag(JSONResponse(body), lang)


@router.get("/health/maintenance.csv", summary="The maintenance list (CSV)",
            responses={200: {"content": {"text/csv": {}}}})
def maintenance(request: Request, caller: Restricted, lang: Language) -> Response:
    """One row per device or gateway to visit: where (zone, coordinates), why, since when, what to do (`why` and
    `action` in the language asked; the column names stay the same)."""
    return _csv(request, request.app.state.store, caller, lang)


def _csv(request: Request, store: Store, caller: Caller, lang: str) -> Response:
    text = maintenance_csv(store, caller, lang)
    request.state.audit_rows = text.count("\n") - 1
    request.state.audit_class = RESTRICTED
    return tag(Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="maintenance.csv"'}), lang)
