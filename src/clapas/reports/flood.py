"""Floods as the city sees them: each river gauge's level against its thresholds with its rate of rise, and each
rain gauge's accumulations over 1 to 24 hours against the return-period tiers.

Computed from raw readings (`Store.series`, one read per quantity) with the detector's own functions
(`clapas.indices.flood`): the de-spiked level (median of the last three readings), rates interpolated over the window,
rain increments spread over the interval they cover. So the page shows what the flood rules see.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from clapas.indices.flood import (
    CLASS_NAMES,
    HOUR,
    TIER_NAMES,
    FloodSettings,
    LevelSeries,
    RainSeries,
    level_class,
    rain_severity,
    rain_tiers,
)
from clapas.reports.common import by_eui, devices_of, round_or_none
from clapas.store.base import Store

LEVEL_KIND = "water_level"
RAIN_KIND = "rain_gauge"
# Readings before the longest rain window: the increment that straddles the window's start needs the uplink
# before it, and the first uplink read only anchors the series (design: covers a 6-hour outage)
RAIN_MARGIN = timedelta(hours=6)
# River levels read back: the 3-hour rate, a restart gap and its tolerance, and a latest level a day old at most
LEVEL_LOOKBACK = timedelta(hours=24)


def _gauge(d: dict[str, Any], settings: FloodSettings, now: datetime,
           rows: list[dict[str, Any]]) -> dict[str, Any]:
    tags = d.get("tags") or {}
    yellow, orange, red = settings.level_thresholds(d["eui"], tags)
    r1, r3 = settings.rise_thresholds(d["eui"])
    s = LevelSeries(keep_s=LEVEL_LOOKBACK.total_seconds(), max_gap_s=settings.level_max_gap_s)
    for r in rows:
        s.add(r["time"].timestamp(), r["value"])
    out: dict[str, Any] = {
        "eui": d["eui"], "name": d.get("name") or d["eui"], "zone": d.get("zone", ""), "river": tags.get("river", ""),
        "thresholds": {"yellow": yellow, "orange": orange, "red": red},
        "rise_thresholds_m_per_h": {"1h": r1, "3h": r3},
        "time": None, "level": None, "class": None, "class_name": None,
        "rise_1h_m_per_h": None, "rise_3h_m_per_h": None, "rise_1h_m": None, "rise_3h_m": None, "rising": False,
        "stale": True,
    }
    if s.latest is None:
        return out
    level = s.current  # the median of the last three readings (None just after a (re)start: the raw one then)
    shown = level if level is not None else rows[-1]["value"]
    cls = level_class(shown, yellow, orange, red)
    rate1 = s.rate(HOUR, settings.rate_tolerance_s)
    rate3 = s.rate(3 * HOUR, settings.rate_tolerance_s)
    latest = datetime.fromtimestamp(s.latest, UTC)
    out.update({
        "time": latest, "level": round(shown, 3), "raw_level": round(rows[-1]["value"], 3), "class": cls,
        "class_name": CLASS_NAMES[cls],
        "rise_1h_m_per_h": round_or_none(rate1, 3), "rise_3h_m_per_h": round_or_none(rate3, 3),
        "rise_1h_m": round_or_none(rate1, 3), "rise_3h_m": round_or_none(None if rate3 is None else rate3 * 3, 3),
        "rising": (rate1 is not None and rate1 >= r1) or (rate3 is not None and rate3 >= r3),
        "stale": (now - latest).total_seconds() > settings.level_max_gap_s,
    })
    return out


def _rain(d: dict[str, Any], settings: FloodSettings, now: datetime,
          rows: list[dict[str, Any]]) -> dict[str, Any]:
    windows = settings.rain_windows_h
    s = RainSeries(keep_s=(max(windows) * HOUR) + RAIN_MARGIN.total_seconds())
    for r in rows:
        s.add(r["time"].timestamp(), r["value"])
    acc = s.accumulations(windows, at=now.timestamp())
    thresholds = settings.rain_thresholds(d["eui"])
    tiers = rain_tiers(acc, windows, thresholds)
    severity = rain_severity(tiers, settings.rain_major_windows)
    return {
        "eui": d["eui"], "name": d.get("name") or d["eui"], "zone": d.get("zone", ""),
        "time": datetime.fromtimestamp(s.latest, UTC) if s.latest is not None else None,
        "accumulations_mm": {f"{h}h": round(acc[h], 1) for h in windows},
        "tiers": {f"{h}h": TIER_NAMES[tiers[h]] for h in windows},
        "thresholds_mm": {name: {f"{h}h": t[k] for k, h in enumerate(windows)}
                          for name, t in zip(TIER_NAMES[1:], thresholds, strict=True)},
        "tier": TIER_NAMES[severity],
    }


def rivers_report(store: Store, now: datetime | None = None,
                  settings: FloodSettings | None = None) -> dict[str, Any]:
    """River gauges (latest level, class, rise over 1 h and 3 h) and rain gauges (accumulations), at `now`."""
    settings = settings or FloodSettings()
    now = now or datetime.now(UTC)
    end = now + timedelta(microseconds=1)  # a reading at `now` counts
    gauges = devices_of(store, LEVEL_KIND)
    levels = by_eui(store.series("water.level", now - LEVEL_LOOKBACK, end, euis=[g["eui"] for g in gauges]))
    rain_gauges = devices_of(store, RAIN_KIND)
    start = now - timedelta(hours=max(settings.rain_windows_h)) - RAIN_MARGIN
    rain = by_eui(store.series("rain.amount", start, end, euis=[g["eui"] for g in rain_gauges]))
    return {
        "at": now,
        "rivers": [_gauge(g, settings, now, levels.get(g["eui"], [])) for g in gauges],
        "rain_gauges": [_rain(g, settings, now, rain.get(g["eui"], [])) for g in rain_gauges],
        "windows_h": list(settings.rain_windows_h),
        "classes": list(CLASS_NAMES),
    }
