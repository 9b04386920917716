"""Environment routes: what the city publishes on air quality, heat and floods, read from the store.

Each route is one report of `clapas.reports` (bulk reads, no per-device queries), over the store as the caller may
read it (`CallerView`: a sensor of a class the caller may not read is left out; 403 when all are). Settings come
from the app's `Settings` sections (`air`, `heat`, `islands`, `flood`), their defaults when a section is absent.
Days are the city's local days (`YYYY-MM-DD`, default today); a malformed day answers 400.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.charter import CallerView
from clapas.api.errors import ApiError, errors
from clapas.api.rest import Mixed
from clapas.indices.air import AirQualitySettings
from clapas.indices.flood import FloodSettings
from clapas.indices.heat import HeatSettings, IslandSettings
from clapas.reports import air, flood, heat

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["environment"])

MAX_DAYS = 62  # heat status history: two months at most per request


def _section(request: Request, name: str, default: type) -> Any:
    """A settings section, or its defaults when the app's settings have none (older config files, tests)."""
    value = getattr(request.app.state.settings, name, None)
    return value if isinstance(value, default) else default()


def _timezone(request: Request) -> str:
    return getattr(request.app.state.settings, "timezone", "Europe/Paris") or "Europe/Paris"


def _day(raw: str | None, tz: str) -> date:
    if raw is None or raw.strip() == "":
        return datetime.now(UTC).astimezone(ZoneInfo(tz)).date()
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ApiError(400, f"query parameter 'day': not a date (YYYY-MM-DD): {raw!r}") from None


DayQuery = Annotated[str | None, Query(description="local day, YYYY-MM-DD (default: today)",
                                       json_schema_extra={"format": "date"})]


# air ------------------------------------------------------------------------------------------------------------
@router.get("/air/atmo", summary="ATMO index per zone (indicative)", responses=errors(400))
def air_atmo(request: Request, caller: Mixed, day: DayQuery = None) -> Response:
    """The day's ATMO index per zone with air-quality sensors (arrêté du 10 juillet 2020): index and label, or
    "Indisponible"; each pollutant's sub-index and aggregated value; sensors and completeness; the day before."""
    tz = _timezone(request)
    settings = _section(request, "air", AirQualitySettings)
    store = CallerView.of(request, caller)
    out = air.atmo_report(store, _day(day, tz), tz, settings)
    store.reported(request, "the air quality index")
    return JSONResponse(out)


@router.get("/air/eaqi", summary="Latest European air quality index per zone (indicative)")
def air_eaqi(request: Request, caller: Mixed) -> Response:
    """The legacy EEA index of the newest complete hour per zone (gases hourly, PM as 24 h running means)."""
    settings = _section(request, "air", AirQualitySettings)
    store = CallerView.of(request, caller)
    out = air.eaqi_report(store, timezone=_timezone(request), settings=settings)
    store.reported(request, "the air quality index")
    return JSONResponse(out)


# heat -----------------------------------------------------------------------------------------------------------
@router.get("/heat/status", summary="Heatwave status at the reference station(s)", responses=errors(422))
def heat_status(request: Request, caller: Mixed,
                days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="local days, today included")] = 7,
                ) -> Response:
    """Per day: Tn, Tx, IBMn, IBMx and the state (none, heat_peak, heatwave, extreme, unavailable) against the
    department's thresholds; the latest heat index and Humidex of each weather station. The official vigilance is
    Météo-France's."""
    store = CallerView.of(request, caller)
    out = heat.heat_status(store, days, settings=_section(request, "heat", HeatSettings))
    store.reported(request, "the heat status")
    return JSONResponse(out)


@router.get("/heat/islands", summary="Urban heat islands and park cool islands", responses=errors(400))
def heat_islands(request: Request, caller: Mixed, day: DayQuery = None) -> Response:
    """Urban heat-island intensity per district against the reference station, by day and by night; park
    cool-island intensity (surroundings − park) per park."""
    settings = _section(request, "islands", IslandSettings)
    store = CallerView.of(request, caller)
    out = heat.islands_report(store, _day(day, settings.timezone), settings)
    store.reported(request, "the heat islands")
    return JSONResponse(out)


@router.get("/heat/cool-refuges", summary="Parks ranked as cool refuges",
            responses={**errors(422), 200: {"content": {"application/json": {}, "text/csv": {}}}})
def cool_refuges(request: Request, caller: Mixed,
                 format: Annotated[Literal["json", "csv"], Query(description="JSON or CSV (to publish)")] = "json",
                 lookback_days: Annotated[int, Query(ge=1, le=365, description="how far back to look for the "
                                                     "current or last heatwave")] = heat.REFUGE_LOOKBACK_DAYS,
                 hot_days: Annotated[int, Query(ge=1, le=31, description="hot days used when there was no "
                                                "heatwave")] = heat.REFUGE_HOT_DAYS) -> Response:
    """Parks ranked by their cool-island intensity during the current or last heatwave (else the last hot days)."""
    store = CallerView.of(request, caller)
    report = heat.cool_refuges(store, heat=_section(request, "heat", HeatSettings),
                               islands=_section(request, "islands", IslandSettings),
                               lookback_days=lookback_days, hot_days=hot_days)
    store.reported(request, "the cool refuges")
    if format == "csv":
        return Response(heat.refuges_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="cool-refuges.csv"'})
    return JSONResponse(report)


# floods ---------------------------------------------------------------------------------------------------------
@router.get("/flood/rivers", summary="River levels and rain accumulations")
def flood_rivers(request: Request, caller: Mixed) -> Response:
    """Each river gauge's latest level, its yellow/orange/red thresholds, class and rise over 1 h and 3 h; each rain
    gauge's accumulations over 1, 3, 6, 12 and 24 h with their tiers."""
    store = CallerView.of(request, caller)
    out = flood.rivers_report(store, settings=_section(request, "flood", FloodSettings))
    store.reported(request, "the river levels")
    return JSONResponse(out)
