"""Mobility figures from the store: bike-share stations (current state, KPIs, episodes, rankings), GBFS systems,
and the counter observatory (hourly and daily series with their quality flags, TMJA, TMJO, profiles, peaks,
year-on-year; CSV in the national counting schema, §6.3).

Everything reads through a `Source` (the store, or the API's per-caller view of it), so the charter decides what a
caller sees; the computations are `clapas.indices.bikeshare` and `clapas.indices.counters`.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from clapas.indices import bikeshare as bs
from clapas.indices import counters as ct

STATION_QUANTITIES = ("bikeshare.bikes_available", "bikeshare.docks_available", "bikeshare.installed",
                      "bikeshare.renting", "bikeshare.returning")
COUNTER_KINDS = ("bike_counter", "traffic_counter")
DAY = 86400


class Source(Protocol):
    def devices(self, *, kind: str | None = None, zone: str | None = None, limit: int = 1000,
                offset: int = 0) -> list[dict[str, Any]]: ...

    def series(self, quantity: str, start: datetime, end: datetime, *, euis: Sequence[str] | None = None,
               kind: str | None = None, resolution: str = "raw") -> list[dict[str, Any]]: ...


def _ts(t: Any) -> float:
    return t.timestamp() if isinstance(t, datetime) else float(t)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


# bike share ------------------------------------------------------------------------------------------------------
def station_samples(src: Source, start: datetime, end: datetime, euis: Sequence[str] | None = None
                    ) -> dict[str, list[bs.Sample]]:
    """Each station's polls in [start, end), in time order."""
    by: dict[str, dict[float, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for q in STATION_QUANTITIES:
        for r in src.series(q, start, end, euis=euis, kind=None if euis else "bike_station"):
            by[r["eui"]][_ts(r["time"])][q] = r["value"]
    out = {}
    for eui, polls in by.items():
        out[eui] = [bs.Sample(t, int(v.get("bikeshare.bikes_available", 0)),
                              None if "bikeshare.docks_available" not in v else int(v["bikeshare.docks_available"]),
                              v.get("bikeshare.installed", 1) > 0, v.get("bikeshare.renting", 1) > 0,
                              v.get("bikeshare.returning", 1) > 0)
                    for t, v in sorted(polls.items()) if "bikeshare.bikes_available" in v]
    return out


def _episode(e: bs.Episode) -> dict[str, Any]:
    return {"state": e.state, "start": _iso(e.start), "end": _iso(e.end), "duration_s": round(e.duration_s),
            "censored": e.censored, "peak": e.peak, "violation": e.violation, "exempt": e.exempt}


def station_kpis(src: Source, start: datetime, end: datetime, settings: bs.BikeShareSettings | None = None,
                 timezone: str = "Europe/Paris", ttl_s: float = 60.0, euis: Sequence[str] | None = None,
                 with_episodes: bool = False) -> list[dict[str, Any]]:
    """Per station: shares (all day, peak), episodes, violations (and exempt ones), lower-bound flows, rebalancing
    candidates; sorted by empty share, worst first."""
    s = settings or bs.BikeShareSettings()
    w = bs.Windows(s, timezone)
    cap = bs.hold_cap(ttl_s, s)
    devices = {d["eui"]: d for d in src.devices(kind="bike_station", limit=1_000_000)}
    samples = station_samples(src, start, end, euis)
    until = min(end.timestamp(), max((x[-1].t + cap for x in samples.values() if x), default=end.timestamp()))
    timelines = {e: bs.timeline(x, cap, until) for e, x in samples.items()}
    eps = bs.exemptions({e: bs.episodes(tl, w) for e, tl in timelines.items()}, timelines,
                        {e: (d["lat"], d["lon"]) for e, d in devices.items()
                         if d.get("lat") is not None and d.get("lon") is not None}, w)
    out = []
    for eui, x in samples.items():
        d = devices.get(eui, {})
        tags = d.get("tags") or {}
        capacity = int(tags["capacity"]) if str(tags.get("capacity", "")).isdigit() else None
        sh = bs.shares(timelines[eui], w)
        fl = bs.flows(x, cap, capacity, s)
        row = {"eui": eui, "name": d.get("name", ""), "zone": d.get("zone", ""), "system": tags.get("gbfs_system"),
               "capacity": capacity, "polls": len(x), "empty_share": sh.empty_share, "full_share": sh.full_share,
               "empty_share_peak": sh.empty_share_peak, "full_share_peak": sh.full_share_peak,
               "known_s": round(sh.known_s), "unknown_s": round(sh.unknown_s),
               "episodes": len(eps[eui]), "empty_episodes": sum(e.state == bs.EMPTY for e in eps[eui]),
               "full_episodes": sum(e.state == bs.FULL for e in eps[eui]),
               "violations": sum(e.violation and not e.exempt for e in eps[eui]),
               "exempt_violations": sum(e.violation and e.exempt for e in eps[eui]),
               "departures_lb": fl.departures_lb, "arrivals_lb": fl.arrivals_lb,
               "rebalancing": [{"time": _iso(t), "delta": n} for t, n in fl.rebalancing]}
        if with_episodes:
            row["episode_list"] = [_episode(e) for e in eps[eui]]
        out.append(row)
    out.sort(key=lambda r: (-(r["empty_share"] or 0), -(r["full_share"] or 0), r["eui"]))
    return out


def station_states(src: Source, now: datetime, settings: bs.BikeShareSettings | None = None,
                   ttl_s: float = 60.0) -> list[dict[str, Any]]:
    """Each station's state now: its last poll held up to the cap, else `unknown`."""
    s = settings or bs.BikeShareSettings()
    cap = bs.hold_cap(ttl_s, s)
    samples = station_samples(src, now - timedelta(seconds=cap), now + timedelta(seconds=1))
    out = []
    for d in src.devices(kind="bike_station", limit=1_000_000):
        x = samples.get(d["eui"])
        last = x[-1] if x else None
        state = bs.state_of(last) if last is not None and now.timestamp() - last.t <= cap else bs.UNKNOWN
        out.append({"eui": d["eui"], "name": d.get("name", ""), "zone": d.get("zone", ""), "lat": d.get("lat"),
                    "lon": d.get("lon"), "system": (d.get("tags") or {}).get("gbfs_system"), "state": state,
                    "bikes_available": last.bikes if last else None, "docks_available": last.docks if last else None,
                    "polled_at": _iso(last.t) if last else None})
    return out


def systems(src: Source, now: datetime, window: timedelta = timedelta(days=1)) -> list[dict[str, Any]]:
    """Each GBFS system's last poll: ok or not, feed age, polls and failures over the window."""
    devices = src.devices(kind="bikeshare_system", limit=10_000)
    euis = [d["eui"] for d in devices]
    ok: dict[str, list[tuple[float, float]]] = defaultdict(list)
    age: dict[str, float] = {}
    for r in src.series("bikeshare.poll_ok", now - window, now + timedelta(seconds=1), euis=euis):
        ok[r["eui"]].append((_ts(r["time"]), r["value"]))
    for r in src.series("bikeshare.feed_age", now - window, now + timedelta(seconds=1), euis=euis):
        age[r["eui"]] = r["value"]
    out = []
    for d in devices:
        polls = ok.get(d["eui"], [])
        failing = 0
        for _, v in reversed(polls):
            if v > 0:
                break
            failing += 1
        out.append({"eui": d["eui"], "system": (d.get("tags") or {}).get("gbfs_system", d.get("name", "")),
                    "last_poll": _iso(polls[-1][0]) if polls else None, "polls": len(polls),
                    "failed_polls": sum(v == 0 for _, v in polls), "failing_in_a_row": failing,
                    "feed_age_s": age.get(d["eui"]),
                    "vehicles_free_by_zone": {k.removeprefix("vehicles_free."): v for k, v in
                                              (d.get("attributes") or {}).items() if k.startswith("vehicles_free.")},
                    "status": "unknown" if not polls else "failing" if failing else "ok"})
    return out


def free_floating(src: Source, start: datetime, end: datetime, resolution: str = "1h") -> list[dict[str, Any]]:
    """Each system's free-floating vehicles available per zone over [start, end): the polls (`raw`) or their
    hourly / daily mean, min and max (`1h`, `1d`), and the latest count of the period."""
    zones = {d["eui"]: d for d in src.devices(kind="bikeshare_zone", limit=100_000)}
    points: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if zones:
        for r in src.series("bikeshare.vehicles_free", start, end, euis=sorted(zones), resolution=resolution):
            p = {k: v for k, v in r.items() if k != "eui"}
            p["time"] = _iso(_ts(r["time"]))
            points[r["eui"]].append(p)
    out = []
    for eui, d in zones.items():
        tags = d.get("tags") or {}
        ps = points.get(eui, [])
        out.append({"eui": eui, "system": tags.get("gbfs_system", ""), "zone": tags.get("vehicle_zone", ""),
                    "latest": (ps[-1].get("value", ps[-1].get("mean")) if ps else None), "points": ps})
    return sorted(out, key=lambda z: (z["system"], z["zone"]))


# counters --------------------------------------------------------------------------------------------------------
def counters(src: Source) -> list[dict[str, Any]]:
    return [d for k in COUNTER_KINDS for d in src.devices(kind=k, limit=1_000_000)]


def counter(src: Source, eui: str) -> dict[str, Any] | None:
    return next((d for d in counters(src) if d["eui"] == eui), None)


def _step(d: dict[str, Any], default: int) -> int:
    raw = str((d.get("tags") or {}).get("time_step", "")) or str(d.get("expected_interval_s") or "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def counter_channels(src: Source, d: dict[str, Any], start: datetime, end: datetime,
                     s: ct.CounterSettings | None = None) -> tuple[dict[str, list[tuple[float, float]]], list]:
    """Period counts per direction (`in`, `out`, `total`) as (period end, count), and the reset/wrap events of a
    cumulative-only counter."""
    s = s or ct.CounterSettings()
    eui = d["eui"]
    got = {q: [(_ts(r["time"]), r["value"]) for r in src.series(q, start, end, euis=[eui])]
           for q in ("counter.in", "counter.out", "counter.count", "counter.total")}
    events: list[ct.CounterEvent] = []
    out: dict[str, list[tuple[float, float]]] = {}
    if got["counter.in"] or got["counter.out"]:
        out["in"], out["out"] = got["counter.in"], got["counter.out"]
        tot: dict[float, float] = defaultdict(float)
        for t, n in got["counter.in"] + got["counter.out"]:
            tot[t] += n
        out["total"] = sorted(tot.items())
    elif got["counter.count"]:
        out["total"] = got["counter.count"]
    elif got["counter.total"]:
        out["total"], events = ct.counts_from_totals(got["counter.total"], s)
    return out, events


def counter_days(points: list[tuple[float, float]], step: int, tz: str, s: ct.CounterSettings
                 ) -> tuple[dict[int, float], dict[date, ct.Day]]:
    """Hourly slots and local days of one channel; daily channels (step ≥ 1 day) give days directly."""
    if step >= DAY:
        days = {}
        for t, n in points:
            day = ct.local_day(t - 1, tz)
            a, b = ct.day_bounds(day, tz)
            days[day] = ct.Day(day, n, (b - a) // 3600, (b - a) // 3600, True)
        return {}, ct.flag_days(days, s)
    hours = ct.hourly(points)
    return hours, ct.flag_days(ct.daily(hours, tz, s), s)


def observatory(src: Source, eui: str, year: int, settings: ct.CounterSettings | None = None,
                timezone: str = "Europe/Paris") -> dict[str, Any] | None:
    """One counter's year per direction: TMJA (complete months, days used), TMJO, weekend mean, profiles, peak
    hours, year-on-year against the year before, and the days flagged."""
    s = settings or ct.CounterSettings()
    d = counter(src, eui)
    if d is None:
        return None
    z = ZoneInfo(timezone)
    start = datetime(year - 1, 1, 1, tzinfo=z)
    end = datetime(year + 1, 1, 1, 2, tzinfo=z)  # the year's last period ends at its last midnight
    channels, events = counter_channels(src, d, start, end, s)
    step = _step(d, s.time_step_s)
    out: dict[str, Any] = {"eui": eui, "name": d.get("name", ""), "kind": d.get("kind"), "year": year,
                           "time_step_s": step, "resets": [{"time": _iso(e.t), "kind": e.kind} for e in events],
                           "directions": {}}
    for name, pts in channels.items():
        hours, days = counter_days(pts, step, timezone, s)
        this = {k: v for k, v in days.items() if k.year == year}
        prev = {k: v for k, v in days.items() if k.year == year - 1}
        hours_this = {t: v for t, v in hours.items() if ct.local_day(t, timezone).year == year}
        tm = ct.tmja(this, year)
        tmjo, n_tmjo = ct.tmjo(this, s)
        we, n_we = ct.weekend_mean(this)
        prof = ct.hourly_profile(hours_this, this, timezone)
        out["directions"][name] = {
            "tmja": tm.value, "tmja_days_used": tm.n_days_used, "tmja_months": tm.months_used,
            "tmjo": tmjo, "tmjo_days_used": n_tmjo, "weekend_mean": we, "weekend_days_used": n_we,
            "hourly_profile": prof, "weekly_profile": ct.weekly_profile(this), "peak_hours": ct.peak_hours(prof, s),
            "year_on_year": ct.year_on_year(this, prev),
            "days": len(this), "days_valid": sum(x.valid for x in this.values()),
            "days_flagged": [{"day": x.day.isoformat(), "flag": x.flag, "reason": x.reason}
                             for x in this.values() if x.flag != ct.PASS],
        }
    return out


def counter_series(src: Source, eui: str, start: datetime, end: datetime, resolution: str = "1h",
                   settings: ct.CounterSettings | None = None, timezone: str = "Europe/Paris"
                   ) -> dict[str, Any] | None:
    """Hourly (`1h`) or daily (`1d`) counts per direction with their QARTOD flags beside the raw values."""
    s = settings or ct.CounterSettings()
    d = counter(src, eui)
    if d is None:
        return None
    step = _step(d, s.time_step_s)
    daily = resolution == "1d" or step >= DAY
    if daily:  # whole local days: from the local midnight of `start` to the one at or after `end`
        first, last = ct.local_day(start.timestamp(), timezone), ct.local_day(end.timestamp() - 1, timezone)
        start = datetime.fromtimestamp(ct.day_bounds(first, timezone)[0], UTC)
        end = datetime.fromtimestamp(ct.day_bounds(last, timezone)[1], UTC)
    # a period is observed at its end: the one ending just after `end` started before it
    channels, events = counter_channels(src, d, start, end + timedelta(seconds=max(step, 3600)), s)
    out: dict[str, Any] = {"eui": eui, "resolution": resolution, "time_step_s": step,
                           "resets": [{"time": _iso(e.t), "kind": e.kind} for e in events], "directions": {}}
    for name, pts in channels.items():
        hours, days = counter_days(pts, step, timezone, s)
        if daily:
            rows = [{"day": k.isoformat(), "count": v.total, "slots": v.slots, "expected": v.expected,
                     "flag": v.flag, "reason": v.reason} for k, v in sorted(days.items()) if first <= k <= last]
        else:
            flags = ct.flag_hours(hours, s)
            rows = [{"start": _iso(t), "end": _iso(t + 3600), "count": hours.get(t), "flag": f, "reason": why}
                    for t, (f, why) in sorted(flags.items()) if start.timestamp() <= t < end.timestamp()]
        out["directions"][name] = rows
    return out


def national_csv(series: dict[str, Any]) -> str:
    """Measures in the national counting schema (§6.3): channel_id, counter_id, start_datetime (inclusive),
    end_datetime (exclusive), count (empty when no data), plus the quality flag beside it."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["channel_id", "counter_id", "start_datetime", "end_datetime", "count", "quality_flag"])
    for direction, rows in series["directions"].items():
        for r in rows:
            if "start" in r:
                a, b = r["start"], r["end"]
            else:
                a, b = r["day"], (date.fromisoformat(r["day"]) + timedelta(days=1)).isoformat()
            count = "" if r["count"] is None else (int(r["count"]) if float(r["count"]).is_integer() else r["count"])
            w.writerow([f"{series['eui']}-{direction}", series["eui"], a, b, count, r["flag"]])
    return buf.getvalue()
