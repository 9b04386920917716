"""Bike-share station KPIs from the history of station_status polls (domain-rules §6.5).

Each sample holds until the next poll, capped at `max(2·ttl, 15 min)`; beyond the cap the state is `unknown` — a
missing poll is never `empty`, nor "system down". `empty = installed ∧ renting ∧ bikes = 0`, `full = installed ∧
returning ∧ docks = 0` (a closed station is neither). Shares are time in state over known time with the station
renting (resp. returning), peak and off-peak apart. An outage episode is a maximal run of `empty` (or `full`), first
sample in → first sample out (exact to one poll); a run cut by `unknown` ends where the last sample's hold ends and
is marked `censored`. It is a violation when longer than the contract threshold of the window it started in
(Citi Bike: 60 min Mon–Fri 08:00–20:00, 120 min otherwise), with the neighbour-exemption flag when the nearest
station was in the same state when the threshold was passed. Flows are lower bounds from count deltas; a jump of
at least max(5, capacity/3) bikes within 15 min is a rebalancing candidate, counted apart from the flows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec

EMPTY, FULL, OK, CLOSED, UNKNOWN = "empty", "full", "ok", "closed", "unknown"


class BikeShareSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`[bikeshare]`: every number with its source (domain-rules §6.5)."""

    # hold a sample until the next poll, capped at max(ttl_factor·ttl, hold_min_s), then unknown [U, §6.5]
    hold_min_s: float = 900.0
    hold_ttl_factor: float = 2.0
    # Citi Bike (NYC Comptroller): peak Mon–Fri 08:00–20:00 after 60 min; off-peak after 120 min [S]
    peak_weekdays: list[int] = msgspec.field(default_factory=lambda: [0, 1, 2, 3, 4])  # Monday = 0
    peak_start_hour: float = 8.0
    peak_end_hour: float = 20.0
    peak_limit_s: float = 3600.0
    offpeak_limit_s: float = 7200.0
    # "unless the next closest station in any direction is also full or empty at the same time" [S]
    neighbour_exemption: bool = True
    # rebalancing candidate: |Δ| ≥ max(min_delta, capacity·capacity_share) within max_gap_s [U, §6.5]
    rebalance_min_delta: int = 5
    rebalance_capacity_share: float = 1 / 3
    rebalance_max_gap_s: float = 900.0
    # detectors: a station empty (full) longer than this raises mobility.station_empty (_full); default the Citi
    # Bike peak threshold [S]
    empty_alert_s: float = 3600.0
    full_alert_s: float = 3600.0
    # a feed whose last_updated is older than this at a poll is stale: §6.1 "in no case more than 5 minutes
    # out-of-date" [S]; a feed failing this many polls in a row, or silent this long, is failing [U]
    feed_stale_s: float = 300.0
    feed_failed_polls: int = 3
    feed_silent_s: float = 1800.0


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # poll time (POSIX s)
    bikes: int
    docks: int | None = None
    installed: bool = True
    renting: bool = True
    returning: bool = True


def state_of(s: Sample) -> str:
    if not s.installed or (not s.renting and not s.returning):
        return CLOSED
    if s.renting and s.bikes == 0:
        return EMPTY
    if s.returning and s.docks == 0:
        return FULL
    return OK


def hold_cap(ttl: float, s: BikeShareSettings) -> float:
    return max(s.hold_ttl_factor * ttl, s.hold_min_s)


@dataclass(frozen=True, slots=True)
class Interval:
    start: float
    end: float
    state: str
    sample: Sample | None  # None when unknown


def timeline(samples: Sequence[Sample], cap: float, until: float | None = None) -> list[Interval]:
    """The station's states over time: each sample held until the next (at most `cap`), unknown beyond."""
    out: list[Interval] = []
    for i, s in enumerate(samples):
        nxt = samples[i + 1].t if i + 1 < len(samples) else (until if until is not None else s.t + cap)
        end = min(nxt, s.t + cap)
        if end > s.t:
            out.append(Interval(s.t, end, state_of(s), s))
        if nxt > end:
            out.append(Interval(end, nxt, UNKNOWN, None))
    return out


@dataclass(frozen=True, slots=True)
class Episode:
    state: str  # EMPTY or FULL
    start: float
    end: float
    censored: bool  # cut by unknown time: the true end is not known
    peak: bool  # started in the peak window
    violation: bool = False
    exempt: bool = False  # the nearest station was in the same state when the threshold was passed

    @property
    def duration_s(self) -> float:
        return self.end - self.start


class Windows:
    """The contract's peak window in the city's local time."""

    def __init__(self, s: BikeShareSettings, timezone: str = "Europe/Paris") -> None:
        self.s, self.tz = s, ZoneInfo(timezone)

    def peak(self, t: float) -> bool:
        d = datetime.fromtimestamp(t, UTC).astimezone(self.tz)
        h = d.hour + d.minute / 60 + d.second / 3600
        return d.weekday() in self.s.peak_weekdays and self.s.peak_start_hour <= h < self.s.peak_end_hour

    def limit(self, t: float) -> float:
        return self.s.peak_limit_s if self.peak(t) else self.s.offpeak_limit_s


def episodes(intervals: Sequence[Interval], windows: Windows) -> list[Episode]:
    """Maximal runs of empty and of full, with their violation flag (exemption left to `exemptions`)."""
    out: list[Episode] = []
    run: list[Interval] = []

    def close(censored: bool) -> None:
        if run:
            start, end = run[0].start, run[-1].end
            out.append(Episode(run[0].state, start, end, censored, windows.peak(start),
                               violation=end - start > windows.limit(start)))
            run.clear()

    for iv in intervals:
        if run and iv.state != run[0].state:
            close(iv.state == UNKNOWN)
        if iv.state in (EMPTY, FULL):
            run.append(iv)
    close(True)  # still running at the end of the history
    return out


def state_at(intervals: Sequence[Interval], t: float) -> str:
    lo, hi = 0, len(intervals)
    while lo < hi:
        mid = (lo + hi) // 2
        if intervals[mid].end <= t:
            lo = mid + 1
        else:
            hi = mid
    return intervals[lo].state if lo < len(intervals) and intervals[lo].start <= t else UNKNOWN


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between (lat, lon) points (haversine, R = 6,371 km)."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def nearest(positions: dict[str, tuple[float, float]]) -> dict[str, str]:
    """Each station's nearest other station (the contract's "next closest station in any direction")."""
    out = {}
    for sid, p in positions.items():
        best = min(((distance_m(p, q), other) for other, q in positions.items() if other != sid), default=None)
        if best is not None:
            out[sid] = best[1]
    return out


def exemptions(by_station: dict[str, list[Episode]], timelines: dict[str, list[Interval]],
               positions: dict[str, tuple[float, float]], windows: Windows) -> dict[str, list[Episode]]:
    """Violations flagged `exempt` when the nearest station was in the same state when the threshold passed."""
    near = nearest(positions) if windows.s.neighbour_exemption else {}
    out = {}
    for sid, eps in by_station.items():
        other = near.get(sid)
        out[sid] = [replace(e, exempt=True) if e.violation and other is not None and state_at(
            timelines.get(other, []), e.start + windows.limit(e.start)) == e.state else e for e in eps]
    return out


@dataclass(slots=True)
class Flows:
    departures_lb: int = 0
    arrivals_lb: int = 0
    rebalancing: list[tuple[float, int]] = field(default_factory=list)  # (time, Δ) of candidate jumps


def flows(samples: Sequence[Sample], cap: float, capacity: int | None, s: BikeShareSettings) -> Flows:
    """Lower-bound departures and arrivals from consecutive known samples (a take and a return between two polls
    cancel); rebalancing candidates apart."""
    out = Flows()
    jump = max(s.rebalance_min_delta, (capacity or 0) * s.rebalance_capacity_share)
    for a, b in itertools.pairwise(samples):
        gap = b.t - a.t
        if gap > cap:
            continue  # an unknown stretch: no delta across it
        d = b.bikes - a.bikes
        if abs(d) >= jump and gap <= s.rebalance_max_gap_s:
            out.rebalancing.append((b.t, d))
        elif d > 0:
            out.arrivals_lb += d
        else:
            out.departures_lb -= d
    return out


@dataclass(slots=True)
class Shares:
    empty_share: float | None
    full_share: float | None
    empty_share_peak: float | None
    full_share_peak: float | None
    known_s: float
    unknown_s: float


def shares(intervals: Sequence[Interval], windows: Windows, step_s: float = 60.0) -> Shares:
    """Empty and full shares of known time (renting, resp. returning), all day and in the peak window (peak time
    counted per `step_s` slice)."""
    acc = {k: 0.0 for k in ("renting", "returning", "empty", "full", "renting_p", "returning_p", "empty_p",
                            "full_p", "known", "unknown")}
    for iv in intervals:
        length = iv.end - iv.start
        if iv.sample is None:
            acc["unknown"] += length
            continue
        acc["known"] += length
        peak = _peak_seconds(iv.start, iv.end, windows, step_s)
        ok = iv.sample.installed
        if ok and iv.sample.renting:
            acc["renting"] += length
            acc["renting_p"] += peak
        if ok and iv.sample.returning:
            acc["returning"] += length
            acc["returning_p"] += peak
        if iv.state == EMPTY:
            acc["empty"] += length
            acc["empty_p"] += peak
        elif iv.state == FULL:
            acc["full"] += length
            acc["full_p"] += peak

    def ratio(a: str, b: str) -> float | None:
        return round(acc[a] / acc[b], 6) if acc[b] > 0 else None

    return Shares(ratio("empty", "renting"), ratio("full", "returning"), ratio("empty_p", "renting_p"),
                  ratio("full_p", "returning_p"), acc["known"], acc["unknown"])


def _peak_seconds(a: float, b: float, windows: Windows, step: float) -> float:
    total, t = 0.0, a
    while t < b:
        nxt = min(b, t + step)
        if windows.peak(t):
            total += nxt - t
        t = nxt
    return total
