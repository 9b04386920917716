"""Worked examples for the air-quality indices (domain-rules.md §4): ATMO band edges, aggregation, validity, DST days,
the legacy EAQI and the information/alert thresholds with their duration rules."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clapas.indices.air import (
    ATMO_COLOURS,
    AirQualitySettings,
    AtmoClass,
    Pollutant,
    atmo_index,
    atmo_sub_index,
    daily_value,
    eaqi_hour,
    eaqi_sub_index,
    exceedances,
    hourly_means,
    local_day_hours,
    min_readings_per_hour,
    min_valid_hours,
    threshold_episodes,
)

PARIS = ZoneInfo("Europe/Paris")
DAY = date(2024, 6, 12)  # an ordinary summer day, UTC+2
H = timedelta(hours=1)

# The §4.1 table, written out again independently of the module's constants: pollutant → inclusive upper bounds.
ATMO_TABLE = {
    Pollutant.PM2_5: (10, 20, 25, 50, 75),
    Pollutant.PM10: (20, 40, 50, 100, 150),
    Pollutant.NO2: (40, 90, 120, 230, 340),
    Pollutant.O3: (50, 100, 130, 240, 380),
    Pollutant.SO2: (100, 200, 350, 500, 750),
}
EDGES = [(p, cls, bound) for p, bounds in ATMO_TABLE.items() for cls, bound in enumerate(bounds, start=1)]


def day_hours(day: date = DAY) -> list[datetime]:
    return local_day_hours(day, PARIS)


def one_sensor(values: dict[datetime, float]) -> dict[str, dict[datetime, float]]:
    return {"s1": values}


def flat(value: float, hours: list[datetime] | None = None) -> dict[str, dict[datetime, float]]:
    return one_sensor(dict.fromkeys(hours or day_hours(), value))


# --- ATMO band table --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pollutant", "cls", "bound"), EDGES)
def test_atmo_bound_is_inclusive_upper(pollutant: Pollutant, cls: int, bound: float) -> None:
    assert atmo_sub_index(pollutant, bound) == cls
    assert atmo_sub_index(pollutant, math.nextafter(bound, math.inf)) == cls + 1
    assert atmo_sub_index(pollutant, bound + 0.1) == cls + 1


@pytest.mark.parametrize("pollutant", list(Pollutant))
def test_atmo_extremes(pollutant: Pollutant) -> None:
    assert atmo_sub_index(pollutant, 0) == AtmoClass.BON
    assert atmo_sub_index(pollutant, 10_000) == AtmoClass.EXTREMEMENT_MAUVAIS


def test_atmo_refuses_nan() -> None:
    with pytest.raises(ValueError):
        atmo_sub_index(Pollutant.NO2, math.nan)


def test_atmo_classes_and_colours() -> None:
    assert [c.value for c in AtmoClass] == [1, 2, 3, 4, 5, 6]
    assert ATMO_COLOURS[AtmoClass.BON] == "#50F0E6"
    assert ATMO_COLOURS[AtmoClass.EXTREMEMENT_MAUVAIS] == "#872181"


@given(
    pollutant=st.sampled_from(list(Pollutant)),
    a=st.floats(min_value=0, max_value=2000, allow_nan=False),
    b=st.floats(min_value=0, max_value=2000, allow_nan=False),
)
def test_sub_index_monotonic(pollutant: Pollutant, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert atmo_sub_index(pollutant, lo) <= atmo_sub_index(pollutant, hi)
    assert eaqi_sub_index(pollutant, lo) <= eaqi_sub_index(pollutant, hi)


@given(
    base=st.fixed_dictionaries({p: st.floats(min_value=0, max_value=800) for p in Pollutant}),
    bumped=st.sampled_from(list(Pollutant)),
    extra=st.floats(min_value=0, max_value=800),
)
def test_daily_index_monotonic_in_each_concentration(base: dict, bumped: Pollutant, extra: float) -> None:
    before = atmo_index({p: flat(c) for p, c in base.items()}, DAY, PARIS)
    after = atmo_index({p: flat(c + extra if p is bumped else c) for p, c in base.items()}, DAY, PARIS)
    assert before.index is not None and after.index is not None
    assert before.index <= after.index


# --- validity --------------------------------------------------------------------------------------------------------


def test_hourly_validity_75_percent() -> None:
    assert min_readings_per_hour(4) == 3
    assert min_readings_per_hour(12) == 9
    assert min_readings_per_hour(60) == 45  # 45 min of minute data
    start = datetime(2024, 6, 12, 8, tzinfo=UTC)
    three = [(start + timedelta(minutes=m), 10.0 + m) for m in (0, 15, 30)]
    two = [(start + H + timedelta(minutes=m), 10.0) for m in (0, 15)]
    means = hourly_means(three + two, expected_per_hour=4, tz=PARIS)
    assert means == {start: 25.0}  # 3 of 4 valid, mean of 10/25/40; 2 of 4 dropped


def test_daily_validity_17_vs_18_hours() -> None:
    hours = day_hours()
    assert len(hours) == 24
    ok = daily_value(Pollutant.PM10, flat(30, hours[:18]), DAY, PARIS)
    short = daily_value(Pollutant.PM10, flat(30, hours[:17]), DAY, PARIS)
    assert ok.available and ok.value == 30 and ok.valid_hours == 18 and ok.required_hours == 18
    assert not short.available and short.value is None and short.valid_hours == 17


def test_hours_outside_the_local_day_are_ignored() -> None:
    hours = day_hours()
    before = hours[0] - H  # 23:00 local the day before
    series = dict.fromkeys(hours[:17], 10.0) | {before: 500.0, hours[-1] + H: 500.0}
    d = daily_value(Pollutant.NO2, one_sensor(series), DAY, PARIS)
    assert d.valid_hours == 17 and not d.available


# --- aggregation -----------------------------------------------------------------------------------------------------


def test_pm_uses_daily_mean_gases_use_hourly_max() -> None:
    hours = day_hours()
    series = {h: (100.0 if i == 12 else 10.0) for i, h in enumerate(hours)}
    pm = daily_value(Pollutant.PM10, one_sensor(series), DAY, PARIS)
    no2 = daily_value(Pollutant.NO2, one_sensor(series), DAY, PARIS)
    assert pm.value == pytest.approx((23 * 10 + 100) / 24) and pm.aggregation == "mean"
    assert no2.value == 100 and no2.aggregation == "max"
    # The same series: PM10 mean 13.75 → Bon; NO2 max 100 → Dégradé (90 < 100 ≤ 120)
    assert atmo_sub_index(Pollutant.PM10, pm.value) == 1
    assert atmo_sub_index(Pollutant.NO2, no2.value) == 3


def test_sensors_are_averaged_per_hour() -> None:
    hours = day_hours()
    sensors = {"a": dict.fromkeys(hours, 30.0), "b": dict.fromkeys(hours[:10], 50.0), "c": {}}
    d = daily_value(Pollutant.NO2, sensors, DAY, PARIS)
    assert d.value == 40 and d.sensors == 2 and d.valid_hours == 24


# --- the day's index -------------------------------------------------------------------------------------------------


def test_index_is_worst_sub_index_with_driver_and_evidence() -> None:
    day = atmo_index({Pollutant.PM10: flat(45), Pollutant.NO2: flat(95), Pollutant.O3: flat(60)}, DAY, PARIS)
    assert day.sub_indices == {Pollutant.PM10: 3, Pollutant.NO2: 3, Pollutant.O3: 2}
    assert day.index == 3 and day.label == "Dégradé" and day.colour == "#F0E641"
    assert day.drivers == (Pollutant.PM10, Pollutant.NO2)  # a tie: both drive it
    assert day.sensors == 1 and day.completeness == 1.0 and day.indicative is True


def test_single_driver() -> None:
    day = atmo_index({Pollutant.PM2_5: flat(26), Pollutant.O3: flat(60)}, DAY, PARIS)
    assert day.index == 4 and day.drivers == (Pollutant.PM2_5,) and day.label == "Mauvais"


def test_indisponible_when_a_measured_pollutant_is_short() -> None:
    day = atmo_index({Pollutant.PM10: flat(10), Pollutant.NO2: flat(500, day_hours()[:17])}, DAY, PARIS)
    assert day.index is None and not day.available and day.label == "Indisponible" and day.colour is None
    assert day.missing == (Pollutant.NO2,) and day.drivers == ()
    assert day.sub_indices == {Pollutant.PM10: 1}
    assert day.completeness == pytest.approx(17 / 24)


def test_indisponible_without_data_or_without_a_required_pollutant() -> None:
    assert atmo_index({}, DAY, PARIS).label == "Indisponible"
    assert atmo_index({Pollutant.PM10: {}}, DAY, PARIS).index is None
    strict = AirQualitySettings(atmo_required=(Pollutant.O3,))
    day = atmo_index({Pollutant.PM10: flat(10)}, DAY, PARIS, strict)
    assert day.index is None and day.missing == (Pollutant.O3,)


def test_sensor_count_across_pollutants() -> None:
    hours = day_hours()
    day = atmo_index(
        {Pollutant.PM10: {"a": dict.fromkeys(hours, 5.0)}, Pollutant.NO2: {"a": dict.fromkeys(hours, 5.0), "b": {}}},
        DAY,
        PARIS,
    )
    assert day.sensors == 1 and day.index == 1


# --- DST days --------------------------------------------------------------------------------------------------------


def test_dst_days_have_23_and_25_hours() -> None:
    spring, autumn = date(2024, 3, 31), date(2024, 10, 27)
    assert len(local_day_hours(spring, PARIS)) == 23
    assert len(local_day_hours(autumn, PARIS)) == 25
    assert local_day_hours(autumn, PARIS)[0] == datetime(2024, 10, 26, 22, tzinfo=UTC)
    assert (min_valid_hours(23), min_valid_hours(24), min_valid_hours(25)) == (18, 18, 19)


def test_autumn_dst_day_keeps_both_two_oclock_hours() -> None:
    autumn = date(2024, 10, 27)
    # Readings every 15 min over the local day: 02:00–03:00 local happens twice (UTC 00:00 and 01:00).
    start = datetime(2024, 10, 26, 22, tzinfo=UTC)
    readings = [(start + timedelta(minutes=15 * i), 20.0) for i in range(25 * 4)]
    readings[3 * 4] = (readings[3 * 4][0], 420.0)  # 01:00 UTC = the second 02:00 local
    hourly = hourly_means(readings, expected_per_hour=4, tz=PARIS)
    assert len(hourly) == 25
    assert hourly[datetime(2024, 10, 27, 1, tzinfo=UTC)] == pytest.approx((3 * 20 + 420) / 4)
    no2 = daily_value(Pollutant.NO2, one_sensor(hourly), autumn, PARIS)
    assert no2.hours == 25 and no2.valid_hours == 25 and no2.value == pytest.approx(120)
    # 18 valid hours are not enough on a 25-hour day; 19 are
    keys = sorted(hourly)
    assert not daily_value(Pollutant.PM10, one_sensor({h: 10.0 for h in keys[:18]}), autumn, PARIS).available
    assert daily_value(Pollutant.PM10, one_sensor({h: 10.0 for h in keys[:19]}), autumn, PARIS).available


def test_spring_dst_day_is_valid_with_18_of_23_hours() -> None:
    spring = date(2024, 3, 31)
    hours = local_day_hours(spring, PARIS)
    day = atmo_index({Pollutant.PM10: one_sensor(dict.fromkeys(hours[:18], 45.0))}, spring, PARIS)
    assert day.index == 3 and day.completeness == pytest.approx(18 / 23)
    assert atmo_index({Pollutant.PM10: one_sensor(dict.fromkeys(hours[:17], 45.0))}, spring, PARIS).index is None


# --- European AQI ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pollutant", "value", "level"),
    [
        (Pollutant.O3, 50, 1),
        (Pollutant.O3, 50.5, 2),
        (Pollutant.O3, 380, 5),
        (Pollutant.O3, 801, 6),
        (Pollutant.NO2, 40, 1),
        (Pollutant.NO2, 230.1, 5),
        (Pollutant.SO2, 350, 3),
        (Pollutant.PM10, 100, 4),
        (Pollutant.PM2_5, 75, 5),
        (Pollutant.PM2_5, 75.1, 6),
    ],
)
def test_eaqi_bands(pollutant: Pollutant, value: float, level: int) -> None:
    assert eaqi_sub_index(pollutant, value) == level


def test_eaqi_hour_uses_pm_running_mean_and_gas_hourly_value() -> None:
    at = datetime(2024, 6, 12, 12, tzinfo=UTC)
    past = [at - i * H for i in range(24)]
    pm10 = {h: (120.0 if h == at else 20.0) for h in past}  # a spike: hourly 120, running mean ≈ 24.2
    no2 = {at: 95.0, at - H: 500.0}
    result = eaqi_hour({Pollutant.PM10: pm10, Pollutant.NO2: no2}, at)
    assert result.sub_indices == {Pollutant.PM10: 2, Pollutant.NO2: 3}
    assert result.level == 3 and result.label == "Moderate" and result.drivers == (Pollutant.NO2,)


def test_eaqi_running_mean_needs_18_hours() -> None:
    at = datetime(2024, 6, 12, 12, tzinfo=UTC)
    pm = {at - i * H: 30.0 for i in range(17)}
    assert eaqi_hour({Pollutant.PM2_5: pm}, at).level is None
    pm[at - 17 * H] = 30.0
    assert eaqi_hour({Pollutant.PM2_5: pm}, at).level == 4  # 25 < 30 ≤ 50: Poor


# --- information and alert thresholds ---------------------------------------------------------------------------------

T0 = datetime(2024, 7, 1, 10, tzinfo=UTC)


def hourly(*values: float) -> dict[datetime, float]:
    return {T0 + i * H: v for i, v in enumerate(values)}


def names(episodes: list) -> list[str]:
    return [e.threshold for e in episodes]


def test_no2_alert_needs_three_consecutive_hours() -> None:
    two = exceedances(Pollutant.NO2, hourly(100, 410, 420, 150))
    assert names(two) == ["no2.information"]  # 2 h above 400: information only
    three = exceedances(Pollutant.NO2, hourly(100, 410, 450, 401, 150))
    alert = next(e for e in three if e.threshold == "no2.alert")
    assert (alert.start, alert.end, alert.peak, alert.peak_at, alert.periods) == (
        T0 + H,
        T0 + 4 * H,
        450,
        T0 + 2 * H,
        3,
    )


def test_threshold_is_strictly_above_and_a_gap_breaks_the_run() -> None:
    assert exceedances(Pollutant.NO2, hourly(200, 200)) == []
    gappy = {T0: 410.0, T0 + H: 410.0, T0 + 3 * H: 410.0}  # the hour T0+2h is missing
    assert "no2.alert" not in names(exceedances(Pollutant.NO2, gappy))
    info = [e for e in exceedances(Pollutant.NO2, gappy) if e.threshold == "no2.information"]
    assert [(e.start, e.periods) for e in info] == [(T0, 2), (T0 + 3 * H, 1)]


def test_so2_information_and_alert() -> None:
    assert names(exceedances(Pollutant.SO2, hourly(301))) == ["so2.information"]
    assert names(exceedances(Pollutant.SO2, hourly(501, 501))) == ["so2.information"]
    assert sorted(names(exceedances(Pollutant.SO2, hourly(501, 501, 501)))) == ["so2.alert", "so2.information"]


def test_o3_information_alert_and_progressive_thresholds() -> None:
    assert names(exceedances(Pollutant.O3, hourly(181))) == ["o3.information"]
    assert sorted(names(exceedances(Pollutant.O3, hourly(241, 241)))) == ["o3.alert", "o3.information"]
    three = names(exceedances(Pollutant.O3, hourly(241, 301, 301)))
    assert sorted(three) == ["o3.alert", "o3.alert.1", "o3.information"]  # 300 only held 2 h
    four = names(exceedances(Pollutant.O3, hourly(241, 301, 301, 301)))
    assert sorted(four) == ["o3.alert", "o3.alert.1", "o3.alert.2", "o3.information"]
    spike = names(exceedances(Pollutant.O3, hourly(150, 361, 150)))
    assert sorted(spike) == ["o3.alert", "o3.alert.3", "o3.information"]  # 360 needs a single hour


def test_pm10_daily_thresholds_over_local_days_across_dst() -> None:
    days = [datetime(2024, 10, d, tzinfo=PARIS) for d in (26, 27, 28, 30)]
    series = dict(zip(days, (55.0, 85.0, 60.0, 51.0), strict=True))
    eps = exceedances(Pollutant.PM10, series, daily=True)
    info = [e for e in eps if e.threshold == "pm10.information"]
    alert = [e for e in eps if e.threshold == "pm10.alert"]
    # 26–28 October are consecutive local days although the 27th lasts 25 hours; the 29th is missing
    assert [(e.start, e.end, e.periods, e.peak) for e in info] == [
        (days[0], datetime(2024, 10, 29, tzinfo=PARIS), 3, 85.0),
        (days[3], datetime(2024, 10, 31, tzinfo=PARIS), 1, 51.0),
    ]
    assert [(e.start, e.periods) for e in alert] == [(days[1], 1)]
    assert exceedances(Pollutant.PM10, series) == []  # no hourly PM10 threshold


def test_threshold_override() -> None:
    from clapas.indices.air import Threshold

    lenient = Threshold("no2.test", Pollutant.NO2, 300, min_periods=2)
    assert [e.periods for e in threshold_episodes(hourly(301, 302, 100, 301), lenient)] == [2]


# --- streaming: EpisodeTracker ---------------------------------------------------------------------------------------


def track(series: dict[datetime, float], threshold) -> list[tuple[datetime, datetime | None]]:
    """(start, end) of the tracker's episodes; end None when still on at the end of the series."""
    from clapas.indices.air import EpisodeTracker

    tr = EpisodeTracker(threshold)
    found: list[tuple[datetime, datetime | None]] = []
    for start, value in sorted(series.items()):
        event = tr.push(start, value)
        if event == "start":
            found.append((tr.start, None))  # type: ignore[arg-type]
        elif event == "end":
            found[-1] = (found[-1][0], start)
    return found


@given(st.lists(st.sampled_from([100.0, 399.0, 400.0, 401.0, 450.0]), max_size=40))
def test_tracker_agrees_with_threshold_episodes_on_a_gap_free_series(values: list[float]) -> None:
    from clapas.indices.air import DEFAULT_THRESHOLDS

    alert = next(t for t in DEFAULT_THRESHOLDS if t.name == "no2.alert")
    series = hourly(*values)
    expected = [(e.start, e.end) for e in threshold_episodes(series, alert)]
    got = track(series, alert)
    end = T0 + len(values) * H
    assert [(s, e or end) for s, e in got] == expected  # an episode still on at the end ends with the series


def test_tracker_gap_breaks_a_short_run_but_does_not_end_an_episode() -> None:
    from clapas.indices.air import DEFAULT_THRESHOLDS, EpisodeTracker

    alert = next(t for t in DEFAULT_THRESHOLDS if t.name == "no2.alert")
    gappy = {T0: 410.0, T0 + H: 410.0, T0 + 3 * H: 410.0, T0 + 4 * H: 410.0}
    assert track(gappy, alert) == []  # never 3 consecutive hours
    on = {**hourly(410, 420, 430), T0 + 5 * H: 405.0, T0 + 6 * H: 300.0}  # on, 2 hours missing, still above, under
    assert track(on, alert) == [(T0, T0 + 6 * H)]
    tr = EpisodeTracker(alert)
    tr.push(T0, 410)
    with pytest.raises(ValueError):
        tr.push(T0, 420)


def test_tracker_peak_and_daily_periods_across_dst() -> None:
    from clapas.indices.air import DEFAULT_THRESHOLDS, EpisodeTracker

    info = next(t for t in DEFAULT_THRESHOLDS if t.name == "pm10.information")
    tr = EpisodeTracker(info)
    days = [datetime(2024, 10, d, tzinfo=PARIS) for d in (26, 27, 28, 30)]
    assert [tr.push(d, v) for d, v in zip(days, (55.0, 85.0, 40.0, 51.0), strict=True)] == [
        "start", None, "end", "start"]
    assert (tr.start, tr.peak) == (days[3], 51.0)


def test_threshold_levels_and_severities() -> None:
    from clapas.indices.air import DEFAULT_THRESHOLDS

    sev = {t.name: (t.level, t.alert_severity) for t in DEFAULT_THRESHOLDS}
    assert sev["pm10.information"] == ("information", "warning")
    assert sev["no2.alert"] == ("alert", "major")
    assert sev["o3.alert.1"] == ("alert", "major")
    assert sev["o3.alert.2"] == sev["o3.alert.3"] == ("alert", "critical")
