"""Flood computations on worked examples: window accumulations (prorated, across gaps, late and repeated uplinks),
rain tiers and severity, level classes at their edges, rates of rise across lost uplinks, silences, noise and
stray echoes, and the settings' overrides and validation."""

from __future__ import annotations

import math

import msgspec
import pytest

from clapas.indices.flood import (
    GREEN,
    HEAVY,
    INTENSE,
    NO_RAIN,
    ORANGE,
    RED,
    VERY_INTENSE,
    YELLOW,
    FloodSettings,
    GaugeSettings,
    LevelSeries,
    RainGaugeSettings,
    RainSeries,
    accumulations,
    level_class,
    rain_severity,
    rain_tiers,
    rate_of_rise,
)

H = 3600.0
T0 = 1_790_000_000.0  # any epoch time


# --- rain accumulations ----------------------------------------------------------------------------------------------
def test_accumulations_of_half_hourly_increments_prorate_the_increment_straddling_the_window_start():
    # anchor at T0, then 3 mm in each half hour until T0 + 1.5 h
    incs = [(T0, 7.0), (T0 + 1800, 3.0), (T0 + 3600, 3.0), (T0 + 5400, 3.0)]
    acc = accumulations(incs, at=T0 + 5400, windows_h=(1, 3))
    assert acc[1] == pytest.approx(6.0)  # the last two half hours
    assert acc[3] == pytest.approx(9.0)  # everything after the anchor: the anchor's own 7 mm has no known start
    # 15 min later (no new uplink): the 1-h window starts in the middle of (T0+30 min, T0+60 min]: half of it
    acc = accumulations(incs, at=T0 + 5400 + 900, windows_h=(1,))
    assert acc[1] == pytest.approx(3.0 / 2 + 3.0)


def test_an_increment_after_a_silence_is_spread_over_the_silence_never_sharpened():
    # the gauge was silent for 6 hours, then reports 30 mm since its previous uplink
    acc = accumulations([(T0, 0.0), (T0 + 6 * H, 30.0)], at=T0 + 6 * H, windows_h=(1, 3, 6, 12))
    assert acc == pytest.approx({1: 5.0, 3: 15.0, 6: 30.0, 12: 30.0})


def test_late_and_repeated_uplinks():
    ordered = [(T0 + k * 600, float(k % 3)) for k in range(40)]
    shuffled = ordered[::2] + ordered[1::2]
    s = RainSeries()
    for t, mm in shuffled:
        s.add(t, mm)
    assert s.accumulations((1, 3, 6), at=ordered[-1][0]) == pytest.approx(
        accumulations(ordered, at=ordered[-1][0], windows_h=(1, 3, 6)))
    total = s.total(ordered[-1][0], 24 * H)
    assert not s.add(*ordered[10])  # the same uplink again: counted once
    assert s.total(ordered[-1][0], 24 * H) == total
    assert sum(mm for _, mm in ordered[1:]) == pytest.approx(total)


def test_rain_series_forgets_what_is_older_than_its_longest_window():
    s = RainSeries(keep_s=24 * H)
    for k in range(6 * 24 * 3):  # three days of 10-minute uplinks, 1 mm each
        s.add(T0 + k * 600, 1.0)
    assert len(s.ends) < 6 * 24 + 70
    assert s.total(s.latest, 24 * H) == pytest.approx(144.0)
    assert s.total(s.latest, H) == pytest.approx(6.0)


# --- rain tiers ------------------------------------------------------------------------------------------------------
def test_rain_tiers_and_severity_with_the_default_depths():
    s = FloodSettings()
    w = s.rain_windows_h
    th = s.rain_thresholds("any")
    # a Mediterranean storm of ~100 mm in 6 h: heavy (≈ 2-year) over 3, 6, 12 and 24 h, intense nowhere
    storm = {1: 26.0, 3: 70.0, 6: 99.0, 12: 100.0, 24: 100.0}
    tiers = rain_tiers(storm, w, th)
    assert tiers == {1: NO_RAIN, 3: HEAVY, 6: HEAVY, 12: HEAVY, 24: HEAVY}
    assert rain_severity(tiers, s.rain_major_windows) == INTENSE  # heavy over ≥ 3 windows: major
    # a short cloudburst: 45 mm in the hour is heavy over 1 and 3 h only
    burst = {1: 45.0, 3: 45.0, 6: 45.0, 12: 45.0, 24: 45.0}
    tiers = rain_tiers(burst, w, th)
    assert tiers == {1: HEAVY, 3: HEAVY, 6: NO_RAIN, 12: NO_RAIN, 24: NO_RAIN}
    assert rain_severity(tiers, s.rain_major_windows) == HEAVY
    # at the depth counts (≥), and the worst window rules
    assert rain_tiers({1: 50.0}, (1,), ((30.0,), (50.0,), (75.0,))) == {1: INTENSE}
    assert rain_severity({1: VERY_INTENSE, 3: NO_RAIN}, 3) == VERY_INTENSE
    assert rain_severity({1: NO_RAIN, 3: NO_RAIN}, 3) == NO_RAIN


def test_rain_thresholds_overridden_per_gauge():
    s = FloodSettings(rain_gauges={"g1": RainGaugeSettings(heavy_mm=(20.0, 30.0, 40.0, 50.0, 60.0))})
    assert s.rain_thresholds("g1")[0] == (20.0, 30.0, 40.0, 50.0, 60.0)
    assert s.rain_thresholds("g1")[1] == s.rain_intense_mm
    assert s.rain_thresholds("g2")[0] == s.rain_heavy_mm


def test_settings_validation():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"rain_windows_h": [1, 3], "rain_heavy_mm": [1.0, 2.0, 3.0]}, FloodSettings)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"rain_windows_h": [3, 1]}, FloodSettings)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"rain_heavy": [1.0]}, FloodSettings)  # unknown field
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"rain_gauges": {"g": {"heavy_mm": [1.0]}}}, FloodSettings)
    ok = msgspec.convert({"rain_windows_h": [1, 24], "rain_heavy_mm": [30, 80], "rain_intense_mm": [50, 145],
                          "rain_very_intense_mm": [75, 220], "gauges": {"g": {"yellow_m": 1.5}}}, FloodSettings)
    assert ok.level_thresholds("g", {}) == (1.5, None, None)


# --- river levels ----------------------------------------------------------------------------------------------------
def test_level_class_edges_and_missing_thresholds():
    assert level_class(1.49, 1.5, 2.3, 3.3) == GREEN
    assert level_class(1.5, 1.5, 2.3, 3.3) == YELLOW
    assert level_class(2.3, 1.5, 2.3, 3.3) == ORANGE
    assert level_class(9.0, 1.5, 2.3, 3.3) == RED
    assert level_class(9.0, 1.5, None, None) == YELLOW
    assert level_class(9.0, None, None, None) == GREEN


def test_level_thresholds_from_tags_overridden_by_settings():
    tags = {"threshold_yellow": "1.53", "threshold_orange": "2.33", "threshold_red": "oops"}
    assert FloodSettings().level_thresholds("g", tags) == (1.53, 2.33, None)
    s = FloodSettings(gauges={"g": GaugeSettings(orange_m=2.0, rise_1h_m_per_h=0.5)})
    assert s.level_thresholds("g", tags) == (1.53, 2.0, None)
    assert s.rise_thresholds("g") == (0.5, s.rise_3h_m_per_h)
    assert s.rise_thresholds("h") == (s.rise_1h_m_per_h, s.rise_3h_m_per_h)


def ramp(rate_m_h: float, hours: float, every_s: float = 900, base: float = 1.0, lost=lambda n: False):
    n = int(hours * H / every_s) + 1
    return [(T0 + k * every_s, base + rate_m_h * k * every_s / H) for k in range(n) if not lost(k)]


def test_rate_of_rise_on_a_steady_rise():
    readings = ramp(0.4, 4)
    # the median of three is the middle reading, at its time: the rate is exact
    assert rate_of_rise(readings, H) == pytest.approx(0.4)
    assert rate_of_rise(readings, 3 * H) == pytest.approx(0.4)


def test_lost_uplinks_widen_the_interpolation_but_make_no_rise():
    steady = ramp(0.2, 4, lost=lambda n: n % 3 == 1)  # one uplink in three lost
    assert rate_of_rise(steady, H) == pytest.approx(0.2, abs=0.02)
    assert rate_of_rise(steady, 3 * H) == pytest.approx(0.2, abs=0.01)
    flat = [(t, 1.0) for t, _ in ramp(0, 4, lost=lambda n: 4 <= n <= 7)]  # an hour lost on a flat river
    assert rate_of_rise(flat, H) == pytest.approx(0.0)


def test_a_long_silence_restarts_the_rates():
    before = ramp(0.0, 2)
    after = [(t + 5 * H, 2.5) for t, _ in ramp(0.0, 2)]  # back 3 h later, 1.5 m higher
    s = LevelSeries(max_gap_s=7200)
    for t, v in before + after[:2]:
        s.add(t, v)
    assert s.restarts == 1
    assert s.rate(H) is None and s.rate(3 * H) is None  # not enough of the new series for either window
    for t, v in after[2:]:
        s.add(t, v)
    assert s.rate(H) == pytest.approx(0.0)  # the jump across the silence is no rise
    assert s.rate(3 * H) is None
    assert rate_of_rise(before + after, 3 * H) is None


def test_noise_and_stray_echoes_do_not_make_rates():
    noise = [0.004 * math.sin(k * 2.1) * (1 if k % 2 else -1) for k in range(20)]  # ±4 mm, a simulator's noise
    flat = [(T0 + k * 900, 1.2 + noise[k]) for k in range(20)]
    assert abs(rate_of_rise(flat, H)) < 0.01
    assert abs(rate_of_rise(flat, 3 * H)) < 0.01
    spiked = [(t, v + (1.0 if k == 17 else 0.0)) for k, (t, v) in enumerate(flat)]  # one wild echo
    s = LevelSeries()
    for t, v in spiked:
        s.add(t, v)
    assert max(s.levels) < 1.21  # the median of three never passes the echo on
    assert abs(s.rate(H)) < 0.01


def test_older_and_repeated_level_readings_are_ignored():
    s = LevelSeries()
    assert s.add(T0, 1.0) and s.add(T0 + 900, 1.3)
    assert s.current is None  # three readings make the first point
    assert not s.add(T0 + 600, 5.0)
    assert not s.add(T0 + 900, 5.0)
    assert s.add(T0 + 1800, 1.2)
    assert s.current == pytest.approx(1.2) and s.times == [T0 + 900]
