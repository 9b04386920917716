"""Heat indices on worked examples: Tn/Tx over local days, IBM means across a month boundary, the day's state (peak
vs heatwave), the NWS heat index against the NWS table and both adjustment branches, Humidex, heat/cool islands."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from clapas.indices.heat import (
    DEPARTMENT_THRESHOLDS,
    EXTREME,
    HEATWAVE,
    NONE,
    PEAK,
    UNAVAILABLE,
    DailyExtremes,
    HeatSettings,
    daily_extremes,
    despike,
    dew_point_c,
    heat_index_c,
    heat_index_category,
    heat_index_f,
    heat_states,
    humidex,
    humidex_category,
    humidex_from_rh,
    ibm,
    ibm_window,
    park_cool_island,
    uhi_intensity,
    utci_c,
    utci_category,
    wind_at_10m,
)

PARIS = ZoneInfo("Europe/Paris")


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS).timestamp()


def test_thresholds_table() -> None:
    assert DEPARTMENT_THRESHOLDS["34"].ibmn_c == 22 and DEPARTMENT_THRESHOLDS["34"].ibmx_c == 35
    assert {k: (v.ibmn_c, v.ibmx_c) for k, v in DEPARTMENT_THRESHOLDS.items()} == {
        "34": (22, 35), "30": (23, 36), "13": (24, 35), "75": (21, 31), "69": (20, 34), "22": (18, 31),
        "03": (18, 34)}
    assert HeatSettings().thresholds().name == "Hérault"


def test_ibm_across_month_boundary() -> None:
    tn = {date(2025, 7, 30): 21.0, date(2025, 7, 31): 23.0, date(2025, 8, 1): 25.0, date(2025, 8, 2): 26.0}
    assert ibm_window(date(2025, 8, 1)) == (date(2025, 7, 30), date(2025, 7, 31), date(2025, 8, 1))
    assert ibm(tn, date(2025, 8, 1)) == pytest.approx(23.0)
    assert ibm(tn, date(2025, 8, 2)) == pytest.approx(74.0 / 3)
    assert ibm(tn, date(2025, 7, 31)) is None  # 29 July missing
    assert ibm(tn, date(2025, 7, 31), alignment="centred") == pytest.approx(23.0)
    assert ibm(tn, date(2025, 7, 30), alignment="leading") == pytest.approx(23.0)
    assert ibm_window(date(2025, 1, 1)) == (date(2024, 12, 30), date(2024, 12, 31), date(2025, 1, 1))


def hourly_day(d: date, tn: float, tx: float) -> list[tuple[float, float]]:
    """24 hourly readings of a local day: minimum at 05:00, maximum at 15:00."""
    out = []
    for h in range(24):
        v = tn + (tx - tn) * (1 - math.cos(math.pi * (h - 5) / 10)) / 2 if 5 <= h <= 15 else (tn + tx) / 2
        out.append((local(d.year, d.month, d.day, h, 30), v))
    out[5] = (out[5][0], tn)
    return out


def test_daily_extremes_over_local_days_and_month_boundary() -> None:
    rows = hourly_day(date(2025, 7, 31), 23.0, 36.0) + hourly_day(date(2025, 8, 1), 24.0, 37.0)
    days = daily_extremes(rows)
    assert days[date(2025, 7, 31)] == DailyExtremes(date(2025, 7, 31), 23.0, 36.0)
    assert days[date(2025, 8, 1)] == DailyExtremes(date(2025, 8, 1), 24.0, 37.0)
    # 31 July 23:30 local is 21:30 UTC: still 31 July.
    assert datetime.fromtimestamp(rows[23][0], PARIS).date() == date(2025, 7, 31)


def test_daily_extremes_sub_hourly_and_coverage() -> None:
    d = date(2025, 7, 10)
    rows = [(local(2025, 7, 10, h, m), 25.0 + h / 10 + m / 1000) for h in range(24) for m in (0, 10, 20, 30, 40, 50)]
    assert daily_extremes(rows)[d] == DailyExtremes(d, 25.0, 25.0 + 2.3 + 0.05)
    sparse = [r for r in rows if datetime.fromtimestamp(r[0], PARIS).hour < 12]  # 12 hours covered
    assert daily_extremes(sparse)[d] == DailyExtremes(d, None, None)


def test_tn_tx_windows_are_settings() -> None:
    # Tn 18 UTC D−1 → 18 UTC D: a reading at 19:00 UTC on 9 July counts for 10 July's Tn.
    s = HeatSettings(window_timezone="UTC", tn_offset_h=-6, tx_offset_h=6, min_hours_covered=1)
    t = datetime(2025, 7, 9, 19, tzinfo=ZoneInfo("UTC")).timestamp()
    days = daily_extremes([(t, 18.0)], s)
    assert days[date(2025, 7, 10)].tn == 18.0
    assert days[date(2025, 7, 9)].tx == 18.0  # Tx window of 9 July runs to 06 UTC on 10 July


# Worked example (Hérault, 22/35 °C), across the June/July boundary, trailing IBM window:
#   day      Tn  Tx   IBMn   IBMx   state
#   28 Jun   19  30   -      -      unavailable (no window yet)
#   29 Jun   19  31   -      -      unavailable
#   30 Jun   23  36   20.33  32.33  heat peak (the day's Tn, Tx above; IBMs below)
#   1 Jul    24  37   22.00  34.67  heat peak (IBMn reached, IBMx not)
#   2 Jul    23  37   23.33  36.67  heatwave conditions met
#   3 Jul    20  33   22.33  35.67  heatwave conditions met (2nd day in a row)
#   4 Jul    18  30   20.33  33.33  none
WORKED = {
    date(2025, 6, 28): (19, 30), date(2025, 6, 29): (19, 31), date(2025, 6, 30): (23, 36), date(2025, 7, 1): (24, 37),
    date(2025, 7, 2): (23, 37), date(2025, 7, 3): (20, 33), date(2025, 7, 4): (18, 30),
}


def worked() -> dict[date, DailyExtremes]:
    return {d: DailyExtremes(d, float(n), float(x)) for d, (n, x) in WORKED.items()}


def test_states_on_worked_example() -> None:
    days = heat_states(worked())
    assert [d.state for d in days] == [UNAVAILABLE, UNAVAILABLE, PEAK, PEAK, HEATWAVE, HEATWAVE, NONE]
    jul1, jul2, jul3 = days[3], days[4], days[5]
    assert jul1.ibmn == pytest.approx(22.0) and jul1.ibmx == pytest.approx(104 / 3)
    assert jul2.ibmn == pytest.approx(70 / 3) and jul2.ibmx == pytest.approx(110 / 3)
    assert jul2.window == (date(2025, 6, 30), date(2025, 7, 1), date(2025, 7, 2))
    assert (jul2.ibmn_threshold, jul2.ibmx_threshold) == (22.0, 35.0)
    assert (jul2.run_days, jul3.run_days, days[6].run_days) == (1, 2, 0)


def test_states_depend_on_department() -> None:
    # Gard (23/36): 3 July's IBMn 22.33 is below 23 → not a heatwave day there.
    days = heat_states(worked(), HeatSettings(department="30"))
    assert days[4].state == HEATWAVE and days[5].state == NONE


def test_extreme_only_when_configured() -> None:
    assert EXTREME not in {d.state for d in heat_states(worked())}
    by_length = heat_states(worked(), HeatSettings(extreme_min_days=2))
    assert [d.state for d in by_length][4:6] == [HEATWAVE, EXTREME]
    by_excess = heat_states(worked(), HeatSettings(extreme_excess_c=1.3))
    assert [d.state for d in by_excess][4:6] == [EXTREME, HEATWAVE]  # 2 Jul: +1.33/+1.67; 3 Jul: +0.33


def test_missing_day_makes_the_ibm_unavailable() -> None:
    days = worked()
    days[date(2025, 7, 1)] = DailyExtremes(date(2025, 7, 1), None, 37.0)
    states = {d.day: d.state for d in heat_states(days)}
    assert states[date(2025, 7, 1)] == UNAVAILABLE
    assert states[date(2025, 7, 2)] == PEAK  # its own Tx is hot, its IBM cannot be computed
    assert states[date(2025, 7, 4)] == NONE


@pytest.mark.parametrize(
    ("t_f", "rh", "nws_table"),
    [(90, 60, 100), (90, 40, 91), (80, 40, 80), (96, 50, 108), (98, 50, 113), (84, 90, 98), (86, 90, 105),
     (80, 90, 86)],
)
def test_heat_index_against_nws_table(t_f: float, rh: float, nws_table: float) -> None:
    assert round(heat_index_f(t_f, rh)) == pytest.approx(nws_table, abs=1)


def rothfusz(t: float, rh: float) -> float:
    return (-42.379 + 2.04901523 * t + 10.14333127 * rh - 0.22475541 * t * rh - 6.83783e-3 * t * t
            - 5.481717e-2 * rh * rh + 1.22874e-3 * t * t * rh + 8.5282e-4 * t * rh * rh - 1.99e-6 * t * t * rh * rh)


def test_heat_index_low_rh_adjustment_uses_the_nws_form() -> None:
    nws = ((13 - 10) / 4) * math.sqrt((17 - abs(100 - 95)) / 17)  # 0.630
    thermofeel_bug = ((13 - 10) / 4) * math.sqrt(17 - abs(100 - 95) / 17)  # 3.07
    assert heat_index_f(100, 10) == pytest.approx(rothfusz(100, 10) - nws)
    assert heat_index_f(100, 10) != pytest.approx(rothfusz(100, 10) - thermofeel_bug)
    assert heat_index_f(112, 10) == pytest.approx(rothfusz(112, 10))  # outside 80 < T < 112


def test_heat_index_high_rh_adjustment() -> None:
    assert heat_index_f(85, 90) == pytest.approx(rothfusz(85, 90) + ((90 - 85) / 10) * ((87 - 85) / 5))
    assert heat_index_f(88, 90) == pytest.approx(rothfusz(88, 90))  # outside 80 < T < 87


def test_heat_index_simple_formula_below_80() -> None:
    assert heat_index_f(70, 50) == pytest.approx(0.5 * (70 + 61 + 2 * 1.2 + 0.094 * 50))
    assert heat_index_c(32.2222, 60) == pytest.approx((heat_index_f(90, 60) - 32) * 5 / 9, abs=1e-3)


def test_heat_index_categories() -> None:
    assert [heat_index_category(x) for x in (79.9, 80, 90, 102.9, 103, 124.9, 125)] == [
        None, "caution", "extreme caution", "extreme caution", "danger", "danger", "extreme danger"]


def test_humidex_canadian_reference() -> None:
    assert humidex(30.0, 15.0) == pytest.approx(33.98, abs=0.01)  # Canadian table: 34
    assert round(humidex(30.0, 15.0)) == 34
    assert dew_point_c(30.0, 100.0) == pytest.approx(30.0)
    rh = 100 * math.exp(17.625 * 15 / (243.04 + 15) - 17.625 * 30 / (243.04 + 30))  # RH whose dew point is 15 °C
    assert dew_point_c(30.0, rh) == pytest.approx(15.0)
    assert humidex_from_rh(30.0, rh) == pytest.approx(humidex(30.0, 15.0))


def test_humidex_categories() -> None:
    assert [humidex_category(h) for h in (19, 20, 30, 40, 45, 45.1, 54)] == [
        None, "little discomfort", "some discomfort", "great discomfort", "great discomfort", "dangerous",
        "heat stroke imminent"]


def series(start: datetime, hours: int, f: Callable[[datetime], float]) -> list[tuple[float, float]]:
    return [((start + timedelta(hours=h)).timestamp(), f(start + timedelta(hours=h))) for h in range(hours)]


def test_uhi_and_park_cool_island_by_day_and_night() -> None:
    start = datetime(2025, 7, 10, 0, tzinfo=PARIS)
    rural = series(start, 48, lambda t: 20.0)
    urban = series(start, 48, lambda t: 20.5 if 7 <= t.hour < 19 else 23.0)  # stronger at night
    out = {(x.day, x.period): x for x in uhi_intensity(urban, rural)}
    assert out[(date(2025, 7, 10), "day")].mean == pytest.approx(0.5) and out[(date(2025, 7, 10), "day")].hours == 12
    night = out[(date(2025, 7, 10), "night")]  # 10 July 19:00 → 11 July 07:00
    assert night.mean == pytest.approx(3.0) and night.hours == 12
    assert (date(2025, 7, 9), "night") in out  # the early hours of 10 July: 7 of them
    assert (date(2025, 7, 11), "night") not in out  # 19:00–24:00 only: 5 hours < 6
    park = series(start, 48, lambda t: 19.0 if 7 <= t.hour < 19 else 21.5)
    pci = {(x.day, x.period): x.mean for x in park_cool_island(urban, park)}
    assert pci[(date(2025, 7, 10), "day")] == pytest.approx(1.5)
    assert pci[(date(2025, 7, 10), "night")] == pytest.approx(1.5)


# UTCI: the reference values of the utci.org operational procedure's table as published with pythermalcomfort's
# validation (Ta, Tmrt, RH, v10 → UTCI, one decimal), and the utci.org online calculator's example
# (Ta 20 °C, RH 50 %, v10 2.94 m/s, Tmrt 25 °C → 17.9 °C).
@pytest.mark.parametrize(("ta", "tmrt", "rh", "v10", "expected"), [
    (25, 27, 50, 1, 25.2),
    (19, 24, 50, 1, 20.0),
    (19, 14, 50, 1, 16.8),
    (27, 22, 50, 1, 25.5),
    (27, 22, 50, 10, 20.0),
    (27, 22, 50, 16, 15.8),
    (25, 25, 50, 1, 24.6),
    (20, 25, 50, 2.94, 17.9),
])
def test_utci_reference_values(ta: float, tmrt: float, rh: float, v10: float, expected: float) -> None:
    assert utci_c(ta, rh, v10, tmrt) == pytest.approx(expected, abs=0.1)


def test_utci_validity_and_defaults() -> None:
    assert utci_c(51, 50, 16, 22) is None  # Ta above 50 °C
    assert utci_c(27, 50, 18, 27) is None  # wind above 17 m/s
    assert utci_c(20, 50, 2, 95) is None  # Tmrt − Ta above 70 °C
    assert utci_c(30, 50, 2) == utci_c(30, 50, 2, 30)  # Tmrt defaults to the air temperature (shade)
    assert utci_c(30, 50, 0.0) == utci_c(30, 50, 0.5)  # calm taken at the polynomial's 0.5 m/s
    assert utci_c(30, 50, 0.5) != utci_c(30, 50, 1.0)


def test_utci_categories() -> None:
    assert utci_category(46.5) == "extreme heat stress"
    assert utci_category(40) == "very strong heat stress"
    assert utci_category(33) == "strong heat stress"
    assert utci_category(27) == "moderate heat stress"
    assert utci_category(20) == "no thermal stress"
    assert utci_category(5) == "slight cold stress"
    assert utci_category(-45) == "extreme cold stress"


def test_wind_to_10m_log_law() -> None:
    assert wind_at_10m(3.0, 10.0) == 3.0
    # z0 = 0.01 m: a 2 m anemometer reads log10(200)/log10(1000) of the 10 m wind
    assert wind_at_10m(2.0, 2.0) == pytest.approx(2.0 * 3 / math.log10(200))


def test_despike_drops_isolated_spikes_only() -> None:
    rows = [(0.0, 20.0), (600.0, 20.2), (1200.0, 27.0), (1800.0, 20.4), (2400.0, 20.5)]
    assert despike(rows, 4.0, 3600) == [r for r in rows if r[1] != 27.0]
    front = [(0.0, 20.0), (600.0, 26.0), (1200.0, 26.5)]  # a real jump stays: the next reading agrees
    assert despike(front, 4.0, 3600) == front
    far = [(0.0, 20.0), (7200.0, 27.0), (14400.0, 20.0)]  # neighbours too far apart to judge
    assert despike(far, 4.0, 3600) == far
    assert despike(list(reversed(rows[:2])), 4.0, 3600) == rows[:2]  # sorted
