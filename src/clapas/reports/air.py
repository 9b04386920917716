"""Air quality as the city publishes it: the day's ATMO index per zone and the latest European index (EAQI).

Computed from the store with the pure functions of `clapas.indices.air` (arrêté du 10 juillet 2020; EEA legacy
bands), on the zones that have `air_quality` sensors. Every figure is *indicative* (the city's own, mostly low-cost,
sensors; the official index is the AASQA's, Atmo Occitanie) and carries its sensor count and data completeness.

Hourly values follow the detectors' rule (`hourly_means`): an hour is valid with 75 % of the readings the sensor's
declared interval promises. A pollutant counts as measured in a zone when one of its sensors reported it over the
two days read (the day asked and the one before): a measured pollutant without enough valid hours makes the day
"indisponible", as the index could hide its worst pollutant.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from clapas.indices.air import (
    ATMO_COLOURS,
    ATMO_LABELS,
    ATMO_UNAVAILABLE_LABEL,
    DEFAULT_SETTINGS,
    AirQualitySettings,
    AtmoClass,
    AtmoDay,
    Pollutant,
    atmo_index,
    eaqi_hour,
    hour_start,
    min_readings_per_hour,
    zone_hourly,
)
from clapas.reports.common import DAY, HOUR, devices_of, local_midnight, round_or_none, zones_by_id
from clapas.store.base import Store

KIND = "air_quality"
# A sensor whose registry entry declares no interval: the usual 15-minute air-quality profile (design; the air
# detectors' `AirQualitySettings.expected_interval_s` when the settings have it)
DEFAULT_INTERVAL_S = 900
# The EAQI's PM running mean looks back 24 h; read that much before the newest complete hour, with a day's margin
# to find that hour when the newest readings are late (design)
EAQI_LOOKBACK = 48 * HOUR

Hourly = dict[str, dict[Pollutant, dict[str, dict[datetime, float]]]]  # zone → pollutant → sensor → hour → µg/m³


def _expected_per_hour(device: dict[str, Any], settings: AirQualitySettings) -> int:
    interval = device.get("expected_interval_s") or getattr(settings, "expected_interval_s", DEFAULT_INTERVAL_S)
    return max(1, round(3600 / interval))


def _plausible(settings: AirQualitySettings, pollutant: Pollutant) -> float:
    """Upper bound of a believable reading (the detectors' setting when present; otherwise none)."""
    limits = getattr(settings, "max_plausible", None) or {}
    return float(limits.get(pollutant, math.inf))


def read_hourly(store: Store, start: datetime, end: datetime, tz: tzinfo,
                settings: AirQualitySettings = DEFAULT_SETTINGS) -> tuple[Hourly, dict[str, dict[str, Any]]]:
    """Valid hourly means of every air-quality sensor in [start, end), grouped by zone; and the sensors by EUI.

    One bulk read of hourly buckets per pollutant (PostgreSQL serves them from its rollups). An hour is valid with
    75 % of the readings the sensor's interval promises (`min_readings_per_hour`, the detectors' rule); buckets are
    UTC hours, the local clock hours of every whole-hour time zone. An hour holding a reading outside
    [0, max plausible] (a sensor fault) is left out whole: stricter than the detectors, which drop only that reading,
    but a bucket cannot be split."""
    sensors = {d["eui"]: d for d in devices_of(store, KIND) if d.get("zone")}
    out: Hourly = defaultdict(dict)
    if not sensors:
        return {}, sensors
    need = {eui: min_readings_per_hour(_expected_per_hour(d, settings), settings) for eui, d in sensors.items()}
    for p in Pollutant:
        top = _plausible(settings, p)
        for r in store.series(p.quantity_key, start, end, euis=list(sensors), resolution="1h"):
            eui = r["eui"]
            zone = out[sensors[eui]["zone"]].setdefault(p, {})
            series = zone.setdefault(eui, {})  # a sensor that reported counts as measuring, valid hours or not
            if r["count"] >= need[eui] and r["min"] >= 0 and r["max"] <= top:
                series[r["time"]] = r["mean"]
    return dict(out), sensors


def _atmo_zone(zone: str, atmo: AtmoDay, names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pollutants = {
        p.value: {
            "sub_index": atmo.sub_indices.get(p),
            "value": round_or_none(d.value, 1),
            "unit": "µg/m³",
            "aggregation": d.aggregation.value,
            "valid_hours": d.valid_hours,
            "hours": d.hours,
            "required_hours": d.required_hours,
            "sensors": d.sensors,
            "completeness": round(d.completeness, 3),
        }
        for p, d in sorted(atmo.daily.items(), key=lambda item: list(Pollutant).index(item[0]))
    }
    return {
        "zone": zone,
        "name": (names.get(zone) or {}).get("name") or zone,
        "day": atmo.day,
        "index": atmo.index,
        "label": atmo.label,
        "colour": atmo.colour,
        "drivers": [p.value for p in atmo.drivers],
        "missing": [p.value for p in atmo.missing],
        "pollutants": pollutants,
        "sensors": atmo.sensors,
        "completeness": round(atmo.completeness, 3),
        "indicative": atmo.indicative,
    }


def atmo_report(store: Store, day: date, timezone: str = "Europe/Paris",
                settings: AirQualitySettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """The ATMO index of `day` (a local day) per zone with air-quality sensors, with the day before beside it."""
    tz = ZoneInfo(timezone)
    before = day - DAY
    hourly, _ = read_hourly(store, local_midnight(before, tz), local_midnight(day + DAY, tz), tz, settings)
    zones = zones_by_id(store) if hourly else {}
    rows = []
    for zone in sorted(hourly):
        today = atmo_index(hourly[zone], day, tz, settings)
        previous = atmo_index(hourly[zone], before, tz, settings)
        row = _atmo_zone(zone, today, zones)
        row["previous"] = {"day": before, "index": previous.index, "label": previous.label,
                           "colour": previous.colour}
        rows.append(row)
    return {
        "day": day,
        "timezone": timezone,
        "indicative": settings.indicative,
        "statement": "Indicatif : indice calculé sur les capteurs de la ville (souvent à bas coût), pas l'indice "
                     "officiel de l'AASQA (Atmo Occitanie).",
        "scale": [{"index": int(c), "label": ATMO_LABELS[c], "colour": ATMO_COLOURS[c]} for c in AtmoClass],
        "unavailable_label": ATMO_UNAVAILABLE_LABEL,
        "zones": rows,
    }


def eaqi_report(store: Store, now: datetime | None = None, timezone: str = "Europe/Paris",
                settings: AirQualitySettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """Per zone, the European index of the newest complete hour that has a valid value (hourly gases, PM 24 h)."""
    tz = ZoneInfo(timezone)
    end = hour_start(now or datetime.now(UTC), tz)  # the hour in progress is not complete yet
    hourly, _ = read_hourly(store, end - EAQI_LOOKBACK, end, tz, settings)
    zones = zones_by_id(store) if hourly else {}
    rows = []
    for zone in sorted(hourly):
        series = {p: zone_hourly(sensors) for p, sensors in hourly[zone].items()}
        hours = [h for s in series.values() for h in s]
        if not hours:
            continue
        hour = max(hours)
        e = eaqi_hour(series, hour, settings)
        rows.append({
            "zone": zone,
            "name": (zones.get(zone) or {}).get("name") or zone,
            "hour": hour,
            "level": e.level,
            "label": e.label,
            "sub_indices": {p.value: level for p, level in sorted(e.sub_indices.items(),
                                                                   key=lambda i: list(Pollutant).index(i[0]))},
            "drivers": [p.value for p in e.drivers],
            "sensors": len({s for sensors in hourly[zone].values() for s, v in sensors.items() if v}),
            "indicative": e.indicative,
        })
    return {"until": end, "indicative": settings.indicative, "zones": rows}
