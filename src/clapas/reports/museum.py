"""The monthly conformity report of museum rooms: each room against its target class, from the store.

Per room (a zone of kind `museum_room`; its value = the mean of its `indoor_climate` sensors on the detectors'
step, `indices.museum.room_series`): the class and its bands, the share of the month's time in band (T, RH, both),
the breach episodes (start, end, peak, duration; debounced as the detector does), the largest 24-hour fluctuations
(on the trailing one-hour mean, as `museum.fluctuation`), the mould-risk hours, the data completeness and the sensor
count, and the EN 15757 historic-climate band when the room has a year of data (otherwise "not enough history").

ASHRAE bands follow the set points the detector uses (`indices.museum.set_points`): the room's own mean over the
previous days, from hourly values read back up to a year. Months are the city's local months. An episode running
across the month's start or end is cut there (the report speaks of its month only). Exports: JSON and CSV (one row
per room; the episodes in one text column).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from clapas.indices.museum import (
    DAY_S,
    HOUR_S,
    ClimateClass,
    HistoricBand,
    MuseumSettings,
    Reading,
    band_limits,
    breach_episodes,
    centred_moving_average,
    class_limits,
    climate_class,
    in_band,
    max_fluctuation,
    mould_risk_hours,
    percentile,
    room_series,
    set_points,
)
from clapas.reports.common import local_midnight
from clapas.store.base import Store

ROOM_KIND = "museum_room"
SENSOR_KIND = "indoor_climate"
ALL = 1_000_000  # `Store.devices` pages; a room wants all its sensors
# EN 15757 wants at least a year of "historic climate" [U]: the room's hourly values must reach back 365 days
# before the month's end and cover this share of the year's hours (design, the 75 % validity habit of §4).
HISTORY_DAYS = 365
HISTORY_MIN_COVERAGE = 0.75
NOT_ENOUGH_HISTORY = "not enough history"


class ReportError(ValueError):
    """A request the report cannot answer (bad month, unknown room): the message says why."""


class BreachEpisode(msgspec.Struct, frozen=True, kw_only=True):
    quantity: str  # temperature or humidity
    direction: str  # high or low
    start: datetime
    end: datetime
    duration_h: float
    peak_time: datetime
    peak_value: float
    peak_excess: float  # beyond the band, in the quantity's unit


class Fluctuation24h(msgspec.Struct, frozen=True, kw_only=True):
    range: float
    limit: float | None
    exceeded: bool
    min_time: datetime
    max_time: datetime


class HistoricClimate(msgspec.Struct, frozen=True, kw_only=True):
    """EN 15757 figures over the year ending with the month: the percentiles of the fluctuations around the
    30-day centred moving average, the band offsets after the ±10 %RH floor, and the month's share inside it."""

    quantity: str
    p_low: float
    p_high: float
    lower: float
    upper: float
    floor_applied: bool
    share_in_band: float | None  # over the month's hours that have a centred average
    hours_judged: int


class RoomReport(msgspec.Struct, kw_only=True):
    room: str
    name: str
    month: str  # YYYY-MM
    climate_class: str
    class_source: str
    sensors: int  # in the registry
    sensors_reporting: int  # with at least one reading in the month
    completeness: float  # share of the month's steps with a room value of both T and RH
    completeness_t: float
    completeness_rh: float
    band_t: list[float | None] | None  # the band on the month's first day ([low, high]; None: no limit)
    band_rh: list[float | None] | None
    share_in_band_t: float | None
    share_in_band_rh: float | None
    share_in_band_both: float | None
    mean_t: float | None
    mean_rh: float | None
    breach_episodes: list[BreachEpisode]
    breach_hours: float
    max_fluctuation_rh: Fluctuation24h | None
    max_fluctuation_t: Fluctuation24h | None
    mould_risk_hours: float  # hours in sustained runs above the mould threshold
    hours_above_mould_rh: float
    en15757: list[HistoricClimate] | None
    en15757_note: str


# --- inputs --------------------------------------------------------------------------------------------------------


def parse_month(month: date | str) -> date:
    """`2026-06` (or a date) → the month's first day; ReportError with a readable message otherwise."""
    if isinstance(month, datetime):
        return month.date().replace(day=1)
    if isinstance(month, date):
        return month.replace(day=1)
    text = str(month).strip()
    try:
        y, m = text.split("-")
        if len(y) != 4 or len(m) != 2:
            raise ValueError
        return date(int(y), int(m), 1)
    except ValueError:
        raise ReportError(f"month {month!r}: expected YYYY-MM, e.g. 2026-06") from None


def month_bounds(first: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of the local month's start and end."""
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return local_midnight(first.replace(day=1), tz), local_midnight(nxt, tz)


def _epoch(t: Any) -> float:
    if isinstance(t, datetime):
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
    return float(t)


def _series(store: Store, quantity: str, euis: Sequence[str], start: datetime, end: datetime,
            resolution: str) -> dict[str, list[Reading]]:
    """Each sensor's readings (raw) or hourly means, as (epoch, value)."""
    out: dict[str, list[Reading]] = {e: [] for e in euis}
    value = "value" if resolution == "raw" else "mean"
    for r in store.series(quantity, start, end, euis=list(euis), resolution=resolution):
        v = r[value]
        if v is not None and math.isfinite(v):
            out[r["eui"]].append((_epoch(r["time"]), float(v)))
    for rs in out.values():
        rs.sort()
    return out


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _share(flags: Iterable[bool]) -> float | None:
    xs = list(flags)
    return round(sum(xs) / len(xs), 4) if xs else None


def trailing_mean(readings: Sequence[Reading], span_s: float) -> list[Reading]:
    """Each value replaced by the mean of the values of the last `span_s` (the detector's fluctuation smoothing)."""
    out: list[Reading] = []
    lo = 0
    total = 0.0
    for i, (t, v) in enumerate(readings):
        total += v
        while readings[lo][0] <= t - span_s:
            total -= readings[lo][1]
            lo += 1
        out.append((t, total / (i - lo + 1)))
    return out


# --- the report ----------------------------------------------------------------------------------------------------


def rooms_of(store: Store, rooms: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The museum rooms asked (all by default), as store zones; ReportError names an unknown one."""
    zones = {z["id"]: z for z in store.zones() if z.get("kind") == ROOM_KIND}
    if not rooms:
        return [zones[k] for k in sorted(zones)]
    missing = [r for r in rooms if r not in zones]
    if missing:
        raise ReportError(f"unknown museum room {', '.join(map(repr, missing))}: the rooms are zones of kind "
                          f"{ROOM_KIND} ({', '.join(sorted(zones)) or 'none in the registry'})")
    return [zones[r] for r in rooms]


def monthly_report(store: Store, month: date | str, rooms: Sequence[str] | None = None,
                   settings: MuseumSettings | None = None, timezone: str | None = None,
                   historic: bool = True) -> list[RoomReport]:
    """One `RoomReport` per room for a local month. `historic=False` skips the year of history the EN 15757 band
    needs (a cheaper summary, e.g. for a dashboard)."""
    s = settings or MuseumSettings()
    first = parse_month(month)
    tz = ZoneInfo(timezone or getattr(store, "timezone", None) or "Europe/Paris")
    start, end = month_bounds(first, tz)
    return [_room_report(store, z, first, start, end, s, historic) for z in rooms_of(store, rooms)]


def _room_report(store: Store, zone: dict[str, Any], first: date, start: datetime, end: datetime,
                 s: MuseumSettings, historic: bool) -> RoomReport:
    room = zone["id"]
    props = zone.get("properties") or {}
    cls = s.class_of(room, str(props.get("climate_class") or "") or None)
    source = _class_source(s, room, str(props.get("climate_class") or ""))
    euis = sorted(d["eui"] for d in store.devices(kind=SENSOR_KIND, zone=room, limit=ALL))
    t0, t1 = start.timestamp(), end.timestamp()
    raw_t = _series(store, "air.temperature", euis, start, end, "raw")
    raw_rh = _series(store, "air.humidity", euis, start, end, "raw")
    temp = room_series(list(raw_t.values()), t0, t1, s.step_s, s.sensor_stale_s)
    rh = room_series(list(raw_rh.values()), t0, t1, s.step_s, s.sensor_stale_s)
    steps = max(1, math.ceil((t1 - t0) / s.step_s))

    # hourly history: the set points before each day (a year back, ASHRAE classes) and the EN 15757 year (ending
    # with the month, its centred average reaching 15 days past it)
    hist_t: list[Reading] = []
    hist_rh: list[Reading] = []
    if historic or cls.rh_short_pm is not None or cls.t_short_pm_k is not None:
        h0 = start - timedelta(days=HISTORY_DAYS)
        h1 = end + timedelta(days=s.ma_days / 2) if historic else end
        hs_t = _series(store, "air.temperature", euis, h0, h1, "1h")
        hs_rh = _series(store, "air.humidity", euis, h0, h1, "1h")
        hist_t = room_series(list(hs_t.values()), h0.timestamp(), h1.timestamp(), HOUR_S, s.sensor_stale_s)
        hist_rh = room_series(list(hs_rh.values()), h0.timestamp(), h1.timestamp(), HOUR_S, s.sensor_stale_s)
    limits = _daily_limits(cls, hist_t, hist_rh, t0, t1, s)

    def lim(q: int, t: float) -> tuple[float | None, float | None]:
        return limits[int(t // DAY_S)][q]

    t_ok = {t: in_band(v, lim(0, t)) for t, v in temp}
    rh_ok = {t: in_band(v, lim(1, t)) for t, v in rh}
    episodes = [
        BreachEpisode(quantity=q, direction=e.direction, start=_utc(e.start), end=_utc(e.end),
                      duration_h=round(e.duration_s / HOUR_S, 2), peak_time=_utc(e.peak_time),
                      peak_value=round(e.peak_value, 2), peak_excess=round(e.peak_excess, 2))
        for q, series, qi in (("temperature", temp, 0), ("humidity", rh, 1))
        for e in breach_episodes(series, lambda _i, t, qi=qi: lim(qi, t), s)]
    episodes.sort(key=lambda e: e.start)
    first_day = limits[int(t0 // DAY_S)]
    hist_note, en = NOT_ENOUGH_HISTORY, None
    if historic:
        en, hist_note = _historic(hist_t, hist_rh, t0, t1, s)
    return RoomReport(
        room=room, name=zone.get("name") or room, month=first.strftime("%Y-%m"), climate_class=cls.name,
        class_source=source, sensors=len(euis),
        sensors_reporting=len({e for e in euis if raw_t[e] or raw_rh[e]}),
        completeness=round(len(t_ok.keys() & rh_ok.keys()) / steps, 4),
        completeness_t=round(len(temp) / steps, 4), completeness_rh=round(len(rh) / steps, 4),
        band_t=_rounded(first_day[0]), band_rh=_rounded(first_day[1]),
        share_in_band_t=_share(t_ok.values()), share_in_band_rh=_share(rh_ok.values()),
        share_in_band_both=_share(t_ok[t] and rh_ok[t] for t in t_ok.keys() & rh_ok.keys()),
        mean_t=round(sum(v for _, v in temp) / len(temp), 2) if temp else None,
        mean_rh=round(sum(v for _, v in rh) / len(rh), 2) if rh else None,
        breach_episodes=episodes, breach_hours=round(sum(e.duration_h for e in episodes), 2),
        max_fluctuation_rh=_fluct(rh, cls.rh_range_limit(), s),
        max_fluctuation_t=_fluct(temp, cls.t_range_limit(), s),
        mould_risk_hours=round(mould_risk_hours(rh, s), 2),
        hours_above_mould_rh=round(sum(s.step_s for _, v in rh if v > s.mould_rh) / HOUR_S, 2),
        en15757=en, en15757_note=hist_note if historic else "not computed (summary)")


def _class_source(s: MuseumSettings, room: str, zone_class: str) -> str:
    if room in s.rooms:
        return "settings"
    if not zone_class:
        return "default class"
    try:
        climate_class(zone_class)
    except ValueError:
        return f"default class (zone property climate_class {zone_class!r} is unknown)"
    return "zone property climate_class"


def _rounded(lim: tuple[float | None, float | None]) -> list[float | None] | None:
    return None if lim == (None, None) else [None if x is None else round(x, 2) for x in lim]


def _daily_limits(cls: ClimateClass, hist_t: Sequence[Reading], hist_rh: Sequence[Reading], t0: float, t1: float,
                  s: MuseumSettings) -> dict[int, tuple[tuple[float | None, float | None],
                                                        tuple[float | None, float | None]]]:
    """Each UTC day of the month → its (T, RH) bands, from the sums of the hourly values of the earlier days."""
    sums: dict[int, list[float]] = {}
    for i, series in ((1, hist_t), (3, hist_rh)):
        for t, v in series:
            d = sums.setdefault(int(t // DAY_S), [float(int(t // DAY_S)), 0.0, 0.0, 0.0, 0.0])
            d[i] += v
            d[i + 1] += 1
    days = [sums[k] for k in sorted(sums)]
    return {day: class_limits(cls, set_points(days, day, s))
            for day in range(int(t0 // DAY_S), int((t1 - 1) // DAY_S) + 1)}


def _fluct(series: Sequence[Reading], limit: float | None, s: MuseumSettings) -> Fluctuation24h | None:
    f = max_fluctuation(trailing_mean(series, HOUR_S), s.fluctuation_window_s) if series else None
    if f is None:
        return None
    return Fluctuation24h(range=round(f.range, 2), limit=limit, exceeded=limit is not None and f.range > limit,
                          min_time=_utc(f.min_time), max_time=_utc(f.max_time))


def _historic(hist_t: list[Reading], hist_rh: list[Reading], t0: float, t1: float,
              s: MuseumSettings) -> tuple[list[HistoricClimate] | None, str]:
    """EN 15757 over the year ending at the month's end, when the room has that year: the percentiles come from
    the year's fluctuations (the centred average may use the 15 days after it, when they exist); the month's hours
    are judged against the band around their own centred average, within the absolute limits."""
    year0 = t1 - HISTORY_DAYS * DAY_S
    in_year = [r for r in hist_rh if year0 <= r[0] < t1]
    if not in_year or in_year[0][0] > year0 + DAY_S:
        days = (t1 - in_year[0][0]) / DAY_S if in_year else 0.0
        return None, f"{NOT_ENOUGH_HISTORY}: {days:.0f} days of data, EN 15757 needs {HISTORY_DAYS}"
    coverage = len(in_year) / (HISTORY_DAYS * 24)
    if coverage < HISTORY_MIN_COVERAGE:
        return None, (f"{NOT_ENOUGH_HISTORY}: {coverage:.0%} of the year's hours have data, EN 15757 needs "
                      f"{HISTORY_MIN_COVERAGE:.0%}")
    out = []
    t_settings = msgspec.structs.replace(s, min_half_band=None, abs_min=None, abs_max=None)  # %RH-only rules
    for q, hist, qs in (("humidity", hist_rh, s), ("temperature", hist_t, t_settings)):
        ma = centred_moving_average(hist, qs.ma_days, qs.require_full_window)
        res = [v - m for (t, v), m in zip(hist, ma, strict=True) if m is not None and year0 <= t < t1]
        if not res:
            continue
        lo, hi = percentile(res, qs.p_low), percentile(res, qs.p_high)
        lower, upper = lo, hi
        if qs.min_half_band is not None:
            lower, upper = min(lo, -qs.min_half_band), max(hi, qs.min_half_band)
        band = HistoricBand(lo, hi, lower, upper, (lower, upper) != (lo, hi), [], [])
        flags = [in_band(v, band_limits(m, band, qs)) for (t, v), m in zip(hist, ma, strict=True)
                 if t0 <= t < t1 and m is not None]
        out.append(HistoricClimate(quantity=q, p_low=round(lo, 2), p_high=round(hi, 2), lower=round(lower, 2),
                                   upper=round(upper, 2), floor_applied=band.floor_applied,
                                   share_in_band=_share(flags), hours_judged=len(flags)))
    if not out:
        return None, f"{NOT_ENOUGH_HISTORY}: no hour has a full 30-day centred window"
    return out, "EN 15757 band over the year ending with the month"


# --- exports -------------------------------------------------------------------------------------------------------


def to_json(reports: Sequence[RoomReport]) -> bytes:
    return msgspec.json.encode({"rooms": list(reports)})


CSV_COLUMNS = ("month", "room", "name", "climate_class", "class_source", "sensors", "sensors_reporting",
               "completeness", "completeness_t", "completeness_rh", "band_t_low", "band_t_high", "band_rh_low",
               "band_rh_high", "share_in_band_t", "share_in_band_rh", "share_in_band_both", "mean_t", "mean_rh",
               "breach_count", "breach_hours", "max_24h_range_rh", "max_24h_range_rh_limit", "max_24h_range_t",
               "max_24h_range_t_limit", "mould_risk_hours", "hours_above_mould_rh", "en15757_rh_lower",
               "en15757_rh_upper", "en15757_rh_share_in_band", "en15757_note", "breach_episodes")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def csv_row(r: RoomReport) -> dict[str, Any]:
    def band(b: list[float | None] | None, i: int) -> Any:
        return "" if b is None or b[i] is None else b[i]

    en_rh = next((h for h in r.en15757 or () if h.quantity == "humidity"), None)
    fr, ft = r.max_fluctuation_rh, r.max_fluctuation_t
    return {
        "month": r.month, "room": r.room, "name": r.name, "climate_class": r.climate_class,
        "class_source": r.class_source, "sensors": r.sensors, "sensors_reporting": r.sensors_reporting,
        "completeness": r.completeness, "completeness_t": r.completeness_t, "completeness_rh": r.completeness_rh,
        "band_t_low": band(r.band_t, 0), "band_t_high": band(r.band_t, 1), "band_rh_low": band(r.band_rh, 0),
        "band_rh_high": band(r.band_rh, 1), "share_in_band_t": _blank(r.share_in_band_t),
        "share_in_band_rh": _blank(r.share_in_band_rh), "share_in_band_both": _blank(r.share_in_band_both),
        "mean_t": _blank(r.mean_t), "mean_rh": _blank(r.mean_rh), "breach_count": len(r.breach_episodes),
        "breach_hours": r.breach_hours, "max_24h_range_rh": fr.range if fr else "",
        "max_24h_range_rh_limit": _blank(fr.limit if fr else None), "max_24h_range_t": ft.range if ft else "",
        "max_24h_range_t_limit": _blank(ft.limit if ft else None), "mould_risk_hours": r.mould_risk_hours,
        "hours_above_mould_rh": r.hours_above_mould_rh,
        "en15757_rh_lower": en_rh.lower if en_rh else "", "en15757_rh_upper": en_rh.upper if en_rh else "",
        "en15757_rh_share_in_band": _blank(en_rh.share_in_band if en_rh else None), "en15757_note": r.en15757_note,
        "breach_episodes": "; ".join(
            f"{e.quantity} {e.direction} {_iso(e.start)}/{_iso(e.end)} peak {e.peak_value:g} at {_iso(e.peak_time)} "
            f"({e.duration_h:g} h)" for e in r.breach_episodes),
    }


def _blank(v: Any) -> Any:
    return "" if v is None else v


def to_csv(reports: Sequence[RoomReport]) -> str:
    """One row per room; the episodes as `quantity direction start/end peak value at time (hours)`, `; `-separated."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in reports:
        w.writerow(csv_row(r))
    return buf.getvalue()
