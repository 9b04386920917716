"""Air-quality detectors: the information and alert thresholds per zone, and the zone's ATMO and European indices.

The regulatory computations are `clapas.indices.air` (domain-rules.md §4); this module only streams them. Per uplink
it files the sensor's readings under their hour (cheap: a few dict operations); when the stream's watermark has
passed an hour by `lateness_s`, the hour is decided: each sensor's hourly mean where it has 75 % of its expected
readings, then the zone's value, the mean over its sensors of their valid hourly means (a zone's background, not a
hot spot). Local days are decided the same way: the zone's daily mean (18 valid hours of 24) and its ATMO index of
the day. Answers depend only on the observations: periods are decided by observation time, readings are de-duplicated
by (sensor, time), means are exact sums (`math.fsum`) whatever the order they came in, and readings later than
`lateness_s` for an already decided hour are dropped (counted in `late_readings`).

Rules (names as in alerts and in `clapas score`), subject = the sensors' zone id:
- `air.<pollutant>.information` and `air.<pollutant>.alert` for pm10, no2, o3, so2: the thresholds of
  `AirQualitySettings.thresholds` with their averaging (hourly values; daily means over local days for PM10) and
  duration rules (NO2 and SO2 alerts: 3 consecutive hours; O3 progressive levels). Opens when a threshold's duration
  rule is met (severity `warning` for information, `major` for alert, `critical` for the O3 progressive levels 2 and
  3; a rule fed by several thresholds escalates), clears on the first valid period back at or under every threshold
  of the rule. A period without enough data decides nothing: it neither opens, nor clears, and it breaks a run of
  consecutive hours not yet long enough.

Not alerts, but evidence: `atmo_days[zone]` (the ATMO index of each closed local day) and `eaqi_latest[zone]` (the
European index of the zone's latest decided hour). Every figure comes from the city's own, mostly low-cost, sensors:
it is labelled "indicative" and carries the number of sensors and the data completeness behind it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from clapas.detectors.base import CLEAR, OPEN, Detection, Detector, DeviceMeta, Registry, utc
from clapas.detectors.localtime import LocalClock
from clapas.detectors.state import ANY, StateMap
from clapas.i18n import EMPTY, T, Text
from clapas.indices.air import (
    Aggregation,
    AirQualitySettings,
    AtmoDay,
    EaqiHour,
    EpisodeTracker,
    Pollutant,
    Threshold,
    atmo_index,
    daily_value,
    eaqi_hour,
    min_readings_per_hour,
)
from clapas.model import QUANTITY_BY_KEY

AIR_QUALITY = "air_quality"
HOUR = 3600.0
POLLUTANT_BY_ID: dict[int, Pollutant] = {QUANTITY_BY_KEY[p.quantity_key].id: p for p in Pollutant}
SEVERITY_RANK = {"info": 0, "warning": 1, "major": 2, "critical": 3}
INDICATIVE_NOTE = "indicative: the city's own low-cost sensors, not the AASQA's reference measurements"
PERIODS_KEPT = 50  # decided periods per zone and pollutant kept for the evidence of an episode


@dataclass(frozen=True, slots=True)
class ZoneEaqi:
    """The European index of a zone's latest decided hour, with what it rests on."""

    eaqi: EaqiHour
    sensors: int  # sensors with a valid hourly value in that hour
    completeness: float  # those sensors / the zone's air-quality sensors


@dataclass(frozen=True, slots=True)
class Period:
    """A decided zone value: an hour (UTC start) or a local day (local midnight)."""

    start: datetime
    value: float
    sensors: int
    completeness: float  # hourly: share of the zone's sensors valid; daily: valid hours / hours of the day


class _Rule:
    """One alert rule of one zone, fed by one or more thresholds (O3's alert has four)."""

    __slots__ = ("name", "pollutant", "severity", "trackers")

    def __init__(self, name: str, pollutant: Pollutant) -> None:
        self.name = name
        self.pollutant = pollutant
        self.trackers: list[EpisodeTracker] = []
        self.severity: str | None = None  # highest severity emitted since it opened; None = not open


class _Zone:
    __slots__ = ("atmo", "daily", "days", "eaqi", "hourly", "pending", "periods", "recent", "rules", "sensors")

    def __init__(self, thresholds: tuple[Threshold, ...], atmo_kept: int) -> None:
        # hour start (epoch) → sensor → reading time → pollutant → value: the undecided hours
        self.pending: dict[float, dict[str, dict[float, dict[Pollutant, float]]]] = {}
        # local day ordinal → pollutant → sensor → UTC hour start → valid hourly mean: the undecided days
        self.days: dict[int, dict[Pollutant, dict[str, dict[datetime, float]]]] = {}
        self.recent: dict[Pollutant, dict[datetime, float]] = {}  # zone hourly values, last 24 h (EAQI)
        self.periods: dict[tuple[Pollutant, bool], dict[datetime, Period]] = {}  # (pollutant, daily) → recent
        self.sensors: set[str] = set()
        self.atmo: deque[AtmoDay] = deque(maxlen=atmo_kept)
        self.eaqi: ZoneEaqi | None = None
        self.rules: dict[str, _Rule] = {}
        self.hourly: dict[Pollutant, list[tuple[_Rule, EpisodeTracker]]] = {}
        self.daily: dict[Pollutant, list[tuple[_Rule, EpisodeTracker]]] = {}
        self.link(thresholds)

    def link(self, thresholds: tuple[Threshold, ...]) -> None:
        """`hourly` and `daily` point at the trackers of `rules` (made if missing), in the thresholds' order (again
        after loading saved state, which holds them as copies)."""
        self.hourly, self.daily = {}, {}
        used: dict[str, int] = {}
        for th in thresholds:
            name = f"air.{th.pollutant.value}.{th.level}"
            rule = self.rules.get(name) or self.rules.setdefault(name, _Rule(name, th.pollutant))
            j = used[name] = used.get(name, -1) + 1
            if j == len(rule.trackers):
                rule.trackers.append(EpisodeTracker(th))
            (self.daily if th.daily else self.hourly).setdefault(th.pollutant, []).append((rule, rule.trackers[j]))


def _rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, SEVERITY_RANK["warning"])


def _iso(d: datetime) -> str:
    return d.isoformat()


def _atmo_evidence(a: AtmoDay) -> dict[str, Any]:
    return {"day": a.day.isoformat(), "index": a.index, "label": a.label, "colour": a.colour,
            "sub_indices": {p.value: v for p, v in a.sub_indices.items()},
            "drivers": [p.value for p in a.drivers], "missing": [p.value for p in a.missing],
            "sensors": a.sensors, "completeness": round(a.completeness, 3), "indicative": a.indicative}


class AirDetector(Detector):
    """Information and alert thresholds per zone, with the zone's daily ATMO and hourly European indices."""

    kinds = frozenset({AIR_QUALITY})
    state_maps = (StateMap("zones", ANY), StateMap("need"))
    state_attrs = ("decided_until", "late_readings", "rejected_readings")
    state_modules = ("clapas.indices.air",)
    settings_attrs = (("settings", "air"),)

    def settings_changed(self) -> None:
        self._max = {p: float(self.settings.max_plausible.get(p, math.inf)) for p in Pollutant}

    def __init__(self, settings: AirQualitySettings | None = None, timezone: str = "Europe/Paris") -> None:
        self.settings = settings or AirQualitySettings()
        self.clock = LocalClock(timezone)
        self.tz = self.clock.tz
        self.zones: dict[str, _Zone] = {}
        self.need: dict[str, int] = {}  # sensor → readings an hour needs (75 % of those expected)
        self.decided_until = -math.inf  # hours starting before this are decided
        self.late_readings = 0  # readings for an hour already decided, dropped
        self.rejected_readings = 0  # values outside the plausible range (sensor faults), dropped
        self._max = {p: float(self.settings.max_plausible.get(p, math.inf)) for p in Pollutant}

    # --- read-only views ---------------------------------------------------------------------------------------
    @property
    def atmo_days(self) -> dict[str, deque[AtmoDay]]:
        """Zone → the ATMO index of its closed local days, oldest first (`atmo_days_kept` of them)."""
        return {z: st.atmo for z, st in self.zones.items()}

    @property
    def eaqi_latest(self) -> dict[str, ZoneEaqi]:
        """Zone → the European index of its latest decided hour."""
        return {z: st.eaqi for z, st in self.zones.items() if st.eaqi is not None}

    def atmo(self, zone: str) -> AtmoDay | None:
        """The zone's ATMO index of its latest closed day."""
        st = self.zones.get(zone)
        return st.atmo[-1] if st is not None and st.atmo else None

    def eaqi(self, zone: str) -> ZoneEaqi | None:
        st = self.zones.get(zone)
        return st.eaqi if st is not None else None

    # --- stream ------------------------------------------------------------------------------------------------
    def bind(self, registry: Registry) -> None:
        super().bind(registry)
        self.state_loaded()

    def state_loaded(self) -> None:
        """Every registered sensor counts in its zone's completeness, saved state or not; a loaded zone's rules are
        linked to its trackers again."""
        for st in self.zones.values():
            st.link(self.settings.thresholds)
        for m in self.registry.of_kind(AIR_QUALITY):
            if m.zone:
                self._zone(m.zone).sensors.add(m.eui)

    def _zone(self, zone: str) -> _Zone:
        st = self.zones.get(zone)
        if st is None:
            st = self.zones[zone] = _Zone(self.settings.thresholds, self.settings.atmo_days_kept)
        return st

    def _readings_needed(self, dev: DeviceMeta) -> int:
        interval = getattr(dev, "expected_interval_s", None) or dev.tags.get("expected_interval_s")
        try:
            interval_s = float(interval) if interval else float(self.settings.expected_interval_s)
        except ValueError:
            interval_s = float(self.settings.expected_interval_s)
        return min_readings_per_hour(max(1, round(HOUR / interval_s)), self.settings)

    def observe(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        if not dev.zone:
            return  # no zone, no subject
        h = t // HOUR * HOUR  # whole-hour UTC offsets: UTC hours are local clock hours (see LocalClock)
        if h < self.decided_until:
            self.late_readings += 1
            return
        vals: dict[Pollutant, float] = {}
        for q, v in values.items():
            p = POLLUTANT_BY_ID.get(q)
            if p is None:
                continue
            if 0.0 <= v <= self._max[p]:  # also refuses NaN
                vals[p] = v
            else:
                self.rejected_readings += 1
        if not vals:
            return
        st = self.zones.get(dev.zone) or self._zone(dev.zone)
        eui = dev.eui
        if eui not in self.need:
            self.need[eui] = self._readings_needed(dev)
            st.sensors.add(eui)
        # merged by reading time: a repeated uplink (or one split across batches) counts once
        st.pending.setdefault(h, {}).setdefault(eui, {}).setdefault(t, {}).update(vals)

    def advance(self, watermark: float, out: list[Detection]) -> None:
        ready = watermark - self.settings.lateness_s
        until = ready // HOUR * HOUR
        if until <= self.decided_until:
            return
        self.decided_until = until
        found: list[Detection] = []
        for zone in sorted(self.zones):
            st = self.zones[zone]
            # in time order, days closing as soon as they end: the evidence (the zone's latest ATMO, its EAQI) is
            # then the same however the stream was batched
            for h in sorted(h for h in st.pending if h < until):
                self._close_days(zone, st, h, found)
                self._decide_hour(zone, st, h, found)
            self._close_days(zone, st, until, found)
        found.sort(key=lambda d: d.at)  # stable: zone by zone within a time
        out.extend(found)

    def _close_days(self, zone: str, st: _Zone, until: float, out: list[Detection]) -> None:
        for day in sorted(d for d in st.days if self.clock.at(d + 1, 0) <= until):
            self._decide_day(zone, st, day, out)

    # --- periods -----------------------------------------------------------------------------------------------
    def _decide_hour(self, zone: str, st: _Zone, h: float, out: list[Detection]) -> None:
        by_sensor = st.pending.pop(h)
        hour = utc(h)
        day = st.days.setdefault(self.clock.hour(h)[0], {})
        means: dict[Pollutant, list[float]] = {}
        valid: set[str] = set()  # sensors with at least one valid hourly mean
        for eui, readings in by_sensor.items():
            per: dict[Pollutant, list[float]] = {}
            for t in sorted(readings):
                for p, v in readings[t].items():
                    per.setdefault(p, []).append(v)
            need = self.need[eui]
            for p, vs in per.items():
                series = day.setdefault(p, {}).setdefault(eui, {})  # measured that day, even if not valid
                if len(vs) >= need:
                    series[hour] = m = math.fsum(vs) / len(vs)
                    means.setdefault(p, []).append(m)
                    valid.add(eui)
        known = max(1, len(st.sensors))
        at = utc(h + HOUR)
        oldest = utc(h - self.settings.eaqi_running_mean_hours * HOUR)
        for p in Pollutant:
            ms = means.get(p)
            if not ms:
                continue
            value = math.fsum(ms) / len(ms)  # as `zone_hourly`: the mean of the sensors valid in the hour
            recent = st.recent.setdefault(p, {})
            recent[hour] = value  # hours come in order: the oldest are first
            while (first := next(iter(recent))) <= oldest:
                del recent[first]
            period = Period(hour, value, len(ms), len(ms) / known)
            self._push(zone, st, p, False, period, at, out)
        if means:
            st.eaqi = ZoneEaqi(eaqi_hour(st.recent, hour, self.settings), len(valid), len(valid) / known)

    def _decide_day(self, zone: str, st: _Zone, day: int, out: list[Detection]) -> None:
        hourly = st.days.pop(day)
        d = date.fromordinal(day)
        st.atmo.append(atmo_index(hourly, d, self.tz, self.settings))
        at = utc(self.clock.at(day + 1, 0))
        midnight = datetime.combine(d, time(), self.tz)
        for p in Pollutant:
            if p not in st.daily or p not in hourly:
                continue
            dv = daily_value(p, hourly[p], d, self.tz, self.settings, Aggregation.MEAN)
            if dv.value is None:
                continue  # under 18 valid hours of 24: no decision
            self._push(zone, st, p, True, Period(midnight, dv.value, dv.sensors, dv.completeness), at, out,
                       {"valid_hours": dv.valid_hours, "hours": dv.hours})

    # --- rules -------------------------------------------------------------------------------------------------
    def _push(self, zone: str, st: _Zone, p: Pollutant, daily: bool, period: Period, at: datetime,
              out: list[Detection], extra: dict[str, Any] | None = None) -> None:
        kept = st.periods.setdefault((p, daily), {})
        kept[period.start] = period
        if len(kept) > PERIODS_KEPT:
            del kept[next(iter(kept))]
        touched: list[_Rule] = []
        for rule, tracker in (st.daily if daily else st.hourly).get(p, ()):
            tracker.push(period.start, period.value)
            if rule not in touched:
                touched.append(rule)
        for rule in touched:
            active = [tr for tr in rule.trackers if tr.active]
            if active:
                top = max(active, key=lambda tr: (_rank(tr.threshold.alert_severity), tr.threshold.value))
                sev = top.threshold.alert_severity
                if rule.severity is None or _rank(sev) > _rank(rule.severity):
                    rule.severity = sev
                    out.append(self._open(zone, st, rule, top, period, at, extra))
            elif rule.severity is not None:
                rule.severity = None
                out.append(self._clear(zone, st, rule, period, at, extra))

    def _base_evidence(self, zone: str, st: _Zone, p: Pollutant, daily: bool, period: Period,
                       extra: dict[str, Any] | None) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "zone": zone, "pollutant": p.value, "unit": "µg/m³",
            "averaging": "daily mean (local day)" if daily else "hourly mean",
            "indicative": self.settings.indicative, "note": INDICATIVE_NOTE,
            "period": _iso(period.start), "value": round(period.value, 1),
            "sensors": period.sensors, "completeness": round(period.completeness, 3),
            "sensors_in_zone": len(st.sensors),
        }
        if extra:
            ev.update(extra)
        if st.atmo:
            ev["atmo"] = _atmo_evidence(st.atmo[-1])
        if st.eaqi is not None and not daily:
            e = st.eaqi.eaqi
            ev["eaqi"] = {"hour": _iso(e.hour), "level": e.level, "label": e.label}
        return ev

    def _open(self, zone: str, st: _Zone, rule: _Rule, tr: EpisodeTracker, period: Period, at: datetime,
              extra: dict[str, Any] | None) -> Detection:
        th = tr.threshold
        kept = st.periods.get((th.pollutant, th.daily), {})
        run = [kept[s] for s, _ in tr.run if s in kept]
        ev = self._base_evidence(zone, st, th.pollutant, th.daily, period, extra)
        ev.update({
            "threshold": th.name, "threshold_value": th.value, "min_periods": th.min_periods,
            "episode_start": _iso(tr.start) if tr.start else None, "peak": round(tr.peak, 1),
            "peak_at": _iso(tr.peak_at) if tr.peak_at else None,
            "periods": [{"start": _iso(q.start), "value": round(q.value, 1), "sensors": q.sensors,
                         "completeness": round(q.completeness, 3)} for q in run],
        })
        span = (T("air.span_days" if th.daily else "air.span_hours", n=len(run)) if th.min_periods > 1 else EMPTY)
        msg = T("air.threshold.opened_daily" if th.daily else "air.threshold.opened", pollutant=th.pollutant.value,
                value=period.value, zone=zone, level=th.level, threshold=th.value, span=span,
                sensors=period.sensors, completeness=period.completeness, atmo=self._atmo_text(st))
        return Detection(rule.name, zone, OPEN, at, th.alert_severity, ev, msg)

    @staticmethod
    def _atmo_text(st: _Zone) -> Text:
        """The zone's latest indice ATMO, for the message: the index people know (arrêté du 10 juillet 2020)."""
        if not st.atmo:
            return EMPTY
        a = st.atmo[-1]
        return T("air.atmo", day=a.day.isoformat(), label=a.label)

    def _clear(self, zone: str, st: _Zone, rule: _Rule, period: Period, at: datetime,
               extra: dict[str, Any] | None) -> Detection:
        daily = rule.trackers[0].threshold.daily
        ev = self._base_evidence(zone, st, rule.pollutant, daily, period, extra)
        ev["thresholds"] = {tr.threshold.name: tr.threshold.value for tr in rule.trackers}
        msg = T("air.threshold.cleared_daily" if daily else "air.threshold.cleared", pollutant=rule.pollutant.value,
                value=period.value, zone=zone, level=rule.name.rsplit(".", 1)[-1])
        return Detection(rule.name, zone, CLEAR, at, "info", ev, msg)
