"""Mobility routes (issue 12): bike-share systems and stations (state now, KPIs and rankings, episodes), and the
counter observatory (series with quality flags, national-schema CSV, yearly figures).

Every route reads the store through the caller's view (`CallerView`): bike stations, feeds and counters are open
by default (§8.9), and a city that classes them otherwise is obeyed. Settings: `[bikeshare]`, `[counters]`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.charter import CallerView
from clapas.api.errors import ApiError, errors
from clapas.api.rest import Mixed
from clapas.indices.bikeshare import BikeShareSettings
from clapas.indices.counters import CounterSettings
from clapas.reports import mobility as rep

router = APIRouter(prefix="/api/v1/mobility", default_response_class=JSONResponse, tags=["mobility"])
MAX_SPAN = timedelta(days=366)
WHAT = "mobility: bike share and counters"


def _settings(request: Request) -> tuple[BikeShareSettings, CounterSettings, str]:
    s = request.app.state.settings
    return (getattr(s, "bikeshare", None) or BikeShareSettings(), getattr(s, "counters", None) or CounterSettings(),
            getattr(s, "timezone", "Europe/Paris"))


def _when(raw: str | None, name: str, default: datetime) -> datetime:
    if not raw:
        return default
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r}: expected an ISO 8601 time, e.g. 2026-06-01T00:00:00Z") \
            from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _span(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    b = _when(end, "end", now)
    a = _when(start, "start", b - timedelta(days=1))
    if not a < b or b - a > MAX_SPAN:
        raise ApiError(400, "start must be before end, at most 366 days apart")
    return a, b


Start = Annotated[str | None, Query(description="ISO 8601 (default: a day before end)")]
End = Annotated[str | None, Query(description="ISO 8601 (default: now)")]


@router.get("/systems", summary="GBFS systems: last poll, failures, feed age")
def systems(request: Request, caller: Mixed) -> Response:
    view = CallerView.of(request, caller)
    out = rep.systems(view, datetime.now(UTC))
    view.reported(request, WHAT)
    return JSONResponse({"systems": out})


@router.get("/stations", summary="Bike-share stations and their state now (empty, full, ok, closed, unknown)")
def stations(request: Request, caller: Mixed,
             at: Annotated[str | None, Query(description="ISO 8601 (default: now)")] = None) -> Response:
    """A station's last poll is held up to max(2·ttl, 15 min) (§6.5); older, its state is `unknown`."""
    s, _, _ = _settings(request)
    view = CallerView.of(request, caller)
    out = rep.station_states(view, _when(at, "at", datetime.now(UTC)), s)
    view.reported(request, WHAT)
    return JSONResponse({"stations": out})


@router.get("/stations/kpis", summary="Station KPIs over a period, worst empty share first", responses=errors(400))
def station_kpis(request: Request, caller: Mixed, start: Start = None, end: End = None,
                 episodes: Annotated[bool, Query(description="include each station's episodes")] = False
                 ) -> Response:
    """Empty and full shares (all day and peak), outage episodes, contract violations (and those exempted by the
    nearest station), lower-bound departures and arrivals, rebalancing candidates."""
    s, _, tz = _settings(request)
    a, b = _span(start, end)
    view = CallerView.of(request, caller)
    out = rep.station_kpis(view, a, b, s, tz, with_episodes=episodes)
    view.reported(request, WHAT)
    return JSONResponse({"start": a.isoformat(), "end": b.isoformat(), "stations": out,
                         "full_ranking": [r["eui"] for r in sorted(out, key=lambda r: -(r["full_share"] or 0))]})


@router.get("/free-floating", summary="Free-floating vehicles available per zone over a period",
            responses=errors(400))
def free_floating(request: Request, caller: Mixed, start: Start = None, end: End = None,
                  resolution: Annotated[Literal["raw", "1h", "1d"], Query()] = "1h") -> Response:
    """Per GBFS system and zone (`""`: outside every zone), the vehicles available to rent: each poll (`raw`) or
    the mean, min and max per hour or day; a zone emptied reads 0."""
    a, b = _span(start, end)
    view = CallerView.of(request, caller)
    out = rep.free_floating(view, a, b, resolution)
    view.reported(request, WHAT)
    return JSONResponse({"start": a.isoformat(), "end": b.isoformat(), "resolution": resolution, "zones": out})


@router.get("/counters", summary="Traffic and bike counters")
def counter_list(request: Request, caller: Mixed) -> Response:
    view = CallerView.of(request, caller)
    out = [{"eui": d["eui"], "name": d.get("name", ""), "kind": d.get("kind"), "zone": d.get("zone", ""),
            "lat": d.get("lat"), "lon": d.get("lon")} for d in rep.counters(view)]
    view.reported(request, WHAT)
    return JSONResponse({"counters": out})


@router.get("/counters/{eui}/series", summary="A counter's hourly or daily counts with quality flags",
            responses={**errors(400, 404), 200: {"content": {"application/json": {}, "text/csv": {}}}})
def counter_series(request: Request, caller: Mixed, eui: str, start: Start = None, end: End = None,
                   resolution: Annotated[Literal["1h", "1d"], Query()] = "1h",
                   format: Annotated[Literal["json", "csv"], Query(description="csv: national schema")] = "json",
                   ) -> Response:
    """Raw counts per direction (in, out, total) with QARTOD flags beside them (1 PASS, 3 SUSPECT, 4 FAIL,
    9 MISSING); a missing slot has no count, never 0."""
    _, c, tz = _settings(request)
    a, b = _span(start, end)
    view = CallerView.of(request, caller)
    out = rep.counter_series(view, eui.lower(), a, b, resolution, c, tz)
    if out is None:
        raise ApiError(404, "no such counter (see /api/v1/mobility/counters)")
    view.reported(request, WHAT)
    if format == "csv":
        return Response(rep.national_csv(out), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="counts-{out["eui"]}.csv"'})
    return JSONResponse(out)


@router.get("/counters/{eui}/observatory", summary="A counter's year: TMJA, TMJO, profiles, peaks",
            responses=errors(400, 404))
def counter_observatory(request: Request, caller: Mixed, eui: str,
                        year: Annotated[int, Query(ge=2000, le=2100, description="the local year")]) -> Response:
    """TMJA from complete months with the days used, TMJO (working days, French public holidays out), weekend
    mean, hourly and weekly profiles, morning and evening peak hours, year-on-year on a constant sample."""
    _, c, tz = _settings(request)
    view = CallerView.of(request, caller)
    out = rep.observatory(view, eui.lower(), year, c, tz)
    if out is None:
        raise ApiError(404, "no such counter (see /api/v1/mobility/counters)")
    view.reported(request, WHAT)
    return JSONResponse(out)
