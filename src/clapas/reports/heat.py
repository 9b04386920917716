"""Heat as the city sees it: heatwave status at the reference station(s), heat stress per weather station, urban
heat islands per district, park cool islands and the ranking of parks as cool refuges.

Computed from hourly buckets of `Store.series` (min, max, mean per UTC hour) with the pure functions of
`clapas.indices.heat`. Tn/Tx from hourly minima and maxima are exact (windows start on whole hours) and the
coverage rule counts the same distinct hours; island intensities pair hourly means, as the protocol asks.

The reference station(s): weather stations in zones of kind `rural` (the city's peripheral station). The official
heatwave vigilance is Météo-France's; these reports say what the city's own sensors show, and say so.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clapas.indices.heat import (
    DEFAULT_HEAT,
    DEFAULT_ISLANDS,
    EXTREME,
    HEATWAVE,
    NONE,
    PEAK,
    UNAVAILABLE,
    DailyExtremes,
    HeatDay,
    HeatSettings,
    IslandIntensity,
    IslandSettings,
    Reading,
    c_to_f,
    daily_extremes,
    heat_index_c,
    heat_index_category,
    heat_states,
    humidex_category,
    humidex_from_rh,
    park_cool_island,
    uhi_intensity,
)
from clapas.reports.common import DAY, HOUR, by_eui, devices_of, local_midnight, round_or_none, zones_by_id
from clapas.store.base import Store

KIND = "weather_station"
REFERENCE_ZONE_KIND = "rural"
DISTRICT_ZONE_KIND = "dma"
PARK_ZONE_KIND = "park"
STATEMENT = ("La vigilance canicule officielle est celle de Météo-France : ces états disent ce que montrent les "
             "capteurs de la ville, rien de plus.")
# States from mildest to gravest: the city-wide summary is the gravest state any reference station shows.
SEVERITY = {UNAVAILABLE: 0, NONE: 1, PEAK: 2, HEATWAVE: 3, EXTREME: 4}
HOT_STATES = (PEAK, HEATWAVE, EXTREME)
# Heat stress: the newest paired temperature and humidity of each station, if no older than this (design: a few
# 10-minute uplinks; an older pair is not "the current" heat stress)
STRESS_LOOKBACK = 3 * HOUR
# Cool refuges: how far back to look for the current or last heatwave, and how many hot days to use when there was
# none (design defaults; the API takes both as parameters)
REFUGE_LOOKBACK_DAYS = 30
REFUGE_HOT_DAYS = 3


# --- reading the store ---------------------------------------------------------------------------------------------


def _stations(store: Store) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    zones = zones_by_id(store)
    return [d for d in devices_of(store, KIND) if d.get("zone")], zones


def reference_stations(devices: Iterable[dict[str, Any]], zones: Mapping[str, dict[str, Any]]) -> list[dict]:
    return [d for d in devices if (zones.get(d["zone"]) or {}).get("kind") == REFERENCE_ZONE_KIND]


def _hourly(store: Store, euis: list[str], start: datetime, end: datetime) -> dict[str, list[dict[str, Any]]]:
    """Hourly temperature buckets {time, mean, min, max, count} per station, one bulk read."""
    return by_eui(store.series("air.temperature", start, end, euis=euis, resolution="1h"))


def _extreme_readings(buckets: list[dict[str, Any]]) -> list[Reading]:
    """Each hour's minimum and maximum as readings at the hour's start: what Tn/Tx and their coverage need."""
    out: list[Reading] = []
    for b in buckets:
        t = b["time"].timestamp()
        out.append((t, b["min"]))
        out.append((t, b["max"]))
    return out


def _mean_readings(buckets: list[dict[str, Any]]) -> dict[int, float]:
    """Hour (epoch hours) → hourly mean."""
    return {int(b["time"].timestamp() // 3600): b["mean"] for b in buckets}


def _group_mean(series: Iterable[dict[int, float]]) -> list[Reading]:
    """Several stations' hourly means → the group's hourly mean (one value per hour, whichever stations have it)."""
    acc: dict[int, list[float]] = defaultdict(list)
    for s in series:
        for h, v in s.items():
            acc[h].append(v)
    return [(h * 3600.0, sum(v) / len(v)) for h, v in sorted(acc.items())]


# --- heatwave status -----------------------------------------------------------------------------------------------


def _day_row(d: HeatDay) -> dict[str, Any]:
    return {"day": d.day, "state": d.state, "tn": round_or_none(d.tn), "tx": round_or_none(d.tx),
            "ibmn": round_or_none(d.ibmn), "ibmx": round_or_none(d.ibmx), "window": list(d.window),
            "run_days": d.run_days}


def station_heat_days(store: Store, stations: list[dict[str, Any]], first: date, last: date,
                      settings: HeatSettings = DEFAULT_HEAT) -> dict[str, list[HeatDay]]:
    """Each station's heat state for the local days first..last (the IBM window's earlier days are read too)."""
    tz = ZoneInfo(settings.timezone)
    margin = settings.ibm_days + 1  # the IBM of `first` needs the days before it; Tn/Tx windows may be shifted
    start = local_midnight(first - margin * DAY, tz)
    end = local_midnight(last + (settings.ibm_days + 1) * DAY, tz)
    hourly = _hourly(store, [s["eui"] for s in stations], start, end)
    out = {}
    for s in stations:
        daily = daily_extremes(_extreme_readings(hourly.get(s["eui"], [])), settings)
        for d in (first + i * DAY for i in range((last - first).days + 1)):
            daily.setdefault(d, DailyExtremes(d, None, None))  # a day without readings is "unavailable"
        out[s["eui"]] = [h for h in heat_states(daily, settings) if first <= h.day <= last]
    return out


def heat_stress(store: Store, now: datetime, stations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest heat index (NWS) and Humidex of each station, from its latest paired temperature and humidity."""
    euis = [s["eui"] for s in stations]
    start = now - STRESS_LOOKBACK
    temps = by_eui(store.series("air.temperature", start, now + timedelta(seconds=1), euis=euis))
    hums = by_eui(store.series("air.humidity", start, now + timedelta(seconds=1), euis=euis))
    out = []
    for s in stations:
        rh_at = {r["time"]: r["value"] for r in hums.get(s["eui"], [])}
        pairs = [(r["time"], r["value"], rh_at[r["time"]]) for r in temps.get(s["eui"], []) if r["time"] in rh_at]
        if not pairs:
            continue
        t, temp, rh = pairs[-1]
        if not 0 < rh <= 100:
            continue
        hi = heat_index_c(temp, rh)
        hx = humidex_from_rh(temp, rh)
        out.append({"eui": s["eui"], "name": s.get("name") or s["eui"], "zone": s["zone"], "time": t,
                    "temperature": round(temp, 1), "humidity": round(rh, 1),
                    "heat_index": round(hi, 1), "heat_index_category": heat_index_category(c_to_f(hi)),
                    "humidex": round(hx, 1), "humidex_category": humidex_category(hx)})
    return out


def heat_status(store: Store, days: int = 7, now: datetime | None = None,
                settings: HeatSettings = DEFAULT_HEAT) -> dict[str, Any]:
    """The last `days` local days (today included) at each reference station, with the city-wide summary."""
    now = now or datetime.now(UTC)
    tz = ZoneInfo(settings.timezone)
    today = now.astimezone(tz).date()
    devices, zones = _stations(store)
    refs = reference_stations(devices, zones)
    per_station = station_heat_days(store, refs, today - (days - 1) * DAY, today, settings) if refs else {}
    th = settings.thresholds()
    stations = []
    for s in refs:
        rows = per_station.get(s["eui"], [])
        latest = next((h for h in reversed(rows) if h.state != UNAVAILABLE), None)
        stations.append({"eui": s["eui"], "name": s.get("name") or s["eui"], "zone": s["zone"],
                         "days": [_day_row(h) for h in rows],
                         "latest_available": _day_row(latest) if latest else None})

    def gravest(day: date) -> str:
        states = [h.state for rows in per_station.values() for h in rows if h.day == day]
        return max(states, key=SEVERITY.__getitem__, default=UNAVAILABLE)

    last_available = max((h.day for rows in per_station.values() for h in rows if h.state != UNAVAILABLE),
                         default=None)
    return {
        "today": today,
        "state": gravest(today),
        "latest_available": {"day": last_available, "state": gravest(last_available)} if last_available else None,
        "thresholds": {"department": th.code, "name": th.name, "ibmn": th.ibmn_c, "ibmx": th.ibmx_c,
                       "ibm_days": settings.ibm_days, "ibm_alignment": settings.ibm_alignment},
        "statement": STATEMENT,
        "official_vigilance": "Météo-France (vigilance.meteofrance.fr)",
        "stations": stations,
        "heat_stress": heat_stress(store, now, devices),
    }


# --- heat and cool islands -----------------------------------------------------------------------------------------


def _intensity(rows: list[IslandIntensity], days: set[date]) -> dict[str, Any]:
    """Day and night figures over the given days: hour-weighted mean, largest hourly difference, hours."""
    out: dict[str, Any] = {}
    for period in ("day", "night"):
        sel = [r for r in rows if r.period == period and r.day in days]
        hours = sum(r.hours for r in sel)
        out[period] = None if not sel else {
            "mean": round(sum(r.mean * r.hours for r in sel) / hours, 2),
            "max": round(max(r.max for r in sel), 2),
            "hours": hours,
        }
    return out


class _Islands:
    """Hourly means of every weather station over some days, grouped as the island reports need them."""

    def __init__(self, store: Store, first: date, last: date, settings: IslandSettings) -> None:
        tz = ZoneInfo(settings.timezone)
        devices, self.zones = _stations(store)
        # the night dated `last` ends the next morning
        hourly = _hourly(store, [d["eui"] for d in devices], local_midnight(first, tz),
                         local_midnight(last + 2 * DAY, tz))
        self.means = {eui: _mean_readings(rows) for eui, rows in hourly.items()}
        self.by_zone: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for d in devices:
            self.by_zone[d["zone"]].append(d)
        self.refs = reference_stations(devices, self.zones)
        self.reference = _group_mean(self.means.get(r["eui"], {}) for r in self.refs)
        self.settings = settings

    def group(self, stations: Iterable[dict[str, Any]]) -> list[Reading]:
        return _group_mean(self.means.get(s["eui"], {}) for s in stations)

    def zones_of(self, kind: str) -> list[str]:
        return sorted(z for z in self.by_zone if (self.zones.get(z) or {}).get("kind") == kind)

    def name(self, zone: str) -> str:
        return (self.zones.get(zone) or {}).get("name") or zone

    def park(self, zone: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        """A park's district, its stations, and its surroundings: the district's stations minus the park's."""
        district = (self.zones.get(zone) or {}).get("parent") or ""
        own = self.by_zone.get(zone, [])
        mine = {s["eui"] for s in own}
        around = [s for s in self.by_zone.get(district, []) if s["eui"] not in mine]
        return district, own, around


def islands_report(store: Store, day: date, settings: IslandSettings = DEFAULT_ISLANDS) -> dict[str, Any]:
    """Urban heat-island intensity per district (street stations − reference) and park cool-island intensity per
    park (surroundings − park) for the local day `day` and the night that begins that evening."""
    isl = _Islands(store, day, day, settings)
    days = {day}
    districts = []
    for zone in isl.zones_of(DISTRICT_ZONE_KIND):
        stations = isl.by_zone[zone]
        rows = uhi_intensity(isl.group(stations), isl.reference, settings) if isl.reference else []
        districts.append({"zone": zone, "name": isl.name(zone), "stations": len(stations), **_intensity(rows, days)})
    parks = []
    for zone in isl.zones_of(PARK_ZONE_KIND):
        district, own, around = isl.park(zone)
        rows = park_cool_island(isl.group(around), isl.group(own), settings) if around else []
        parks.append({"zone": zone, "name": isl.name(zone), "district": district, "stations": len(own),
                      "surrounding_stations": len(around), **_intensity(rows, days)})
    return {
        "day": day,
        "periods": {"day": f"{settings.day_start_hour:02d}:00–{settings.night_start_hour:02d}:00",
                    "night": f"{settings.night_start_hour:02d}:00–{settings.day_start_hour:02d}:00 (next morning)"},
        "reference": [{"eui": r["eui"], "name": r.get("name") or r["eui"], "zone": r["zone"]} for r in isl.refs],
        "districts": districts,
        "parks": parks,
    }


# --- cool refuges ------------------------------------------------------------------------------------------------


def refuge_days(store: Store, today: date, heat: HeatSettings = DEFAULT_HEAT,
                lookback_days: int = REFUGE_LOOKBACK_DAYS, hot_days: int = REFUGE_HOT_DAYS) -> tuple[str, list[date]]:
    """The days a ranking rests on: the current or last heatwave (consecutive days with heatwave conditions at a
    reference station); else the last `hot_days` hot days (heat peak or worse); else the last `hot_days` days."""
    devices, zones = _stations(store)
    refs = reference_stations(devices, zones)
    first = today - (lookback_days - 1) * DAY
    per_station = station_heat_days(store, refs, first, today, heat) if refs else {}
    state: dict[date, str] = {}
    for rows in per_station.values():
        for h in rows:
            if SEVERITY[h.state] > SEVERITY.get(state.get(h.day, UNAVAILABLE), 0):
                state[h.day] = h.state
    wave = sorted(d for d, s in state.items() if s in (HEATWAVE, EXTREME))
    if wave:
        run = [wave[-1]]
        for d in reversed(wave[:-1]):
            if d != run[-1] - DAY:
                break
            run.append(d)
        return "heatwave", sorted(run)
    hot = sorted(d for d, s in state.items() if s in HOT_STATES)
    if hot:
        return "hot_days", hot[-hot_days:]
    return "recent_days", [today - i * DAY for i in range(hot_days, 0, -1)]


def cool_refuges(store: Store, now: datetime | None = None, heat: HeatSettings = DEFAULT_HEAT,
                 islands: IslandSettings = DEFAULT_ISLANDS, lookback_days: int = REFUGE_LOOKBACK_DAYS,
                 hot_days: int = REFUGE_HOT_DAYS) -> dict[str, Any]:
    """Parks ranked as cool refuges: the largest daytime cool-island intensity over the basis days first (people
    seek shade by day), then the night figure; parks without a figure last."""
    now = now or datetime.now(UTC)
    today = now.astimezone(ZoneInfo(heat.timezone)).date()
    basis, days = refuge_days(store, today, heat, lookback_days, hot_days)
    isl = _Islands(store, days[0], days[-1], islands)
    parks = []
    for zone in isl.zones_of(PARK_ZONE_KIND):
        district, own, around = isl.park(zone)
        rows = park_cool_island(isl.group(around), isl.group(own), islands) if around else []
        parks.append({"zone": zone, "name": isl.name(zone), "district": district, "stations": len(own),
                      "surrounding_stations": len(around), **_intensity(rows, set(days))})

    def key(p: dict[str, Any]) -> tuple:
        day, night = p["day"], p["night"]
        return (day is None, -(day or {}).get("mean", 0.0), night is None, -(night or {}).get("mean", 0.0), p["zone"])

    parks.sort(key=key)
    for i, p in enumerate(parks, 1):
        p["rank"] = i
    return {"basis": basis, "days": days, "generated_at": now, "statement": STATEMENT, "parks": parks}


CSV_COLUMNS = ("rank", "zone", "name", "district", "pci_day_mean_c", "pci_day_max_c", "day_hours",
               "pci_night_mean_c", "pci_night_max_c", "night_hours", "basis", "first_day", "last_day")


def refuges_csv(report: dict[str, Any]) -> str:
    """The ranking as CSV, ready to publish (one row per park, intensities in °C)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    days = report["days"]
    for p in report["parks"]:
        day, night = p["day"] or {}, p["night"] or {}
        w.writerow([p["rank"], p["zone"], p["name"], p["district"], day.get("mean", ""), day.get("max", ""),
                    day.get("hours", 0), night.get("mean", ""), night.get("max", ""), night.get("hours", 0),
                    report["basis"], days[0].isoformat() if days else "", days[-1].isoformat() if days else ""])
    return buf.getvalue()
