"""Museum climate detectors: each room against its target class (ASHRAE AA/A1/A2/B/C/D or the Bizot interim
guidelines), its 24-hour fluctuation and its mould risk. Numbers are `MuseumSettings` fields (domain-rules.md §5,
sources and [U]/design marks in `clapas.indices.museum`).

The subject of every rule is the room (a zone of kind `museum_room`), whose value is the mean of its sensors
(`indoor_climate` devices: air.temperature, air.humidity) on a fixed step (`step_s`, 15 min): each sensor's mean in
the step, or its last step's mean while it is not stale, so one lost uplink does not move the room by the offsets
between its sensors (the same values as `indices.museum.room_series`, computed incrementally). A step is judged once
the stream's watermark is `lateness_s` past its end, so answers depend only on the observations.

Rules (names as in alerts and in `clapas score`):
- `museum.climate`: T or RH outside the class band for at least `min_breach_s` (the episodes' debounce); severity by
  the largest excess; re-opened with a higher severity when the breach deepens (an escalation); clears after
  `climate_clear_s` back in band, with the episode (start, end, peak, duration) in the evidence.
  ASHRAE bands are ± the short-term fluctuation around the seasonal set point (the room's trailing `ma_days` mean
  of the previous days, kept within the class's seasonal shifts of its annual set point, the room's mean over up to
  a year); Bizot, C and D bands are absolute.
- `museum.fluctuation`: the 24-hour range (max − min) of RH, and of T where the class gives a limit, beyond the
  class's limit; computed on the room's trailing one-hour mean so one stray reading is no swing. Clears when the
  24-hour range has stayed within the limit for `fluctuation_clear_s` (a failure's rise and its recovery are two
  swings a day apart: one alert, not two).
- `museum.mould_risk`: RH above `mould_rh` for `mould_min_sustained_s` (Padfield: weeks above 75 %RH); clears after
  `mould_clear_s` at or below it.

The EN 15757 historic band needs a year of data and a centred average (15 days of future): it is in the monthly
report (`clapas.reports.museum`), not in the real-time rules.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from clapas.detectors.base import CLEAR, OPEN, Detection, Detector, DeviceMeta, utc
from clapas.detectors.state import ANY, StateMap
from clapas.i18n import T, Text
from clapas.indices.museum import (
    DAY_S,
    HOUR_S,
    ClimateClass,
    MuseumSettings,
    class_limits,
    set_points,
)
from clapas.model import QUANTITY_BY_KEY

Q_T = QUANTITY_BY_KEY["air.temperature"].id
Q_RH = QUANTITY_BY_KEY["air.humidity"].id
ROOM_KIND = "museum_room"
SENSOR_KIND = "indoor_climate"
CLIMATE, FLUCTUATION, MOULD = "museum.climate", "museum.fluctuation", "museum.mould_risk"
SEVERITY_RANK = {"warning": 1, "major": 2, "critical": 3}
SMOOTH_S = HOUR_S  # the fluctuation rule's smoothing (design: one stray 15-min value is no 24-h swing)


def _r(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(v, nd)


def _band(limits: tuple[float | None, float | None], unit: str) -> Text:
    lo, hi = limits
    if lo is None:
        return T("museum.band.at_most", high=hi, unit=unit)
    if hi is None:
        return T("museum.band.at_least", low=lo, unit=unit)
    return T("museum.band.between", low=lo, high=hi, unit=unit)


class _Sensor:
    __slots__ = ("rh", "rh_at", "t", "t_at")

    def __init__(self) -> None:
        self.t: float | None = None  # mean of the last step with a reading, and that reading's time
        self.t_at = -math.inf
        self.rh: float | None = None
        self.rh_at = -math.inf


class _Window:
    """Min and max of the values of the last `span` seconds (monotonic deques)."""

    __slots__ = ("maxs", "mins", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self.mins: deque[tuple[float, float]] = deque()
        self.maxs: deque[tuple[float, float]] = deque()

    def add(self, t: float, v: float) -> tuple[tuple[float, float], tuple[float, float]]:
        while self.mins and self.mins[-1][1] >= v:
            self.mins.pop()
        self.mins.append((t, v))
        while self.maxs and self.maxs[-1][1] <= v:
            self.maxs.pop()
        self.maxs.append((t, v))
        while self.mins[0][0] <= t - self.span:
            self.mins.popleft()
        while self.maxs[0][0] <= t - self.span:
            self.maxs.popleft()
        return self.mins[0], self.maxs[0]


class _Smoother:
    """Trailing mean of the step values of the last `span` seconds."""

    __slots__ = ("span", "total", "values")

    def __init__(self, span: float) -> None:
        self.span = span
        self.values: deque[tuple[float, float]] = deque()
        self.total = 0.0

    def add(self, t: float, v: float) -> float:
        self.values.append((t, v))
        self.total += v
        while self.values[0][0] <= t - self.span:
            self.total -= self.values.popleft()[1]
        return self.total / len(self.values)


class _Room:
    """A room's step accumulators, set-point history and rule states."""

    def __init__(self, zone: str, name: str, cls: ClimateClass, s: MuseumSettings) -> None:
        self.zone, self.name, self.cls = zone, name, cls
        self.sensors: dict[str, _Sensor] = {}
        self.acc: dict[int, dict[str, list[float]]] = {}  # step → eui → [ΣT, nT, ΣRH, nRH, newest T, newest RH]
        self.next_k: int | None = None  # first step not judged yet
        self.last_known: float | None = None  # end of the last step with a value
        # set points: per UTC day [ΣT, nT, ΣRH, nRH] of the step values, the last year of them
        self.days: deque[list[float]] = deque()
        self.day: int | None = None
        self.limits: tuple[tuple[float | None, float | None], tuple[float | None, float | None]] = (
            (None, None), (None, None))  # the current day's (T, RH) bands
        # museum.climate
        self.c_open = False
        self.c_severity = ""
        self.c_start: float | None = None
        self.c_in_since: float | None = None
        self.c_peak: dict[str, Any] = {}
        # museum.fluctuation
        self.f_open = False
        self.f_ok_since: float | None = None
        self.f_smooth_t, self.f_smooth_rh = _Smoother(SMOOTH_S), _Smoother(SMOOTH_S)
        self.f_win_t, self.f_win_rh = _Window(s.fluctuation_window_s), _Window(s.fluctuation_window_s)
        # museum.mould_risk
        self.m_open = False
        self.m_start: float | None = None
        self.m_dry_since: float | None = None
        self.m_peak = 0.0


class MuseumDetector(Detector):
    kinds = frozenset({SENSOR_KIND})
    state_maps = (StateMap("rooms", ANY),)
    state_modules = ("clapas.indices.museum",)
    settings_attrs = (("s", "museum"),)

    def __init__(self, settings: MuseumSettings | None = None, timezone: str = "Europe/Paris") -> None:
        self.s = settings or MuseumSettings()  # its class names are checked when it is built
        self.tz = ZoneInfo(timezone)
        self.rooms: dict[str, _Room] = {}

    # --- input -----------------------------------------------------------------------------------------------------
    def _room(self, zone: str) -> _Room | None:
        room = self.rooms.get(zone)
        if room is None:
            meta = self.registry.zones.get(zone)
            if meta is None or meta.kind != ROOM_KIND:
                return None
            cls = self.s.class_of(zone, str(meta.properties.get("climate_class") or "") or None)
            room = self.rooms[zone] = _Room(zone, meta.name or zone, cls, self.s)
        return room

    def observe(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        t_val, rh_val = values.get(Q_T), values.get(Q_RH)
        if (t_val is None and rh_val is None) or not dev.zone:
            return
        room = self._room(dev.zone)
        if room is None:
            return
        k = int(t // self.s.step_s)
        if room.next_k is None:
            room.next_k = k
        elif k < room.next_k:
            return  # its step has been judged already
        a = room.acc.setdefault(k, {}).get(dev.eui)
        if a is None:
            a = room.acc[k][dev.eui] = [0.0, 0.0, 0.0, 0.0, -math.inf, -math.inf]
        if t_val is not None and math.isfinite(t_val):
            a[0] += t_val
            a[1] += 1
            a[4] = max(a[4], t)
        if rh_val is not None and math.isfinite(rh_val):
            a[2] += rh_val
            a[3] += 1
            a[5] = max(a[5], t)

    def advance(self, watermark: float, out: list[Detection]) -> None:
        step = self.s.step_s
        last_k = math.floor((watermark - self.s.lateness_s) / step) - 1  # last step complete enough to judge
        for room in self.rooms.values():
            if room.next_k is None:
                continue
            while room.next_k <= last_k:
                k = room.next_k
                room.next_k = k + 1
                self._step(room, k * step, (k + 1) * step, room.acc.pop(k, {}), out)

    # --- one step of one room --------------------------------------------------------------------------------------
    def _step(self, room: _Room, t0: float, t1: float, acc: dict[str, list[float]], out: list[Detection]) -> None:
        stale = self.s.sensor_stale_s
        ts: list[float] = []
        rhs: list[float] = []
        for eui, a in acc.items():
            sen = room.sensors.get(eui)
            if sen is None:
                sen = room.sensors[eui] = _Sensor()
            if a[1]:
                sen.t, sen.t_at = a[0] / a[1], a[4]
            if a[3]:
                sen.rh, sen.rh_at = a[2] / a[3], a[5]
        for eui, sen in room.sensors.items():
            a = acc.get(eui)  # a sensor read in this step counts; one that was not, while its last is fresh
            if sen.t is not None and ((a is not None and a[1]) or t1 - sen.t_at <= stale):
                ts.append(sen.t)
            if sen.rh is not None and ((a is not None and a[3]) or t1 - sen.rh_at <= stale):
                rhs.append(sen.rh)
        if not ts and not rhs:
            return
        temp = sum(ts) / len(ts) if ts else None
        rh = sum(rhs) / len(rhs) if rhs else None
        if room.last_known is not None and t0 - room.last_known > self.s.max_gap_s:
            self._gap(room)
        room.last_known = t1
        self._set_points(room, t0, temp, rh)
        self._climate(room, t0, t1, temp, rh, out)
        self._fluctuation(room, t0, t1, temp, rh, out)
        if rh is not None:
            self._mould(room, t0, t1, rh, out)

    def _gap(self, room: _Room) -> None:
        """A silence longer than `max_gap_s`: runs in progress cannot be judged across it (open alerts stay open
        until the room is seen back in band)."""
        if not room.c_open:
            room.c_start, room.c_peak = None, {}
        room.c_in_since = None
        if not room.m_open:
            room.m_start = None
        room.m_dry_since = None

    def _set_points(self, room: _Room, t0: float, temp: float | None, rh: float | None) -> None:
        """Day sums of the step values; at each new UTC day, the day's set points and bands (`set_points`)."""
        day = int(t0 // DAY_S)
        if room.day != day:
            room.day = day
            while room.days and room.days[0][0] < day - self.s.annual_window_s / DAY_S:
                room.days.popleft()
            room.limits = class_limits(room.cls, set_points(room.days, day, self.s))
            room.days.append([float(day), 0.0, 0.0, 0.0, 0.0])
        d = room.days[-1]
        if temp is not None:
            d[1] += temp
            d[2] += 1
        if rh is not None:
            d[3] += rh
            d[4] += 1

    # --- museum.climate --------------------------------------------------------------------------------------------
    def _severity(self, peak: dict[str, Any]) -> str:
        s, sev = self.s, "warning"
        for q, (major, critical) in (("temperature", (s.t_major_excess_k, s.t_critical_excess_k)),
                                     ("humidity", (s.rh_major_excess, s.rh_critical_excess))):
            ex = peak.get(q, {}).get("excess", 0.0)
            level = "critical" if ex >= critical else "major" if ex >= major else "warning"
            sev = level if SEVERITY_RANK[level] > SEVERITY_RANK[sev] else sev
        return sev

    def _climate(self, room: _Room, t0: float, t1: float, temp: float | None, rh: float | None,
                 out: list[Detection]) -> None:
        lim_t, lim_rh = room.limits
        breaches: dict[str, dict[str, Any]] = {}
        for q, v, (lo, hi), unit in (("temperature", temp, lim_t, "°C"), ("humidity", rh, lim_rh, "%RH")):
            if v is None:
                continue
            ex = v - hi if hi is not None and v > hi else lo - v if lo is not None and v < lo else 0.0
            if ex > 0:
                breaches[q] = {"value": round(v, 2), "excess": round(ex, 2), "low": _r(lo), "high": _r(hi),
                               "unit": unit, "at": utc(t0).isoformat()}
        if breaches:
            room.c_in_since = None
            if room.c_start is None:
                room.c_start, room.c_peak = t0, {}
            for q, b in breaches.items():
                if b["excess"] > room.c_peak.get(q, {}).get("excess", 0.0):
                    room.c_peak[q] = b
            if t1 - room.c_start < self.s.min_breach_s:
                return
            sev = self._severity(room.c_peak)
            if not room.c_open or SEVERITY_RANK[sev] > SEVERITY_RANK[room.c_severity]:
                room.c_open, room.c_severity = True, sev
                out.append(Detection(CLIMATE, room.zone, OPEN, utc(t1), sev, self._episode(room, t1, lim_t, lim_rh),
                                     self._climate_message(room, breaches, t1, lim_t, lim_rh)))
            return
        if not room.c_open:
            room.c_start, room.c_peak = None, {}
            return
        if room.c_in_since is None:
            room.c_in_since = t0
        if t1 - room.c_in_since >= self.s.climate_clear_s:
            ev = self._episode(room, room.c_in_since, lim_t, lim_rh)
            out.append(Detection(CLIMATE, room.zone, CLEAR, utc(t1), "info", ev,
                                 T("museum.climate.cleared", room=room.name, cls=room.cls.name,
                                   since=self._local(room.c_in_since), hours=ev["duration_h"])))
            room.c_open, room.c_severity, room.c_start, room.c_in_since, room.c_peak = False, "", None, None, {}

    def _episode(self, room: _Room, end: float, lim_t: tuple[float | None, float | None],
                 lim_rh: tuple[float | None, float | None]) -> dict[str, Any]:
        start = room.c_start if room.c_start is not None else end
        return {"class": room.cls.name, "start": utc(start).isoformat(), "end": utc(end).isoformat(),
                "duration_h": round((end - start) / HOUR_S, 2), "peak": room.c_peak,
                "band_t": list(lim_t), "band_rh": [_r(x) for x in lim_rh], "sensors": len(room.sensors)}

    def _climate_message(self, room: _Room, breaches: dict[str, dict[str, Any]], t1: float,
                         lim_t: tuple[float | None, float | None], lim_rh: tuple[float | None, float | None]) -> Text:
        parts = []
        if "temperature" in breaches:
            parts.append(T("museum.climate.temperature", value=breaches["temperature"]["value"],
                           band=_band(lim_t, "°C")))
        if "humidity" in breaches:
            parts.append(T("museum.climate.humidity", value=breaches["humidity"]["value"], band=_band(lim_rh, "%")))
        start = room.c_start if room.c_start is not None else t1
        return T("museum.climate.opened", room=room.name, parts=parts,
                 cls=room.cls.name, hours=(t1 - start) / HOUR_S, since=self._local(start))

    def _local(self, t: float) -> str:
        """Local time, ISO 8601 with its offset (rendered the language's way by the catalog's `datetime`)."""
        return datetime.fromtimestamp(t, self.tz).replace(microsecond=0).isoformat()

    # --- museum.fluctuation ----------------------------------------------------------------------------------------
    def _fluctuation(self, room: _Room, t0: float, t1: float, temp: float | None, rh: float | None,
                     out: list[Detection]) -> None:
        over: dict[str, dict[str, Any]] = {}
        ranges: dict[str, float] = {}
        for q, v, smooth, win, limit in (
                ("humidity", rh, room.f_smooth_rh, room.f_win_rh, room.cls.rh_range_limit()),
                ("temperature", temp, room.f_smooth_t, room.f_win_t, room.cls.t_range_limit())):
            if v is None or limit is None:
                continue
            (t_min, lo), (t_max, hi) = win.add(t0, smooth.add(t0, v))
            ranges[q] = hi - lo
            if hi - lo > limit:
                over[q] = {"range": round(hi - lo, 2), "limit": limit, "min": round(lo, 2), "max": round(hi, 2),
                           "min_at": utc(t_min).isoformat(), "max_at": utc(t_max).isoformat()}
        if over and not room.f_open:
            room.f_open, room.f_ok_since = True, None
            major = any(o["range"] > self.s.fluctuation_major_factor * o["limit"] for o in over.values())
            ranges_text = [T(f"museum.fluctuation.{q}", range=o["range"], limit=o["limit"]) for q, o in over.items()]
            out.append(Detection(FLUCTUATION, room.zone, OPEN, utc(t1), "major" if major else "warning",
                                 {"class": room.cls.name, "window_h": self.s.fluctuation_window_s / HOUR_S, **over},
                                 T("museum.fluctuation.opened", room=room.name, cls=room.cls.name,
                                   ranges=ranges_text)))
        if over or not room.f_open or not ranges:
            room.f_ok_since = None
            return
        if room.f_ok_since is None:
            room.f_ok_since = t0
        if t1 - room.f_ok_since >= self.s.fluctuation_clear_s:
            room.f_open, room.f_ok_since = False, None
            out.append(Detection(FLUCTUATION, room.zone, CLEAR, utc(t1), "info",
                                 {"class": room.cls.name, **{q: round(r, 2) for q, r in ranges.items()}},
                                 T("museum.fluctuation.cleared", room=room.name, cls=room.cls.name)))

    # --- museum.mould_risk -----------------------------------------------------------------------------------------
    def _mould(self, room: _Room, t0: float, t1: float, rh: float, out: list[Detection]) -> None:
        s = self.s
        if rh > s.mould_rh:
            room.m_dry_since = None
            if room.m_start is None:
                room.m_start, room.m_peak = t0, rh
            room.m_peak = max(room.m_peak, rh)
            if not room.m_open and t1 - room.m_start >= s.mould_min_sustained_s:
                room.m_open = True
                out.append(Detection(
                    MOULD, room.zone, OPEN, utc(t1), "major",
                    {"since": utc(room.m_start).isoformat(), "hours": round((t1 - room.m_start) / HOUR_S, 1),
                     "threshold_rh": s.mould_rh, "peak_rh": round(room.m_peak, 1)},
                    T("museum.mould_risk.opened", room=room.name, threshold=s.mould_rh,
                      days=(t1 - room.m_start) / DAY_S, peak=room.m_peak)))
            return
        if not room.m_open:
            room.m_start = None
            return
        if room.m_dry_since is None:
            room.m_dry_since = t0
        if t1 - room.m_dry_since >= s.mould_clear_s:
            out.append(Detection(
                MOULD, room.zone, CLEAR, utc(t1), "info",
                {"since": utc(room.m_start or t0).isoformat(), "dry_since": utc(room.m_dry_since).isoformat(),
                 "peak_rh": round(room.m_peak, 1)},
                T("museum.mould_risk.cleared", room=room.name, threshold=s.mould_rh,
                  since=self._local(room.m_dry_since))))
            room.m_open, room.m_start, room.m_dry_since = False, None, None
