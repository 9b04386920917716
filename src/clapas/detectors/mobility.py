"""Mobility rules (issue 12, domain-rules §6.5–§6.7) on the detector framework.

- `mobility.station_empty` / `mobility.station_full`: a bike-share station empty (installed, renting, no bike) or
  full (installed, returning, no dock) for longer than `[bikeshare] empty_alert_s` / `full_alert_s`, from the first
  poll in; clears at the first poll out. A poll gap beyond the hold cap (§6.5) breaks the run: the state there is
  unknown, so a run never bridges missing polls, and an open alert is left as it is until a poll says otherwise.
- `mobility.feed_stale`: a GBFS system whose feed is older than `feed_stale_s` at a poll (§6.1: five minutes),
  whose polls fail `feed_failed_polls` times in a row, or that has not been polled for `feed_silent_s`.
- `mobility.counter_reset`: a counter's cumulative total went down (not a wrap, §6.7): one alert, cleared by the
  next uplink that counts on.
- `mobility.counter_zero`: a counter that counted nothing over a whole local day while its same weekday of the
  previous weeks has a median over `[counters] zero_day_median` (§6.6 rule 4: a counter failing to zero).
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from clapas.detectors.base import CLEAR, OPEN, Detection, Detector, DeviceMeta, utc
from clapas.detectors.state import StateMap
from clapas.i18n import T
from clapas.indices.bikeshare import BikeShareSettings
from clapas.indices.counters import CounterSettings
from clapas.model import QUANTITY_BY_KEY

STATION, SYSTEM = "bike_station", "bikeshare_system"
COUNTERS = ("bike_counter", "traffic_counter")
EMPTY_RULE, FULL_RULE, STALE_RULE = "mobility.station_empty", "mobility.station_full", "mobility.feed_stale"
RESET_RULE, ZERO_RULE = "mobility.counter_reset", "mobility.counter_zero"
RULES = (EMPTY_RULE, FULL_RULE, STALE_RULE, RESET_RULE, ZERO_RULE)


def _q(key: str) -> int:
    return QUANTITY_BY_KEY[key].id


Q_BIKES, Q_DOCKS = _q("bikeshare.bikes_available"), _q("bikeshare.docks_available")
Q_INST, Q_RENT, Q_RET = _q("bikeshare.installed"), _q("bikeshare.renting"), _q("bikeshare.returning")
Q_OK, Q_AGE = _q("bikeshare.poll_ok"), _q("bikeshare.feed_age")
Q_TOTAL = _q("counter.total")
Q_PERIOD = (_q("counter.count"), _q("counter.in"), _q("counter.out"))


class _Station:
    __slots__ = ("last_t", "open", "run", "since")

    def __init__(self) -> None:
        self.last_t = float("-inf")
        self.run = ""  # "empty", "full" or ""
        self.since = 0.0  # first poll of the run
        self.open = ""  # rule of the open alert, or ""


class _System:
    __slots__ = ("failures", "last_t", "open")

    def __init__(self) -> None:
        self.failures = 0
        self.last_t = float("-inf")
        self.open = False


class _Counter:
    __slots__ = ("days", "last_total", "reset_open", "zero_open", "zone")

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.last_total: float | None = None
        self.reset_open = False
        self.zero_open = False
        self.days: dict[date, list[float]] = {}  # local day → [count, uplinks]


class MobilityDetector(Detector):
    kinds = frozenset({STATION, SYSTEM, *COUNTERS})
    state_maps = (StateMap("stations"), StateMap("systems"), StateMap("counters"))
    settings_attrs = (("s", "bikeshare"), ("c", "counters"))

    def __init__(self, bikeshare: BikeShareSettings | None = None, counters: CounterSettings | None = None,
                 timezone: str = "Europe/Paris") -> None:
        self.s = bikeshare or BikeShareSettings()
        self.c = counters or CounterSettings()
        self.tz = ZoneInfo(timezone)
        self.stations: dict[str, _Station] = {}
        self.systems: dict[str, _System] = {}
        self.counters: dict[str, _Counter] = {}

    def observe(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        if dev.kind == STATION:
            self._station(dev, t, values, out)
        elif dev.kind == SYSTEM:
            self._system(dev, t, values, out)
        else:
            self._counter(dev, t, values, out)

    # stations ------------------------------------------------------------------------------------------------
    def _station(self, dev: DeviceMeta, t: float, v: dict[int, float], out: list[Detection]) -> None:
        if Q_BIKES not in v:
            return
        st = self.stations.get(dev.eui)
        if st is None:
            st = self.stations[dev.eui] = _Station()
        if t <= st.last_t:
            return  # a replayed or late poll: the run is already past it
        installed = v.get(Q_INST, 1.0) > 0
        renting, returning = installed and v.get(Q_RENT, 1.0) > 0, installed and v.get(Q_RET, 1.0) > 0
        state = ("empty" if renting and v[Q_BIKES] == 0 else
                 "full" if returning and v.get(Q_DOCKS) == 0 else "")
        if t - st.last_t > self.s.hold_min_s:
            st.run = ""  # unknown since the last poll's hold ended: the run does not bridge it
        st.last_t = t
        if state != st.run:
            st.run, st.since = state, t
        if st.open and st.open != (EMPTY_RULE if state == "empty" else FULL_RULE if state == "full" else ""):
            out.append(Detection(st.open, dev.eui, CLEAR, utc(t), text=T(
                "mobility.station.no_longer_empty" if st.open == EMPTY_RULE else "mobility.station.no_longer_full",
                eui=dev.eui)))
            st.open = ""
        if state and not st.open:
            limit = self.s.empty_alert_s if state == "empty" else self.s.full_alert_s
            if t - st.since >= limit:
                st.open = EMPTY_RULE if state == "empty" else FULL_RULE
                out.append(Detection(st.open, dev.eui, OPEN, utc(t), "warning",
                                     {"since": utc(st.since).isoformat(), "duration_s": t - st.since,
                                      "zone": dev.zone, "limit_s": limit},
                                     T(f"mobility.station.{state}", eui=dev.eui, minutes=(t - st.since) / 60)))

    # systems --------------------------------------------------------------------------------------------------
    def _system(self, dev: DeviceMeta, t: float, v: dict[int, float], out: list[Detection]) -> None:
        sy = self.systems.get(dev.eui)
        if sy is None:
            sy = self.systems[dev.eui] = _System()
        sy.last_t = max(sy.last_t, t)
        ok = v.get(Q_OK, 1.0) > 0
        sy.failures = 0 if ok else sy.failures + 1
        age = v.get(Q_AGE)
        stale = (ok and age is not None and age > self.s.feed_stale_s) or sy.failures >= self.s.feed_failed_polls
        fresh = ok and (age is None or age <= self.s.feed_stale_s)
        if stale and not sy.open:
            sy.open = True
            why = T("mobility.feed.old", age=age) if ok else T("mobility.feed.failures", n=sy.failures)
            out.append(Detection(STALE_RULE, dev.eui, OPEN, utc(t), "warning",
                                 {"feed_age_s": age, "failures": sy.failures}, T("mobility.feed.stale", why=why)))
        elif fresh and sy.open:
            sy.open = False
            out.append(Detection(STALE_RULE, dev.eui, CLEAR, utc(t), text=T("mobility.feed.fresh")))

    # counters -------------------------------------------------------------------------------------------------
    def _counter(self, dev: DeviceMeta, t: float, v: dict[int, float], out: list[Detection]) -> None:
        c = self.counters.get(dev.eui)
        if c is None:
            c = self.counters[dev.eui] = _Counter(dev.zone)
        n: float | None = None
        total = v.get(Q_TOTAL)
        if total is not None:
            prev, c.last_total = c.last_total, total
            if prev is not None:
                m = self.c.wrap_modulus
                if total >= prev:
                    n = total - prev
                elif prev >= m * (1 - self.c.wrap_window) and total < m * self.c.wrap_window:
                    n = total + m - prev
                else:
                    n = total
                    if not c.reset_open:
                        c.reset_open = True
                        out.append(Detection(RESET_RULE, dev.eui, OPEN, utc(t), "info",
                                             {"previous": prev, "value": total},
                                             T("mobility.counter.reset", eui=dev.eui, previous=prev, total=total)))
                if total >= prev and c.reset_open:
                    c.reset_open = False
                    out.append(Detection(RESET_RULE, dev.eui, CLEAR, utc(t), text=T("mobility.counter.counting")))
        # period counts, where sent, are what was counted (Σ period = Δ total, §6.7); `counter.count` is the
        # total over directions when a device sends it beside them
        if Q_PERIOD[0] in v:
            n = v[Q_PERIOD[0]]
        elif Q_PERIOD[1] in v or Q_PERIOD[2] in v:
            n = v.get(Q_PERIOD[1], 0.0) + v.get(Q_PERIOD[2], 0.0)
        if n is not None:
            day = datetime.fromtimestamp(t - 1, self.tz).date()  # an uplink reports the period before it
            acc = c.days.setdefault(day, [0.0, 0.0])
            acc[0] += n
            acc[1] += 1

    def advance(self, watermark: float, out: list[Detection]) -> None:
        for eui, sy in self.systems.items():
            if not sy.open and watermark - sy.last_t > self.s.feed_silent_s:
                sy.open = True
                out.append(Detection(STALE_RULE, eui, OPEN, utc(watermark), "warning",
                                     {"silent_s": watermark - sy.last_t}, T("mobility.feed.not_polled")))
        decided = datetime.fromtimestamp(watermark - self.c.day_lateness_s, self.tz).date()
        for eui, c in self.counters.items():
            for day in sorted(d for d in c.days if d < decided):
                self._decide_day(eui, c, day, out)

    def _decide_day(self, eui: str, c: _Counter, day: date, out: list[Detection]) -> None:
        count, uplinks = c.days[day]
        if uplinks == 0:
            return
        c.days[day] = [count, 0.0]  # decided: kept as reference for the weeks after
        ref = [c.days[p][0] for k in range(1, self.c.reference_weeks + 1)
               if (p := day - timedelta(weeks=k)) in c.days]
        end = datetime(day.year, day.month, day.day, tzinfo=self.tz) + timedelta(days=1)
        at = utc(end.timestamp())
        if count == 0 and ref and statistics.median(ref) > self.c.zero_day_median and not c.zero_open:
            c.zero_open = True
            out.append(Detection(ZERO_RULE, eui, OPEN, at, "warning",
                                 {"day": day.isoformat(), "reference_median": statistics.median(ref)},
                                 T("mobility.counter.zero_day", eui=eui, day=day.isoformat())))
        elif count > 0 and c.zero_open:
            c.zero_open = False
            out.append(Detection(ZERO_RULE, eui, CLEAR, at, text=T("mobility.counter.counts_again", eui=eui)))
        for old in [d for d in c.days if d < day - timedelta(weeks=self.c.reference_weeks + 1)]:
            del c.days[old]
