"""Open aggregates of personal quantities: daily (weekly, monthly) water consumption per zone and for the city.

What open callers get instead of the households' series (`clapas.charter.aggregates` decides what is published;
the store adds up index differences per zone and day). Every zone's cells are computed over the whole zone tree
whatever the request asks for, so that no two requests difference into a suppressed cell; `zone=` only narrows
what is returned. Days are the city's local days; a day is served once it ended `settle_h` ago.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.access import serves
from clapas.api.errors import ApiError, errors
from clapas.charter import OPEN, Caller
from clapas.charter.aggregates import (
    EMPTY,
    PUBLISHED,
    ROOT,
    STEPS,
    AggregateSettings,
    Group,
    RefusedStep,
    ZoneTree,
    aggregate,
    check_step,
    period_of,
)

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["aggregates"])

QUANTITY = "water.volume"  # the meters' index: consumption is its daily difference
DEFAULT_DAYS = 7


def _settings(settings: Any) -> AggregateSettings:
    charter = getattr(settings, "charter", None)
    value = getattr(charter, "aggregates", None)
    return value if isinstance(value, AggregateSettings) else AggregateSettings()


def _date(raw: str | None, name: str) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip()[:10])
    except ValueError:
        raise ApiError(422, f"query parameter {name!r}: not a date (YYYY-MM-DD): {raw!r}") from None


def _midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, datetime.min.time(), tz).astimezone(UTC)


def last_day_served(s: AggregateSettings, tz: ZoneInfo, now: datetime | None = None) -> date:
    """The last local day whose aggregates are served: over at least `settle_h` ago."""
    return ((now or datetime.now(UTC)) - timedelta(hours=s.settle_h)).astimezone(tz).date() - timedelta(days=1)


def daily_groups(store: Any, s: AggregateSettings, tz: ZoneInfo, first: date,
                 end: date) -> dict[date, dict[str, Group]]:
    """Per local day in [first, end) and zone, the meters' consumption groups (what `aggregate` suppresses from)."""
    days: dict[date, dict[str, Group]] = defaultdict(dict)
    for r in store.consumption_groups(QUANTITY, _midnight(first, tz), _midnight(end, tz), kinds=s.kinds):
        day = r["day"].astimezone(tz).date()
        days[day][r["zone"]] = days[day].get(r["zone"], Group()) + Group(r["meters"], r["total"], r["top"])
    return days


def _next_period(p: date, step: str) -> date:
    if step == "1w":
        return p + timedelta(days=7)
    if step == "1M":
        return (p.replace(day=28) + timedelta(days=4)).replace(day=1)
    return p + timedelta(days=1)


@router.get("/aggregates/water-consumption", summary="Water consumption per zone (open, k-anonymous)",
            responses=errors(404, 422))
def water_consumption(
    request: Request,
    caller: Annotated[Caller, serves(OPEN, derived=True)],
    from_: Annotated[str | None, Query(alias="from", description="first local day, YYYY-MM-DD (default: a week "
                                       "before `to`)", json_schema_extra={"format": "date"})] = None,
    to: Annotated[str | None, Query(description="local day after the last, YYYY-MM-DD (default: the last day "
                                    "served)", json_schema_extra={"format": "date"})] = None,
    step: Annotated[str, Query(description=f"one of {', '.join(STEPS)}: a day or coarser (personal data are "
                               "never published finer)")] = "1d",
    zone: Annotated[str | None, Query(description="only this zone and the zones under it")] = None,
) -> Response:
    """Per zone (districts, DMAs… and the city, `zone: null`) and period whose first day is in [from, to): the
    volume consumed by the dwellings' and businesses' meters, published when at least `min_meters` meters
    contributed and none more than `dominance_share` of it; other cells are `suppressed` with the reason
    (`min_meters`, `dominance`, or `secondary`: withheld so that no published total minus others gives a
    suppressed one). A week or month is published when each of its days is."""
    return JSONResponse(consumption(request.app.state.store, request.app.state.settings, from_, to, step, zone))


def consumption(store: Any, settings: Any, from_: str | None, to: str | None, step: str = "1d",
                zone: str | None = None) -> dict[str, Any]:
    """The open aggregate's answer (the route's body, also what `clapas export water-consumption` writes)."""
    s = _settings(settings)
    try:
        check_step(step)
    except RefusedStep as e:
        raise ApiError(422, f"query parameter 'step': {e}") from None
    tz_name = getattr(settings, "timezone", "Europe/Paris") or "Europe/Paris"
    tz = ZoneInfo(tz_name)
    last = last_day_served(s, tz)
    end = _date(to, "to") or last + timedelta(days=1)
    start = _date(from_, "from") or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ApiError(422, "query parameter 'from': must be before 'to'")
    first = period_of(start, step)
    if first < start:
        first = _next_period(first, step)
    periods = []
    p = first
    while p < end:
        periods.append(p)
        p = _next_period(p, step)
    days_end = min(_next_period(periods[-1], step) if periods else first, last + timedelta(days=1))
    if (days_end - first).days > s.max_days:
        raise ApiError(422, f"at most {s.max_days} days per request")
    zones = store.zones()
    tree = ZoneTree((z["id"], z.get("parent") or "") for z in zones)
    if zone and zone not in tree.parent:
        raise ApiError(404, f"unknown zone {zone!r} (see /api/v1/zones)")
    days = daily_groups(store, s, tz, first, days_end) if periods and days_end > first else {}
    cells = [c for c in aggregate(tree, days, step, s) if c.period in set(periods)]
    shown = set(tree.subtree(zone)) if zone else set(tree.order)
    with_data = {c.zone for c in cells if c.status != EMPTY}
    names = {z["id"]: z for z in zones}
    out: list[dict[str, Any]] = []
    for c in cells:
        if c.zone not in shown or c.zone not in with_data:
            continue
        z = names.get(c.zone, {})
        row: dict[str, Any] = {"zone": c.zone if c.zone != ROOT else None, "name": z.get("name", "city"),
                               "kind": z.get("kind", "city"), "parent": tree.parent.get(c.zone) or None,
                               "period": c.period.isoformat(),
                               "complete": _next_period(c.period, step) <= last + timedelta(days=1),
                               "status": c.status}
        if c.status == PUBLISHED:
            row.update({"volume_m3": round(c.total, 3), "meter_days": c.meter_days,
                        "mean_per_meter_day_m3": round(c.total / c.meter_days, 4)})
            if c.meters is not None:
                row["meters"] = c.meters
        elif c.reason:
            row["reason"] = c.reason
        out.append(row)
    return {
        "quantity": "water consumption", "unit": "m3", "step": step, "timezone": tz_name,
        "from": first.isoformat(), "to": end.isoformat(), "last_day_served": last.isoformat(),
        "rules": {"min_meters": s.min_meters, "dominance_share": s.dominance_share,
                  "sources": "décret n° 2020-196 (10 delivery points per aggregate); INSEE dominance rule (85 %); "
                             "CNIL: daily data by default (../shared/domain-rules.md §8.2, §8.3)"},
        "cells": out,
    }
