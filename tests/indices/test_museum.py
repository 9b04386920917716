"""Museum climate on known series: the EN 15757 moving average and band edges, the ±10 %RH floor, absolute limits,
breach episodes with debounce, the 24-hour fluctuation and mould-risk runs."""

from __future__ import annotations

import math
import statistics

import pytest

from clapas.indices.museum import (
    ASHRAE_CLASSES,
    BIZOT,
    DAY_S,
    HOUR_S,
    MuseumSettings,
    band_limits,
    band_limits_of,
    breach_episodes,
    centred_moving_average,
    constant_limits,
    historic_band,
    max_fluctuation,
    mould_risk_hours,
    mould_runs,
    percentile,
)

T0 = 1_735_689_600.0  # 2025-01-01 00:00 UTC
# A residual pattern of period 31 days: each of −15..15 once per period (7 is coprime with 31), so every 31-day
# window (±15 days, both ends inclusive, daily readings) holds the whole pattern and its mean is exactly 0.
PATTERN = [(7 * i) % 31 - 15 for i in range(31)]


def daily(n: int, seasonal, scale: float = 1.0) -> list[tuple[float, float]]:
    return [(T0 + i * DAY_S, seasonal(i) + scale * PATTERN[i % 31]) for i in range(n)]


def test_classes_as_data() -> None:
    assert list(ASHRAE_CLASSES) == ["AA", "A1", "A2", "B", "C", "D"]
    assert (ASHRAE_CLASSES["A2"].rh_short_pm, ASHRAE_CLASSES["A2"].rh_season_up) == (10, 0)
    assert (ASHRAE_CLASSES["C"].rh_min, ASHRAE_CLASSES["C"].rh_max, ASHRAE_CLASSES["D"].rh_max) == (25, 75, 75)
    assert (BIZOT.rh_min, BIZOT.rh_max, BIZOT.t_min_c, BIZOT.t_max_c) == (40, 60, 16, 25)


def test_percentile_is_type_7() -> None:
    xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    q = statistics.quantiles(xs, n=100, method="inclusive")
    assert percentile(xs, 7) == pytest.approx(q[6]) and percentile(xs, 93) == pytest.approx(q[92])
    assert percentile(xs, 0) == 1.0 and percentile(xs, 100) == 9.0


def test_band_edges_exact_on_a_known_residual_distribution() -> None:
    # 31·12 readings with a full window: the residuals are −15..15, each 12 times. Type-7 percentiles:
    # p7 at rank 371·0.07 = 25.97 → between the 26th and 27th values, both −13; p93 at 345.03 → 13 and 13.
    rows = daily(31 * 12 + 30, lambda i: 50.0)
    band = historic_band(rows)
    assert band.moving_average[:15] == [None] * 15 and band.moving_average[-15:] == [None] * 15
    assert all(m == pytest.approx(50.0, abs=1e-12) for m in band.moving_average[15:-15])
    assert (band.p_low, band.p_high) == pytest.approx((-13.0, 13.0))
    assert (band.lower, band.upper, band.floor_applied) == (band.p_low, band.p_high, False)


def test_band_on_a_sinusoidal_seasonal_cycle() -> None:
    # Seasonal cycle 50 + 10·sin(ωi), ω = 2π/365 per day. A centred mean of 31 daily samples of a sinusoid is the
    # sinusoid times the Dirichlet factor k = sin(31ω/2) / (31·sin(ω/2)): the moving average is known exactly,
    # and so are the residuals, noise + 10·(1 − k)·sin(ωi).
    w = 2 * math.pi / 365
    k = math.sin(31 * w / 2) / (31 * math.sin(w / 2))
    rows = daily(3 * 365, lambda i: 50.0 + 10.0 * math.sin(w * i), scale=0.8)
    band = historic_band(rows)
    for i in range(15, len(rows) - 15):
        assert band.moving_average[i] == pytest.approx(50.0 + 10.0 * k * math.sin(w * i), abs=1e-9)
    expected = [0.8 * PATTERN[i % 31] + 10.0 * (1 - k) * math.sin(w * i) for i in range(15, len(rows) - 15)]
    q = statistics.quantiles(expected, n=100, method="inclusive")
    assert band.p_low == pytest.approx(q[6], abs=1e-9) and band.p_high == pytest.approx(q[92], abs=1e-9)
    assert band.p_low == pytest.approx(-0.8 * 13, abs=0.15)  # the seasonal leak is small


def test_ten_percent_floor() -> None:
    narrow = historic_band(daily(31 * 12 + 30, lambda i: 50.0, scale=0.2))  # residuals −3..3 → ±2.6
    assert (narrow.p_low, narrow.p_high) == pytest.approx((-2.6, 2.6))
    assert (narrow.lower, narrow.upper, narrow.floor_applied) == (-10.0, 10.0, True)
    # One side wider than 10: only the narrow side is widened.
    # Negative residuals halved: the 31-day mean moves up by 60/31, residuals are known: p93 = 13 − 60/31 = 11.06.
    skewed = [(T0 + i * DAY_S, 50.0 + (0.5 * p if p < 0 else p)) for i in range(31 * 12 + 30)
              for p in [PATTERN[i % 31]]]
    band = historic_band(skewed)
    assert band.p_low == pytest.approx(-6.5 - 60 / 31) and band.p_high == pytest.approx(13 - 60 / 31)
    assert (band.lower, band.upper, band.floor_applied) == (-10.0, band.p_high, True)
    off = historic_band(daily(31 * 12 + 30, lambda i: 50.0, scale=0.2), MuseumSettings(min_half_band=None))
    assert off.lower == pytest.approx(-2.6) and not off.floor_applied


def test_absolute_limits_clip_the_band() -> None:
    band = historic_band(daily(31 * 12 + 30, lambda i: 50.0, scale=0.2))
    assert band_limits(70.0, band) == (60.0, 75.0)
    assert band_limits(35.0, band) == (30.0, 45.0)


def test_not_enough_data() -> None:
    with pytest.raises(ValueError):
        historic_band(daily(20, lambda i: 50.0))
    assert centred_moving_average([(0.0, 1.0), (DAY_S, 3.0)], require_full_window=False) == [2.0, 2.0]


def ten_minutes(values: list[float], start: float = T0) -> list[tuple[float, float]]:
    return [(start + i * 600.0, v) for i, v in enumerate(values)]


def test_breach_episodes_with_debounce() -> None:
    values = [50] * 6 + [65] + [50] * 6 + [61, 63, 67, 62, 61, 62, 63, 61] + [50] * 3 + [35] * 7 + [50]
    rows = ten_minutes([float(v) for v in values])
    eps = breach_episodes(rows, constant_limits(40.0, 60.0))
    assert len(eps) == 2  # the lone 65 lasted 10 minutes: below the 1-h debounce
    high, low = eps
    assert (high.start, high.end) == (rows[13][0], rows[21][0])  # first outside → first back inside
    assert high.duration_s == 80 * 60
    assert (high.peak_time, high.peak_value, high.peak_excess, high.direction) == (rows[15][0], 67.0, 7.0, "high")
    assert (low.direction, low.peak_excess, low.duration_s) == ("low", 5.0, 70 * 60)
    assert len(breach_episodes(rows, constant_limits(40.0, 60.0), MuseumSettings(min_breach_s=0.0))) == 3
    assert breach_episodes(rows, constant_limits(None, None)) == []


def test_breach_ends_at_a_data_gap() -> None:
    rows = ten_minutes([70.0] * 12) + ten_minutes([70.0] * 3, start=T0 + 10 * HOUR_S)
    eps = breach_episodes(rows, constant_limits(None, 60.0), MuseumSettings(min_breach_s=0.0))
    assert [(e.start, e.end) for e in eps] == [(T0, T0 + 110 * 60), (T0 + 10 * HOUR_S, T0 + 10 * HOUR_S + 1200)]


def test_breaches_against_the_historic_band() -> None:
    rows = daily(31 * 12 + 30, lambda i: 50.0, scale=0.2)
    rows[100] = (rows[100][0], 50.0 + 12.0)  # a one-day excursion beyond the ±10 floor
    band = historic_band(rows)
    eps = breach_episodes(rows, band_limits_of(band), MuseumSettings(min_breach_s=HOUR_S, max_gap_s=2 * DAY_S))
    assert [(e.start, e.direction) for e in eps] == [(rows[100][0], "high")]


def test_24h_fluctuation() -> None:
    # Hourly: a 12-point swing within one day, then a ramp of 1 point an hour from 35 to 65 over 30 h: 24 points
    # within any 24 h of it.
    values = [50.0] * 24 + [44.0, 56.0] + [50.0] * 24 + [35.0 + i for i in range(31)]
    rows = [(T0 + i * HOUR_S, v) for i, v in enumerate(values)]
    f = max_fluctuation(rows)
    assert f is not None and f.range == pytest.approx(24.0)  # 35, then 59 twenty-four hours later
    assert (f.min_time, f.max_time) == (rows[50][0], rows[74][0])
    assert max_fluctuation(rows[:50]).range == 12.0  # type: ignore[union-attr]
    assert max_fluctuation([]) is None


def test_mould_risk_hours() -> None:
    week = 7 * 24
    values = [70.0] * 10 + [80.0] * (3 * 24) + [70.0] * 10 + [80.0] * (week + 5) + [74.0]
    rows = [(T0 + i * HOUR_S, v) for i, v in enumerate(values)]
    runs = mould_runs(rows)
    assert len(runs) == 1  # the 3-day run is not "weeks"
    assert runs[0].start == rows[10 + 72 + 10][0] and runs[0].hours == week + 5
    assert mould_risk_hours(rows) == week + 5
    assert mould_risk_hours(rows, MuseumSettings(mould_min_sustained_s=DAY_S)) == 72 + week + 5


# --- classes, set points, a room's value ----------------------------------------------------------------------------


def test_class_lookup_and_range_limits() -> None:
    from clapas.indices.museum import climate_class

    assert climate_class("a").name == "A1" and climate_class("bizot") is BIZOT and climate_class(" AA ").name == "AA"
    with pytest.raises(ValueError, match="use one of AA, A1, A2, B, C, D, Bizot"):
        climate_class("E")
    assert BIZOT.rh_range_limit() == 20 and BIZOT.t_range_limit() is None
    assert ASHRAE_CLASSES["AA"].rh_range_limit() == 10 and ASHRAE_CLASSES["AA"].t_range_limit() == 4
    assert ASHRAE_CLASSES["D"].rh_range_limit() is None


def test_set_points_and_class_limits() -> None:
    from clapas.indices.museum import class_limits, set_points

    s = MuseumSettings()
    # no history: RH around the 50 % default, T without a relative limit
    assert set_points([], 100, s) == (None, 50.0, None, None)
    assert class_limits(ASHRAE_CLASSES["AA"], set_points([], 100, s)) == ((None, None), (45.0, 55.0))
    # 40 days: 30 days at 22 °C / 60 % after 10 at 10 °C / 40 %: annual = whole mean (T clipped into 15–25 °C),
    # seasonal = the last 30 days; A1 lets the seasonal RH move ±10 from the annual 55 %, so 60 % stands
    days = [[float(d), 10.0 * 96, 96.0, 40.0 * 96, 96.0] for d in range(60, 70)]
    days += [[float(d), 22.0 * 96, 96.0, 60.0 * 96, 96.0] for d in range(70, 100)]
    annual_t, annual_rh, season_t, season_rh = set_points(days, 100, s)
    assert annual_t == pytest.approx(19.0) and annual_rh == pytest.approx(55.0)
    assert season_t == pytest.approx(22.0) and season_rh == pytest.approx(60.0)
    lim_t, lim_rh = class_limits(ASHRAE_CLASSES["A1"], (annual_t, annual_rh, season_t, season_rh))
    assert lim_t == (pytest.approx(20.0), pytest.approx(24.0)) and lim_rh == (pytest.approx(55.0), pytest.approx(65.0))
    # AA allows no seasonal RH change: the set point stays at the annual 55 %; T up 5 K: 22 stands
    lim_t, lim_rh = class_limits(ASHRAE_CLASSES["AA"], (annual_t, annual_rh, season_t, season_rh))
    assert lim_rh == (pytest.approx(50.0), pytest.approx(60.0)) and lim_t == (pytest.approx(20.0), pytest.approx(24.0))
    # Bizot: absolute bounds whatever the set points
    assert class_limits(BIZOT, (annual_t, annual_rh, season_t, season_rh)) == ((16, 25), (40, 60))
    # less than a week of history: defaults
    assert set_points(days[-5:], 100, s) == (None, 50.0, None, None)


def test_room_series_means_sensors_and_carries_a_lost_reading() -> None:
    from clapas.indices.museum import room_series

    a = [(T0 + 60 + 900 * k, 60.0) for k in range(8)]
    b = [(T0 + 300 + 900 * k, 40.0) for k in range(8) if k not in (3, 4)]  # two readings lost
    out = room_series([a, b], T0, T0 + 8 * 900, step_s=900, stale_s=2700)
    assert [v for _, v in out] == [50.0] * 8  # b's last value carried through its gap
    assert out[0][0] == T0
    out = room_series([a, b], T0, T0 + 8 * 900, step_s=900, stale_s=600)
    assert [v for _, v in out][3:5] == [60.0, 60.0]  # stale: the room is its one fresh sensor
    assert room_series([[], []], T0, T0 + 3600) == []
