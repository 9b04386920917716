"""Museum climate routes: each room's conformity this month, and the monthly report (JSON or a CSV download).

Both read the store through `clapas.reports.museum` with the city's `[museum]` settings, as the caller may read it
(indoor climate is restricted by default: anonymous callers get 403); months are the city's local months. A bad
month is a 400 and an unknown room a 404, with a message that says what to send.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.charter import CallerView
from clapas.api.errors import ApiError, errors
from clapas.api.rest import Mixed
from clapas.indices.museum import MuseumSettings
from clapas.reports.museum import ReportError, RoomReport, monthly_report, parse_month, to_csv

ROOMS = "the museum rooms' climate"
router = APIRouter(prefix="/api/v1/museum", default_response_class=JSONResponse, tags=["museum"])


def _settings(request: Request) -> tuple[MuseumSettings, str]:
    s = request.app.state.settings
    return getattr(s, "museum", None) or MuseumSettings(), getattr(s, "timezone", "Europe/Paris")


def _summary(r: RoomReport) -> dict[str, object]:
    return {
        "room": r.room, "name": r.name, "climate_class": r.climate_class, "sensors": r.sensors,
        "completeness": r.completeness, "share_in_band_t": r.share_in_band_t,
        "share_in_band_rh": r.share_in_band_rh, "share_in_band_both": r.share_in_band_both,
        "band_t": r.band_t, "band_rh": r.band_rh, "breaches": len(r.breach_episodes), "breach_hours": r.breach_hours,
        "last_breach": r.breach_episodes[-1] if r.breach_episodes else None,
        "max_24h_range_rh": r.max_fluctuation_rh, "mould_risk_hours": r.mould_risk_hours,
    }


def _month(raw: str | None, tz: str) -> date:
    if not raw:
        return datetime.now(UTC).astimezone(ZoneInfo(tz)).date().replace(day=1)
    try:
        return parse_month(raw)
    except ReportError as e:
        raise ApiError(400, f"query parameter 'month': {e}") from None


@router.get("/rooms", summary="Each museum room's conformity this month", responses=errors(400))
def rooms(request: Request, caller: Mixed,
          month: Annotated[str | None, Query(description="YYYY-MM; default: the current local month")] = None,
          ) -> Response:
    """Per room (zones of kind `museum_room`): its class, the share of the month's time in band so far, its
    breaches, largest 24-hour RH range and mould-risk hours (the EN 15757 band is in the monthly report)."""
    settings, tz = _settings(request)
    first = _month(month, tz)
    view = CallerView.of(request, caller)
    reports = monthly_report(view, first, settings=settings, timezone=tz, historic=False)
    view.reported(request, ROOMS)
    return JSONResponse({"month": f"{first:%Y-%m}", "rooms": [_summary(r) for r in reports]})


@router.get("/report", summary="A month's conformity report per room", responses={
    **errors(400, 404), 200: {"content": {"application/json": {}, "text/csv": {}}}})
def report(
    request: Request,
    caller: Mixed,
    month: Annotated[str, Query(description="the city's local month, YYYY-MM", examples=["2026-06"])],
    room: Annotated[list[str] | None, Query(description="only this room (zone id); repeatable")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv (a download)")] = "json",
) -> Response:
    """Share of time in band (T, RH, both), breach episodes (start, end, peak, duration), largest 24-hour
    fluctuations, mould-risk hours, data completeness and sensor count, and the EN 15757 historic band when the
    room has a year of data."""
    settings, tz = _settings(request)
    if not month.strip():
        raise ApiError(400, "query parameter 'month': expected YYYY-MM, e.g. 2026-06")
    first = _month(month, tz)
    view = CallerView.of(request, caller)
    try:
        reports = monthly_report(view, first, room or None, settings, tz)
    except ReportError as e:
        raise ApiError(404, str(e)) from None
    view.reported(request, ROOMS)
    if format == "csv":
        name = f"museum-report-{first:%Y-%m}" + (f"-{room[0]}" if room and len(room) == 1 else "") + ".csv"
        return Response(to_csv(reports), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return JSONResponse({"month": f"{first:%Y-%m}", "rooms": reports})
