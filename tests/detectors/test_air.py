"""Air-quality detectors on small synthetic series: the information and alert thresholds with their averaging and
duration rules, validity, several sensors per zone, order and batching, the zone's ATMO and EAQI; and one simulated
pollution episode through the real pipeline."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from clapas.detectors.air import AirDetector
from clapas.detectors.base import CLEAR, OPEN, Detection, DetectorRunner, MemorySink, Registry
from clapas.indices.air import AirQualitySettings
from clapas.model import QUANTITY_BY_KEY

H = timedelta(hours=1)
# 12 June 2024, local midnight in Paris (UTC+2) is 22:00 UTC the day before
DAY0 = datetime(2024, 6, 11, 22, tzinfo=UTC)  # start of the local day 2024-06-12
QID = {p: QUANTITY_BY_KEY[f"air.{p}"].id for p in ("pm2_5", "pm10", "no2", "o3", "so2")}


class ListSink:
    """Every detection as emitted (MemorySink drops escalations of an open alert)."""

    def __init__(self) -> None:
        self.got: list[Detection] = []

    def handle(self, detections: list[Detection]) -> None:
        self.got.extend(detections)


def setup(zones: dict[str, str], settings: AirQualitySettings | None = None) -> tuple[DetectorRunner, AirDetector,
                                                                                       ListSink]:
    registry = Registry(devices=[{"eui": e, "kind": "air_quality", "zone": z} for e, z in zones.items()])
    det = AirDetector(settings)
    sink = ListSink()
    return DetectorRunner([det], sink, registry), det, sink


Rows = list[tuple[datetime, str, int, float]]


def readings(eui: str, start: datetime, hours: int, value: Callable[[int], float | None] | float,
             pollutant: str = "pm10", per_hour: int = 4, skip: Callable[[int, int], bool] | None = None) -> Rows:
    """A sensor's 15-minute readings: `value(hour index)` (None = no reading that hour); `skip(hour, k)` drops some."""
    rows: Rows = []
    for i in range(hours):
        v = value(i) if callable(value) else value
        if v is None:
            continue
        for k in range(per_hour):
            if skip is None or not skip(i, k):
                rows.append((start + i * H + k * (H / per_hour) + timedelta(seconds=30), eui, QID[pollutant], v))
    return rows


def run(runner: DetectorRunner, rows: Rows, until: datetime, chunk: int | None = None) -> None:
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    step = chunk or len(rows) or 1
    for i in range(0, len(rows), step):
        runner.feed(rows[i:i + step])
    runner.finish(until.timestamp())


def transitions(sink: ListSink, rule: str | None = None) -> list[tuple[str, str, str, datetime, str]]:
    return [(d.rule, d.subject, d.state, d.at, d.severity) for d in sink.got if rule is None or d.rule == rule]


def days(*means: float) -> Callable[[int], float]:
    return lambda i: means[i // 24]


LATE = timedelta(hours=2)  # past the default lateness (1 h) so every period is decided


# --- PM10: daily means over local days -------------------------------------------------------------------------------


def test_pm10_information_on_the_daily_mean_opens_and_clears() -> None:
    runner, _, sink = setup({"s1": "dma-01"})
    run(runner, readings("s1", DAY0, 72, days(30, 60, 30)), DAY0 + 3 * 24 * H + LATE)
    assert transitions(sink) == [
        ("air.pm10.information", "dma-01", OPEN, DAY0 + 48 * H, "warning"),  # decided at the end of the local day
        ("air.pm10.information", "dma-01", CLEAR, DAY0 + 72 * H, "info"),
    ]
    ev = sink.got[0].evidence
    assert ev["indicative"] is True and "indicative" in sink.got[0].message
    assert (ev["value"], ev["sensors"], ev["completeness"], ev["valid_hours"], ev["hours"]) == (60.0, 1, 1.0, 24, 24)
    assert ev["period"] == "2024-06-13T00:00:00+02:00" and ev["averaging"].startswith("daily mean")
    assert [p["value"] for p in ev["periods"]] == [60.0]
    assert ev["atmo"]["day"] == "2024-06-13" and ev["atmo"]["index"] == 4  # PM10 60 µg/m³: Mauvais (50–100)


def test_pm10_hourly_peaks_under_a_daily_mean_below_50_do_not_alert() -> None:
    runner, _, sink = setup({"s1": "dma-01"})
    run(runner, readings("s1", DAY0, 24, lambda i: 120 if i in (7, 8, 18, 19) else 30), DAY0 + 24 * H + LATE)
    assert transitions(sink) == []  # mean (4 × 120 + 20 × 30) / 24 = 45


def test_pm10_alert_is_major_and_the_information_opens_with_it() -> None:
    runner, _, sink = setup({"s1": "dma-01"})
    run(runner, readings("s1", DAY0, 48, days(90, 65)), DAY0 + 48 * H + LATE)
    assert transitions(sink) == [
        ("air.pm10.information", "dma-01", OPEN, DAY0 + 24 * H, "warning"),
        ("air.pm10.alert", "dma-01", OPEN, DAY0 + 24 * H, "major"),
        ("air.pm10.alert", "dma-01", CLEAR, DAY0 + 48 * H, "info"),  # 65: under 80, still over 50
    ]


def test_a_day_under_the_validity_rule_decides_nothing() -> None:
    runner, det, sink = setup({"s1": "dma-01"})
    # 17 valid hours of 24 (18 needed), all at 90; plus one hour with only 2 of 4 readings (under 75 %)
    rows = readings("s1", DAY0, 24, lambda i: 90 if i < 17 else None)
    rows += readings("s1", DAY0 + 17 * H, 1, 90, skip=lambda _i, k: k >= 2)
    run(runner, rows, DAY0 + 24 * H + LATE)
    assert transitions(sink) == []
    atmo = det.atmo("dma-01")
    assert atmo is not None and atmo.index is None and atmo.label == "Indisponible"
    assert atmo.daily["pm10"].valid_hours == 17


def test_a_missing_day_neither_clears_nor_counts() -> None:
    runner, _, sink = setup({"s1": "dma-01"})
    rows = readings("s1", DAY0, 24, 70) + readings("s1", DAY0 + 48 * H, 24, 20)  # day 2 lost entirely
    run(runner, rows[:96], DAY0 + 48 * H + LATE)
    assert transitions(sink, "air.pm10.information") == [
        ("air.pm10.information", "dma-01", OPEN, DAY0 + 24 * H, "warning")]
    run(runner, rows[96:], DAY0 + 72 * H + LATE)
    assert transitions(sink)[-1] == ("air.pm10.information", "dma-01", CLEAR, DAY0 + 72 * H, "info")


# --- hourly thresholds: NO2, O3, SO2 --------------------------------------------------------------------------------


def test_no2_information_hourly_and_alert_after_three_consecutive_hours() -> None:
    runner, _, sink = setup({"s1": "dma-01"})
    values = [100, 410, 420, 150, 410, 450, 401, 405, 190]
    run(runner, readings("s1", DAY0, len(values), lambda i: values[i], "no2"), DAY0 + len(values) * H + LATE)
    assert transitions(sink) == [
        ("air.no2.information", "dma-01", OPEN, DAY0 + 2 * H, "warning"),  # the first hour above 200
        ("air.no2.information", "dma-01", CLEAR, DAY0 + 4 * H, "info"),
        ("air.no2.information", "dma-01", OPEN, DAY0 + 5 * H, "warning"),
        ("air.no2.alert", "dma-01", OPEN, DAY0 + 7 * H, "major"),  # 410, 450, 401: three hours above 400
        ("air.no2.information", "dma-01", CLEAR, DAY0 + 9 * H, "info"),  # 190: under 200 and under 400
        ("air.no2.alert", "dma-01", CLEAR, DAY0 + 9 * H, "info"),
    ]
    alert = next(d for d in sink.got if d.rule == "air.no2.alert")
    assert [p["value"] for p in alert.evidence["periods"]] == [410.0, 450.0, 401.0]
    assert alert.evidence["peak"] == 450.0 and alert.evidence["min_periods"] == 3


def test_an_invalid_hour_breaks_the_consecutive_hours_and_clears_nothing() -> None:
    runner, _, sink = setup({"s1": "dma-01"})
    # 410, 410, [only 2 readings of 4: invalid], 410, 410: never three valid consecutive hours above 400
    rows = readings("s1", DAY0, 5, 410, "no2", skip=lambda i, k: i == 2 and k >= 2)
    run(runner, rows, DAY0 + 5 * H + LATE)
    assert transitions(sink) == [("air.no2.information", "dma-01", OPEN, DAY0 + H, "warning")]


def test_so2_alert_needs_three_hours_above_500() -> None:
    runner, _, sink = setup({"s1": "dma-01"})
    values = [510, 520, 250, 510, 520, 530]
    run(runner, readings("s1", DAY0, len(values), lambda i: values[i], "so2"), DAY0 + len(values) * H + LATE)
    assert transitions(sink) == [
        ("air.so2.information", "dma-01", OPEN, DAY0 + H, "warning"),
        ("air.so2.information", "dma-01", CLEAR, DAY0 + 3 * H, "info"),  # 250 ≤ 300
        ("air.so2.information", "dma-01", OPEN, DAY0 + 4 * H, "warning"),
        ("air.so2.alert", "dma-01", OPEN, DAY0 + 6 * H, "major"),
    ]


def test_o3_information_alert_and_escalation_to_the_progressive_levels() -> None:
    runner, _, sink = setup({"s1": "dma-01"})
    values = [150, 185, 245, 310, 305, 302, 250, 170]
    run(runner, readings("s1", DAY0, len(values), lambda i: values[i], "o3"), DAY0 + len(values) * H + LATE)
    assert transitions(sink) == [
        ("air.o3.information", "dma-01", OPEN, DAY0 + 2 * H, "warning"),
        ("air.o3.alert", "dma-01", OPEN, DAY0 + 3 * H, "major"),  # health alert: 240 hourly
        ("air.o3.alert", "dma-01", OPEN, DAY0 + 6 * H, "critical"),  # 2nd progressive level: 300 over 3 hours
        ("air.o3.information", "dma-01", CLEAR, DAY0 + 8 * H, "info"),
        ("air.o3.alert", "dma-01", CLEAR, DAY0 + 8 * H, "info"),  # 250 kept it open; 170 ends it
    ]
    assert sink.got[2].evidence["threshold"] == "o3.alert.2"
    memory = MemorySink()  # the persistent sink records the escalation; MemorySink keeps one open alert
    memory.handle(sink.got)
    assert len(memory.opened("air.o3.alert")) == 1


def test_exactly_at_the_threshold_is_not_above() -> None:
    runner, _, sink = setup({"s1": "dma-01"})
    run(runner, readings("s1", DAY0, 3, 200, "no2") + readings("s1", DAY0, 3, 180, "o3"), DAY0 + 3 * H + LATE)
    assert transitions(sink) == []


# --- zones with several sensors ---------------------------------------------------------------------------------------


def test_the_zone_value_is_the_mean_of_its_sensors_valid_hours() -> None:
    runner, det, sink = setup({"a": "dma-01", "b": "dma-01", "c": "dma-01", "far": "dma-02"})
    rows = readings("a", DAY0, 2, lambda i: (300, 310)[i], "no2")
    rows += readings("b", DAY0, 2, 100, "no2")  # hour 0: (300 + 100) / 2 = 200, not above; hour 1: 205
    rows += readings("c", DAY0, 2, 900, "no2", skip=lambda _i, k: k > 0)  # 1 reading of 4: never valid
    rows += readings("far", DAY0, 2, 500, "no2")  # another zone
    run(runner, rows, DAY0 + 2 * H + LATE)
    assert transitions(sink, "air.no2.information") == [
        ("air.no2.information", "dma-02", OPEN, DAY0 + H, "warning"),
        ("air.no2.information", "dma-01", OPEN, DAY0 + 2 * H, "warning"),
    ]
    ev = next(d for d in sink.got if d.subject == "dma-01").evidence
    assert (ev["value"], ev["sensors"], ev["sensors_in_zone"]) == (205.0, 2, 3)
    assert ev["completeness"] == pytest.approx(2 / 3, abs=1e-3)
    assert det.eaqi("dma-01") is not None and det.eaqi("dma-01").sensors == 2  # type: ignore[union-attr]


def test_a_pm10_day_mean_over_two_sensors_with_gaps() -> None:
    runner, det, sink = setup({"a": "dma-01", "b": "dma-01"})
    # a: 80 all day; b: 20, but silent for 10 hours: the zone's hours are (80 + 20) / 2 = 50 or 80 alone
    rows = readings("a", DAY0, 24, 80) + readings("b", DAY0, 24, lambda i: None if i < 10 else 20)
    run(runner, rows, DAY0 + 24 * H + LATE)
    expected = (10 * 80 + 14 * 50) / 24  # 62.5
    opened = [d for d in sink.got if d.state == OPEN]
    assert [(d.rule, d.evidence["value"], d.evidence["sensors"]) for d in opened] == [
        ("air.pm10.information", round(expected, 1), 2)]
    atmo = det.atmo_days["dma-01"][-1]
    assert atmo.day == date(2024, 6, 12) and atmo.sensors == 2
    assert atmo.daily["pm10"].value == pytest.approx(expected)


# --- order, batching, noise, late data ----------------------------------------------------------------------------


def _episode_rows() -> Rows:
    rows = readings("a", DAY0, 72, days(30, 65, 85), "pm10") + readings("b", DAY0, 72, days(35, 60, 77), "pm10")
    no2 = [150 if i % 24 not in (7, 8, 9) else 430 for i in range(72)]
    rows += readings("a", DAY0, 72, lambda i: no2[i], "no2") + readings("b", DAY0, 72, lambda i: no2[i] - 20, "no2")
    return rows


def test_answers_do_not_depend_on_batching_order_or_duplicates() -> None:
    until = DAY0 + 72 * H + LATE
    results = []
    for chunk, shuffle, dup in ((None, False, False), (7, False, False), (50, True, True)):
        runner, _, sink = setup({"a": "dma-01", "b": "dma-01"})
        rows = _episode_rows()
        if dup:
            rows += rows[::5]  # repeated uplinks
        if shuffle:  # out of order by up to half an hour, within the lateness
            rng = random.Random(4)
            rows.sort(key=lambda r: (r[0] + timedelta(minutes=rng.uniform(0, 30)), r[1]))
            for i in range(0, len(rows), chunk or 1):
                runner.feed(rows[i:i + (chunk or 1)])
            runner.finish(until.timestamp())
        else:
            run(runner, rows, until, chunk)
        results.append([(d.rule, d.subject, d.state, d.at, d.severity, d.evidence.get("value")) for d in sink.got])
    assert results[0] == results[1] == results[2]
    assert ("air.pm10.alert", "dma-01", OPEN, DAY0 + 72 * H, "major", 81.0) in results[0]
    assert sum(1 for r in results[0] if r[0] == "air.no2.alert" and r[2] == OPEN) == 3  # each morning


def test_implausible_values_are_dropped_as_sensor_faults() -> None:
    runner, det, sink = setup({"s1": "dma-01"})
    rows = readings("s1", DAY0, 3, 150, "no2")
    rows += [(DAY0 + timedelta(minutes=20), "s1", QID["no2"], math.nan),
             (DAY0 + H + timedelta(minutes=20), "s1", QID["no2"], 5000.0),
             (DAY0 + 2 * H + timedelta(minutes=20), "s1", QID["no2"], -40.0)]
    run(runner, rows, DAY0 + 3 * H + LATE)
    assert transitions(sink) == [] and det.rejected_readings == 3


def test_readings_later_than_the_lateness_are_dropped() -> None:
    runner, det, sink = setup({"s1": "dma-01"})
    run(runner, readings("s1", DAY0, 1, 150, "no2"), DAY0 + 3 * H)  # the first hour is decided
    runner.feed(readings("s1", DAY0, 1, 450, "no2"))  # too late to change it
    runner.finish((DAY0 + 4 * H).timestamp())
    assert transitions(sink) == [] and det.late_readings == 4


def test_lateness_setting_decides_when_an_hour_is_complete() -> None:
    runner, _, sink = setup({"s1": "dma-01"}, AirQualitySettings(lateness_s=0))
    runner.feed(readings("s1", DAY0, 1, 450, "no2"))
    runner.finish((DAY0 + H).timestamp())
    assert transitions(sink) == [("air.no2.information", "dma-01", OPEN, DAY0 + H, "warning")]


def test_sensor_interval_setting_sets_the_hourly_75_percent_rule() -> None:
    # a 10-minute profile: 6 readings expected, 5 needed; 4 readings is not a valid hour
    runner, _, sink = setup({"s1": "dma-01"}, AirQualitySettings(expected_interval_s=600))
    run(runner, readings("s1", DAY0, 1, 450, "no2", per_hour=4), DAY0 + H + LATE)
    assert transitions(sink) == []
    runner, _, sink = setup({"s1": "dma-01"}, AirQualitySettings(expected_interval_s=600))
    run(runner, readings("s1", DAY0, 1, 450, "no2", per_hour=5), DAY0 + H + LATE)
    assert len(transitions(sink)) == 1


# --- the zone's indices -----------------------------------------------------------------------------------------------


def test_atmo_of_each_day_and_the_latest_eaqi_per_zone() -> None:
    runner, det, _ = setup({"a": "dma-01"})
    rows = readings("a", DAY0, 48, days(15, 45), "pm10") + readings("a", DAY0, 48, lambda i: 60 if i == 30 else 30,
                                                                     "no2")
    run(runner, rows, DAY0 + 48 * H + LATE)
    atmo = list(det.atmo_days["dma-01"])
    assert [(a.day, a.index, a.indicative) for a in atmo] == [(date(2024, 6, 12), 1, True),
                                                               (date(2024, 6, 13), 3, True)]
    assert atmo[1].drivers == ("pm10",)
    latest = det.eaqi_latest["dma-01"]
    assert latest.eaqi.hour == DAY0 + 47 * H and latest.eaqi.indicative
    assert latest.eaqi.level == 3 and latest.eaqi.drivers == ("pm10",)  # PM10 24 h running mean 45: Moderate


# --- a simulated pollution episode through the real pipeline ---------------------------------------------------------


def test_simulated_pollution_episode_raises_pm10_information_in_every_zone_with_sensors(tmp_path) -> None:
    from clapas.simulator.city import build_city
    from clapas.simulator.incidents import default_incidents
    from tests.helpers import detect_simulated

    city = build_city(0, 300)
    air = city.only("air_quality")
    sensors = air.devices
    start = datetime(2026, 6, 1, tzinfo=UTC)
    end = start + timedelta(days=6)
    (episode,) = [i for i in default_incidents(city, start, end, 0) if i.kind == "pollution"]
    det = AirDetector()
    sink = detect_simulated(air, [det], start, end, 0, [episode], tmp_path, finish_after_s=2 * 3600)
    zones = {d.device.zone for d in sensors}
    opened = sink.opened()
    assert {d.rule for d in opened} == {"air.pm10.information"}
    assert {d.subject for d in opened} == zones
    for d in opened:  # during the episode (decided at the end of its local day), never on ordinary days
        assert episode.start < d.at <= episode.end + timedelta(days=1)
        assert d.evidence["indicative"] and d.evidence["sensors"] >= 1 and d.evidence["value"] > 50
    assert all(det.atmo_days[z] for z in zones)
