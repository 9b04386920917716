"""The counter observatory (domain-rules §6.3, §6.4, §6.6, §6.7): counts from cumulative totals with reset and wrap
detection, hourly and daily series in local time (23- and 25-hour DST days), TMJA from complete months with the
number of days used, TMJO over working days without French public holidays, weekend means, hourly and weekly
profiles, morning and evening peak hours, year-on-year on a constant sample, and QARTOD-style quality flags kept
beside the raw values (never changing them).

Series are dicts {slot start (POSIX s, UTC hour): count}; a missing slot is MISSING, never 0 (§6.3).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import msgspec

HOUR = 3600
# QARTOD flags (IOOS 2015, §6.6)
PASS, NOT_EVALUATED, SUSPECT, FAIL, MISSING = 1, 2, 3, 4, 9


class CounterSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`[counters]`: every number with its source (domain-rules §6.6, §6.7)."""

    # cumulative totals wrap at 2^32 (Milesight VS133 `line_N.total_in/out` are u32, §6.7) [S-code]; a decrease
    # from the top `wrap_window` share of the range to its bottom share is a wrap, any other decrease a reset [U]
    wrap_modulus: int = 2**32
    wrap_window: float = 0.01
    # a day is valid with ≥ 22 of 24 hourly slots, all of them on DST days (§6.6 rule 2) [U]
    day_min_slots: int = 22
    # zero day SUSPECT if the same-weekday median of the last 4 weeks > 50 (§6.6 rule 4) [U]
    zero_day_median: float = 50.0
    reference_weeks: int = 4
    # spike: a day > 3 × the same-weekday median ⇒ SUSPECT (§6.6 rule 5) [U]
    spike_factor: float = 3.0
    # flat line: 4 identical non-zero hourly values SUSPECT, 6 FAIL (QARTOD flat line, §6.6 rule 6) [S]
    flat_suspect: int = 4
    flat_fail: int = 6
    # TMJO excludes public holidays (ASTRA, §6.6); the country of the `holidays` calendar
    holidays_country: str = "FR"
    # peak-hour search windows, local hours [start, end) (design [U])
    morning_hours: list[int] = msgspec.field(default_factory=lambda: [6, 10])
    evening_hours: list[int] = msgspec.field(default_factory=lambda: [16, 20])
    # detectors: a counter whose daily count is 0 while its same-weekday median is over zero_day_median raises
    # mobility.counter_zero; a reset raises mobility.counter_reset
    time_step_s: int = 3600  # a channel's slot length when the registry does not say (§6.3 `time_step`)
    day_lateness_s: float = 7200.0  # mobility.counter_zero decides a local day this long after it ends [U]


# cumulative totals ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CounterEvent:
    t: float
    kind: str  # "counter_reset" or "counter_wrap"
    previous: float
    value: float


def counts_from_totals(points: Iterable[tuple[float, float]], s: CounterSettings | None = None
                       ) -> tuple[list[tuple[float, float]], list[CounterEvent]]:
    """(time, count since the previous point) from (time, cumulative total), time-ordered: never negative. A
    decrease is a wrap (new + modulus − old) near the top of the range, else a reset (count = new, one event)."""
    s = s or CounterSettings()
    out: list[tuple[float, float]] = []
    events: list[CounterEvent] = []
    prev: float | None = None
    top, bottom = s.wrap_modulus * (1 - s.wrap_window), s.wrap_modulus * s.wrap_window
    for t, total in points:
        if prev is not None:
            if total >= prev:
                out.append((t, total - prev))
            elif prev >= top and total < bottom:
                out.append((t, total + s.wrap_modulus - prev))
                events.append(CounterEvent(t, "counter_wrap", prev, total))
            else:
                out.append((t, total))
                events.append(CounterEvent(t, "counter_reset", prev, total))
        prev = total
    return out, events


def hourly(points: Iterable[tuple[float, float]], period_end: bool = True) -> dict[int, float]:
    """Period counts summed per UTC hour slot. `period_end`: a point's time ends its period (an uplink reports
    what was counted before it), so it goes to the hour holding t − 1 s; else t starts it (§6.3 start_datetime)."""
    out: dict[int, float] = defaultdict(float)
    for t, n in points:
        slot = int((t - 1 if period_end else t) // HOUR * HOUR)
        out[slot] += n
    return dict(out)


# days ------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def day_bounds(d: date, tz: str) -> tuple[int, int]:
    z = ZoneInfo(tz)
    a = datetime(d.year, d.month, d.day, tzinfo=z).astimezone(UTC)
    n = d + timedelta(days=1)
    b = datetime(n.year, n.month, n.day, tzinfo=z).astimezone(UTC)
    return int(a.timestamp()), int(b.timestamp())


def local_day(t: float, tz: str) -> date:
    return datetime.fromtimestamp(t, UTC).astimezone(ZoneInfo(tz)).date()


@dataclass(slots=True)
class Day:
    day: date
    total: float
    slots: int
    expected: int  # 23, 24 or 25
    valid: bool
    flag: int = PASS
    reason: str = ""


def daily(hours: Mapping[int, float], tz: str = "Europe/Paris", s: CounterSettings | None = None) -> dict[date, Day]:
    """Local days from hourly slots: total, slots present of those expected, validity (§6.6 rule 2)."""
    s = s or CounterSettings()
    acc: dict[date, list[float]] = defaultdict(list)
    for slot, n in hours.items():
        acc[local_day(slot, tz)].append(n)
    out = {}
    for d, values in sorted(acc.items()):
        a, b = day_bounds(d, tz)
        expected = (b - a) // HOUR
        need = expected if expected != 24 else s.day_min_slots
        out[d] = Day(d, sum(values), len(values), expected, len(values) >= need)
    return out


def _days_in_month(y: int, m: int) -> int:
    return ((date(y + m // 12, m % 12 + 1, 1)) - date(y, m, 1)).days


@dataclass(slots=True)
class Tmja:
    value: float | None
    n_days_used: int
    months_used: list[str] = field(default_factory=list)


def usable(d: Day) -> bool:
    """A day the figures use: enough slots and not flagged SUSPECT or FAIL."""
    return d.valid and d.flag == PASS


def tmja(days: Mapping[date, Day], year: int | None = None) -> Tmja:
    """Σ volumes of complete months / Σ days of those months (SIREDO, §6.4): a month counts only when every one
    of its days is usable."""
    by_month: dict[tuple[int, int], list[Day]] = defaultdict(list)
    for d in days.values():
        if year is None or d.day.year == year:
            by_month[(d.day.year, d.day.month)].append(d)
    volume, n, used = 0.0, 0, []
    for (y, m), ds in sorted(by_month.items()):
        if len(ds) == _days_in_month(y, m) and all(usable(d) for d in ds):
            volume += sum(d.total for d in ds)
            n += len(ds)
            used.append(f"{y:04d}-{m:02d}")
    return Tmja(volume / n if n else None, n, used)


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)


def is_working_day(d: date, country: str = "FR") -> bool:
    return d.weekday() < 5 and d not in _holidays(country, d.year)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def tmjo(days: Mapping[date, Day], s: CounterSettings | None = None) -> tuple[float | None, int]:
    """Mean over usable working days, Mon–Fri without public holidays (ASTRA TJMO, §6.6); with the days used."""
    s = s or CounterSettings()
    vals = [d.total for d in days.values() if usable(d) and is_working_day(d.day, s.holidays_country)]
    return _mean(vals), len(vals)


def weekend_mean(days: Mapping[date, Day]) -> tuple[float | None, int]:
    vals = [d.total for d in days.values() if usable(d) and d.day.weekday() >= 5]
    return _mean(vals), len(vals)


def hourly_profile(hours: Mapping[int, float], days: Mapping[date, Day], tz: str = "Europe/Paris"
                   ) -> dict[int, float]:
    """Mean count per local hour (0–23) over usable days."""
    z = ZoneInfo(tz)
    acc: dict[int, list[float]] = defaultdict(list)
    for slot, n in hours.items():
        local = datetime.fromtimestamp(slot, UTC).astimezone(z)
        d = days.get(local.date())
        if d is not None and usable(d):
            acc[local.hour].append(n)
    return {h: round(sum(v) / len(v), 3) for h, v in sorted(acc.items())}


def weekly_profile(days: Mapping[date, Day]) -> dict[int, float]:
    """Mean daily count per weekday (Monday = 0) over usable days."""
    acc: dict[int, list[float]] = defaultdict(list)
    for d in days.values():
        if usable(d):
            acc[d.day.weekday()].append(d.total)
    return {w: round(sum(v) / len(v), 3) for w, v in sorted(acc.items())}


def peak_hours(profile: Mapping[int, float], s: CounterSettings | None = None) -> dict[str, int | None]:
    """The local hour with the highest mean count in the morning and in the evening windows."""
    s = s or CounterSettings()
    out: dict[str, int | None] = {}
    for name, (a, b) in (("morning", s.morning_hours), ("evening", s.evening_hours)):
        window = {h: v for h, v in profile.items() if a <= h < b}
        out[name] = max(window, key=lambda h: window[h]) if window else None
    return out


def year_on_year(this: Mapping[date, Day], previous: Mapping[date, Day]) -> dict[str, float | int | None]:
    """Growth on a constant sample (Vélo & Territoires, §6.6): days usable in both years (same weekday, 364 days
    earlier)."""
    a = b = 0.0
    n = 0
    for d, day in this.items():
        p = previous.get(d - timedelta(days=364))
        if p is not None and usable(day) and usable(p):
            a += day.total
            b += p.total
            n += 1
    return {"ratio": round(a / b, 6) if b else None, "days": n, "this": a, "previous": b}


# quality flags ---------------------------------------------------------------------------------------------------
def flag_days(days: dict[date, Day], s: CounterSettings | None = None) -> dict[date, Day]:
    """Zero-day and spike flags against the same weekday's median of the previous weeks (§6.6 rules 4, 5), and
    MISSING for days without enough slots; raw totals untouched."""
    s = s or CounterSettings()
    for d, day in sorted(days.items()):
        if not day.valid:
            day.flag, day.reason = MISSING, f"{day.slots} of {day.expected} hourly slots"
            continue
        ref = [days[p].total for k in range(1, s.reference_weeks + 1)
               if (p := d - timedelta(weeks=k)) in days and days[p].valid and days[p].total > 0]
        if not ref:
            continue
        med = statistics.median(ref)
        if day.total == 0 and med > s.zero_day_median:
            day.flag, day.reason = SUSPECT, f"zero day (same-weekday median {med:.0f})"
        elif med > 0 and day.total > s.spike_factor * med:
            day.flag, day.reason = SUSPECT, f"spike: {day.total:.0f} > {s.spike_factor:g} × median {med:.0f}"
    return days


def flag_hours(hours: Mapping[int, float], s: CounterSettings | None = None) -> dict[int, tuple[int, str]]:
    """Per present slot: FAIL / SUSPECT on flat lines of identical non-zero values, PASS otherwise; missing slots
    between the first and the last are MISSING (§6.6 rules 4, 6)."""
    s = s or CounterSettings()
    if not hours:
        return {}
    slots = sorted(hours)
    out: dict[int, tuple[int, str]] = {t: (MISSING, "no data") for t in range(slots[0], slots[-1] + HOUR, HOUR)}
    run: list[int] = []
    for t in slots:
        v = hours[t]
        if run and (t - run[-1] != HOUR or hours[run[-1]] != v or v == 0):
            run = []
        if v == 0:
            out[t] = (PASS, "")
            continue
        run.append(t)
        out[t] = (PASS, "")
        if len(run) >= s.flat_suspect:
            flag = FAIL if len(run) >= s.flat_fail else SUSPECT
            for r in run:
                out[r] = (max(out[r][0], flag) if out[r][0] != MISSING else flag, f"flat line of {len(run)}")
    return out
