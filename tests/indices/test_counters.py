"""The counter observatory: TMJA on a synthetic year, TMJO without holidays, resets, DST, flags (issue 12)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from clapas.indices.counters import (
    FAIL,
    MISSING,
    PASS,
    SUSPECT,
    CounterSettings,
    counts_from_totals,
    daily,
    flag_days,
    flag_hours,
    hourly_profile,
    peak_hours,
    tmja,
    tmjo,
    weekend_mean,
    year_on_year,
)

TZ = "Europe/Paris"
Z = ZoneInfo(TZ)


def year_hours(year: int, per_hour, skip=lambda d, h: False) -> dict[int, float]:
    """Hourly slots of a local year (UTC hour starts), count from `per_hour(local datetime)`."""
    out = {}
    t = int(datetime(year, 1, 1, tzinfo=Z).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=Z).timestamp())
    while t < end:
        loc = datetime.fromtimestamp(t, UTC).astimezone(Z)
        if not skip(loc.date(), loc.hour):
            out[t] = per_hour(loc)
        t += 3600
    return out


def test_tmja_is_the_complete_month_formula_on_a_year_with_two_incomplete_months():
    def count(loc):  # varies by month and weekday so that a wrong formula shows
        return float(loc.month * 10 + loc.weekday() + (loc.hour % 5))

    hours = year_hours(2025, count, skip=lambda d, h: (d.month == 3 and d.day == 10)  # a whole day missing
                       or (d.month == 8 and d.day == 14 and h < 5))  # 5 slots missing: invalid day
    days = daily(hours, TZ)
    r = tmja(days)
    used = [m for m in range(1, 13) if m not in (3, 8)]
    volume = sum(v for t, v in hours.items() if datetime.fromtimestamp(t, UTC).astimezone(Z).month in used)
    n = sum((date(2025, m % 12 + 1, 1) if m < 12 else date(2026, 1, 1)) .toordinal() - date(2025, m, 1).toordinal()
            for m in used)
    assert r.n_days_used == n == 365 - 31 - 31
    assert r.value == volume / n
    assert r.months_used == [f"2025-{m:02d}" for m in used]


def test_dst_days_have_23_and_25_hourly_slots():
    days = daily(year_hours(2025, lambda loc: 1.0), TZ)
    assert days[date(2025, 3, 30)].expected == 23 and days[date(2025, 3, 30)].total == 23
    assert days[date(2025, 10, 26)].expected == 25 and days[date(2025, 10, 26)].total == 25
    assert all(d.valid for d in days.values())


def test_a_public_holiday_is_out_of_tmjo():
    # May 2026: Fri 1 (fête du Travail), Fri 8 (Victoire 1945), Thu 14 (Ascension), Mon 25 (lundi de Pentecôte)
    def count(loc):
        return 100.0 if loc.date() in (date(2026, 5, 1), date(2026, 5, 8), date(2026, 5, 14),
                                  date(2026, 5, 25)) else 10.0

    hours = {t: v for t, v in year_hours(2026, count).items()
             if datetime.fromtimestamp(t, UTC).astimezone(Z).month == 5}
    days = daily(hours, TZ)
    value, n = tmjo(days)
    working = [d for d in days if d.weekday() < 5]
    assert n == len(working) - 4
    assert value == 240.0  # 24 slots × 10: no holiday counted
    assert weekend_mean(days) == (240.0, sum(d.weekday() >= 5 for d in days))


def test_a_reset_gives_no_negative_count_and_one_reset_event():
    totals = [(0, 100.0), (3600, 130.0), (7200, 12.0), (10800, 40.0)]
    counts, events = counts_from_totals(totals)
    assert [c for _, c in counts] == [30.0, 12.0, 28.0]
    assert [e.kind for e in events] == ["counter_reset"]
    wrapped, ev = counts_from_totals([(0, 2**32 - 5.0), (3600, 10.0)])
    assert wrapped == [(3600, 15.0)] and ev[0].kind == "counter_wrap"


def test_quality_flags_beside_raw_values():
    s = CounterSettings()
    hours = year_hours(2026, lambda loc: 10.0 + loc.hour % 3)
    hours = {t: v for t, v in hours.items() if t < datetime(2026, 2, 15, tzinfo=Z).timestamp()}
    feb5 = datetime(2026, 2, 5, tzinfo=Z).timestamp()  # a Thursday
    feb12 = feb5 + 7 * 86400
    for k in range(24):
        hours[int(feb5 + k * 3600)] = 0.0  # zero day
        hours[int(feb12 + k * 3600)] = 80.0 if k < 12 else 0.0  # flat line of 12, and a spike day
    raw = dict(hours)
    days = flag_days(daily(hours, TZ), s)
    assert days[date(2026, 2, 5)].flag == SUSPECT and "zero day" in days[date(2026, 2, 5)].reason
    assert days[date(2026, 2, 12)].flag == SUSPECT and "spike" in days[date(2026, 2, 12)].reason
    assert days[date(2026, 2, 4)].flag == PASS
    flags = flag_hours(hours, s)
    assert flags[int(feb12)][0] == FAIL
    del hours[int(feb5 - 3600)]
    assert flag_hours(hours, s)[int(feb5 - 3600)][0] == MISSING
    assert {t: v for t, v in raw.items() if t in hours} == hours  # raw values never changed
    prof = hourly_profile(hours, days, TZ)
    assert set(peak_hours(prof)) == {"morning", "evening"}


def test_year_on_year_on_a_constant_sample():
    this = daily({int((datetime(2026, 6, 1, tzinfo=Z) + timedelta(hours=h)).timestamp()): 2.0
                  for h in range(24 * 14)}, TZ)
    prev = daily({int((datetime(2025, 6, 2, tzinfo=Z) + timedelta(hours=h)).timestamp()): 1.0
                  for h in range(24 * 7)}, TZ)
    yoy = year_on_year(this, prev)
    assert yoy["days"] == 7 and yoy["ratio"] == 2.0
