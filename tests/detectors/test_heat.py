"""Heat detectors on synthetic series: a heatwave opening after 3 days and 3 nights across a month boundary and
lifting, a 2-day heat peak staying silent, unavailable days, spikes and late readings; heat stress sustained vs a
spike, escalation, clearing, UTCI in the evidence."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from clapas.detectors.base import CLEAR, OPEN, Detection, DetectorRunner, Registry
from clapas.detectors.heat import HeatDetector
from clapas.indices.heat import EXTREME, HEATWAVE, NONE, PEAK, UNAVAILABLE, HeatSettings
from clapas.model import QUANTITY_BY_KEY

PARIS = ZoneInfo("Europe/Paris")
T = QUANTITY_BY_KEY["air.temperature"].id
RH = QUANTITY_BY_KEY["air.humidity"].id
WIND = QUANTITY_BY_KEY["wind.speed"].id
Row = tuple[datetime, str, int, float]
ZONES = [{"id": "rural-reference", "kind": "rural"}, {"id": "dma-01", "kind": "dma"}]
DEVICES = [{"eui": "ref", "kind": "weather_station", "zone": "rural-reference"},
           {"eui": "street", "kind": "weather_station", "zone": "dma-01"}]


class ListSink:
    """Every detection, repeated opens (escalations) included."""

    def __init__(self) -> None:
        self.out: list[Detection] = []

    def handle(self, detections: list[Detection]) -> None:
        self.out.extend(detections)

    def of(self, rule: str) -> list[Detection]:
        return [d for d in self.out if d.rule == rule]


def make(settings: HeatSettings | None = None) -> tuple[HeatDetector, DetectorRunner, ListSink]:
    det = HeatDetector(settings)
    sink = ListSink()
    return det, DetectorRunner([det], sink, Registry(devices=DEVICES, zones=ZONES)), sink


def shape(h: float) -> float:
    """0 at 05:00 (Tn), 1 at 15:00 (Tx), in between elsewhere."""
    if 5 <= h <= 15:
        return (1 - math.cos(math.pi * (h - 5) / 10)) / 2
    if h > 15:
        return (1 + math.cos(math.pi * (h - 15) / 14)) / 2
    return (1 + math.cos(math.pi * (h + 9) / 14)) / 2


def day_rows(d: date, tn: float, tx: float, eui: str = "ref", step_min: int = 30,
             skip_hours: Iterable[int] = ()) -> list[Row]:
    skip = set(skip_hours)
    rows = []
    for m in range(0, 24 * 60, step_min):
        if m // 60 in skip:
            continue
        t = datetime(d.year, d.month, d.day, m // 60, m % 60, tzinfo=PARIS).astimezone(UTC)
        rows.append((t, eui, T, round(tn + (tx - tn) * shape(m / 60), 2)))
    return rows


def run_days(runner: DetectorRunner, start: date, temps: list[tuple[float, float] | None], **kw) -> None:
    """Feed one local day per call (None: a day without any reading), then let the last day close."""
    for i, tt in enumerate(temps):
        if tt is not None:
            runner.feed(day_rows(start + timedelta(days=i), *tt, **kw))
    end = start + timedelta(days=len(temps))
    runner.finish(datetime(end.year, end.month, end.day, 3, tzinfo=PARIS).timestamp())


NORMAL, HOT = (18.0, 30.0), (23.0, 37.0)


def states(det: HeatDetector) -> dict[str, str]:
    return {h.day.isoformat(): h.state for h in det.days["rural-reference"]}


def test_heatwave_opens_after_three_days_and_nights_across_a_month_boundary_and_lifts() -> None:
    det, runner, sink = make()
    run_days(runner, date(2026, 7, 27), [NORMAL] * 3 + [HOT] * 5 + [NORMAL] * 3)  # hot 30 Jul – 3 Aug
    st = states(det)
    assert st["2026-07-29"] == NONE
    assert st["2026-07-30"] == st["2026-07-31"] == PEAK  # 1 and 2 days: heat peak, no alert
    assert st["2026-08-01"] == st["2026-08-03"] == HEATWAVE
    assert st["2026-08-02"] == HEATWAVE and st["2026-08-04"] == NONE
    hw = sink.of("heat.heatwave")
    assert [(d.state, d.subject) for d in hw] == [(OPEN, "rural-reference"), (CLEAR, "rural-reference")]
    opened = hw[0]
    assert opened.severity == "major"
    assert opened.at == datetime(2026, 8, 1, 23, 30, tzinfo=PARIS)  # the day's last observation
    ev = opened.evidence
    assert ev["window"] == ["2026-07-30", "2026-07-31", "2026-08-01"]
    assert ev["ibmn_c"] == 23.0 and ev["ibmx_c"] == 37.0 and ev["run_days"] == 1
    assert (ev["ibmn_threshold_c"], ev["ibmx_threshold_c"]) == (22.0, 35.0)
    assert [x["tx_c"] for x in ev["daily"]] == [37.0, 37.0, 37.0]
    assert "Météo-France" in opened.message and "own sensors" in opened.message
    assert hw[1].evidence["day"] == "2026-08-04"


def test_day_is_judged_only_after_its_windows_and_the_lateness() -> None:
    _det, runner, sink = make()
    for i, tt in enumerate([HOT] * 3):
        runner.feed(day_rows(date(2026, 6, 10) + timedelta(days=i), *tt))
    assert not sink.of("heat.heatwave")  # 12 June ended at 23:30 by the stream: not judged yet
    runner.feed([(datetime(2026, 6, 13, 1, 59, tzinfo=PARIS), "ref", T, 24.0)])
    assert not sink.of("heat.heatwave")  # 12 June closed at 00:00; lateness 2 h not yet passed
    runner.feed([(datetime(2026, 6, 13, 2, 0, tzinfo=PARIS), "ref", T, 24.0)])
    assert [d.state for d in sink.of("heat.heatwave")] == [OPEN]


def test_two_day_heat_peak_does_not_open() -> None:
    det, runner, sink = make()
    run_days(runner, date(2026, 7, 1), [NORMAL] * 3 + [HOT] * 2 + [NORMAL] * 3)
    st = states(det)
    assert [st[f"2026-07-0{i}"] for i in range(3, 8)] == [NONE, PEAK, PEAK, NONE, NONE]
    worst = max(h.ibmx for h in det.days["rural-reference"] if h.ibmx is not None)
    assert worst == pytest.approx((30 + 37 + 37) / 3)  # 34.7 < 35
    assert not sink.of("heat.heatwave")


def test_unavailable_day_keeps_the_alert_and_delays_lifting() -> None:
    det, runner, sink = make()
    # 3 hot days, then a hot day whose afternoon is lost (12 hours covered < 18), then cool days
    for i, tt in enumerate([HOT] * 3):
        runner.feed(day_rows(date(2026, 7, 10) + timedelta(days=i), *tt))
    runner.feed(day_rows(date(2026, 7, 13), *HOT, skip_hours=range(12, 24)))
    run_days(runner, date(2026, 7, 14), [NORMAL] * 4)
    st = states(det)
    assert st["2026-07-12"] == HEATWAVE
    assert st["2026-07-13"] == UNAVAILABLE  # Tx unknown: no statement, even though 12 hours were hot
    assert st["2026-07-14"] == st["2026-07-15"] == UNAVAILABLE  # their IBM windows hold 13 July
    assert st["2026-07-16"] == NONE
    hw = sink.of("heat.heatwave")
    assert [d.state for d in hw] == [OPEN, CLEAR]
    assert hw[1].evidence["day"] == "2026-07-16"


def test_silent_station_makes_unavailable_days() -> None:
    det, runner, _sink = make()
    run_days(runner, date(2026, 7, 1), [NORMAL, None, NORMAL, NORMAL, NORMAL])
    # the street station keeps the stream going while the reference is silent on 2 July
    st = states(det)
    assert st["2026-07-02"] == UNAVAILABLE and st["2026-07-05"] == NONE
    assert det.days["rural-reference"][1].tn is None


def test_extreme_escalates_when_configured() -> None:
    det, runner, sink = make(HeatSettings(extreme_min_days=3))
    run_days(runner, date(2026, 7, 1), [HOT] * 6 + [NORMAL] * 3)
    hw = sink.of("heat.heatwave")
    assert [(d.state, d.severity, d.evidence["day"]) for d in hw] == [
        (OPEN, "major", "2026-07-03"), (OPEN, "critical", "2026-07-05"), (CLEAR, "info", "2026-07-07")]
    assert states(det)["2026-07-06"] == EXTREME


def test_spike_and_out_of_order_readings_do_not_change_the_day() -> None:
    det, runner, _sink = make()
    rows = day_rows(date(2026, 7, 2), *NORMAL)
    noon = datetime(2026, 7, 2, 12, 10, tzinfo=PARIS)
    rows.append((noon, "ref", T, 47.0))  # one faulty sample
    rows.append((noon + timedelta(minutes=10), "ref", T, 999.0))  # out of range
    rows.sort(key=lambda r: r[0], reverse=True)  # the whole day out of order
    runner.feed(day_rows(date(2026, 6, 30), *NORMAL))
    runner.feed(day_rows(date(2026, 7, 1), *NORMAL))
    runner.feed(rows)
    run_days(runner, date(2026, 7, 3), [NORMAL, NORMAL])
    day = next(h for h in det.days["rural-reference"] if h.day == date(2026, 7, 2))
    assert (day.tn, day.tx, day.state) == (18.0, 30.0, NONE)
    assert det.heatwave.rejected == 1
    # a reading of a day already judged is dropped and counted
    runner.feed([(datetime(2026, 7, 2, 15, tzinfo=PARIS), "ref", T, 40.0)])
    assert det.heatwave.late_readings == 1


def test_reference_stations_from_settings() -> None:
    det, runner, sink = make(HeatSettings(reference_stations=("street",)))
    for i in range(4):
        runner.feed(day_rows(date(2026, 7, 1) + timedelta(days=i), *HOT, eui="street"))
        runner.feed(day_rows(date(2026, 7, 1) + timedelta(days=i), *NORMAL, eui="ref"))
    runner.finish(datetime(2026, 7, 5, 3, tzinfo=PARIS).timestamp())
    assert set(det.days) == {"dma-01"}
    assert [d.subject for d in sink.of("heat.heatwave")] == ["dma-01"]


def test_other_department_thresholds() -> None:
    det, runner, sink = make(HeatSettings(department="30"))  # Gard 23 / 36
    run_days(runner, date(2026, 7, 1), [(22.5, 37.0)] * 4)
    assert not sink.of("heat.heatwave")
    assert states(det)["2026-07-03"] == PEAK


# --- heat stress ---------------------------------------------------------------------------------------------------
def stress_rows(start: datetime, hours: float, temp: float, rh: float, eui: str = "street",
                wind: float | None = None) -> list[Row]:
    rows: list[Row] = []
    for k in range(int(hours * 6)):
        t = start + timedelta(minutes=10 * k)
        rows += [(t, eui, T, temp), (t, eui, RH, rh)]
        if wind is not None:
            rows.append((t, eui, WIND, wind))
    return rows


def test_heat_stress_sustained_opens_and_clears() -> None:
    _det, runner, sink = make(HeatSettings(stress_clear_h=2.0))
    t0 = datetime(2026, 7, 20, 12, tzinfo=PARIS)
    runner.feed(stress_rows(t0 - timedelta(hours=2), 2, 30.0, 40.0))  # humidex ~36: some discomfort
    runner.feed(stress_rows(t0, 3, 36.0, 35.0))  # humidex ~42: great discomfort
    runner.feed(stress_rows(t0 + timedelta(hours=3), 3, 29.0, 40.0))
    hs = sink.of("heat.heat_stress")
    assert [(d.state, d.subject) for d in hs] == [(OPEN, "street"), (CLEAR, "street")]
    assert hs[0].at == t0 + timedelta(hours=2)  # 2 h sustained
    assert hs[0].severity == "warning"
    ev = hs[0].evidence
    assert ev["humidex_category"] == "great discomfort" and 40 <= ev["humidex"] < 45
    assert ev["heat_index_category"] == "extreme caution"
    assert "utci_c" not in ev  # no wind: no UTCI
    assert hs[1].at == t0 + timedelta(hours=5)  # 2 h below after the last hot reading


def test_heat_stress_spike_and_short_peak_stay_silent() -> None:
    _det, runner, sink = make()
    t0 = datetime(2026, 7, 20, 12, tzinfo=PARIS)
    rows = stress_rows(t0, 4, 30.0, 40.0)
    rows[24:26] = [(rows[24][0], "street", T, 48.0), (rows[24][0], "street", RH, 60.0)]  # one noisy uplink
    runner.feed(rows)
    runner.feed(stress_rows(t0 + timedelta(hours=4), 1.5, 36.0, 35.0))  # 1.5 h: short of the 2 h
    runner.feed(stress_rows(t0 + timedelta(hours=5.5), 2, 30.0, 40.0))
    assert not sink.of("heat.heat_stress")


def test_heat_stress_gap_restarts_the_count_and_escalation() -> None:
    _det, runner, sink = make()
    t0 = datetime(2026, 7, 21, 11, tzinfo=PARIS)
    runner.feed(stress_rows(t0, 1.5, 36.0, 35.0))
    runner.feed(stress_rows(t0 + timedelta(hours=3), 1.9, 36.0, 35.0))  # after a 1.5 h silence: counts afresh
    assert not sink.of("heat.heat_stress")
    runner.feed(stress_rows(t0 + timedelta(hours=4.9), 0.5, 36.0, 35.0))
    runner.feed(stress_rows(t0 + timedelta(hours=5.4), 3, 39.0, 40.0))  # humidex ~50: dangerous
    hs = sink.of("heat.heat_stress")
    assert [(d.state, d.severity) for d in hs] == [(OPEN, "warning"), (OPEN, "major")]
    assert hs[1].evidence["humidex_category"] == "dangerous"
    assert hs[1].at == t0 + timedelta(hours=7.4)  # the higher category held 2 h too


def test_heat_stress_utci_when_wind_is_reported() -> None:
    _det, runner, sink = make()
    runner.feed(stress_rows(datetime(2026, 7, 20, 12, tzinfo=PARIS), 2.5, 36.0, 35.0, wind=2.0))
    ev = sink.of("heat.heat_stress")[0].evidence
    assert 32 <= ev["utci_c"] <= 40 and ev["utci_category"].endswith("heat stress")
    assert ev["utci_tmrt"] == "air temperature" and ev["wind_10m_ms"] == 2.0


def test_heat_stress_ignores_late_readings() -> None:
    det, runner, sink = make()
    t0 = datetime(2026, 7, 20, 12, tzinfo=PARIS)
    runner.feed(stress_rows(t0, 1, 30.0, 40.0))
    runner.feed(stress_rows(t0, 1, 36.0, 35.0))  # the same hour again, hot: older than the last reading
    assert det.stress.out_of_order == 6  # uplinks
    assert not sink.of("heat.heat_stress")


def test_long_silence_judges_only_the_kept_days() -> None:
    det, runner, _ = make()
    run_days(runner, date(2026, 6, 1), [NORMAL] * 3)
    runner.feed([(datetime(2027, 6, 1, 12, tzinfo=PARIS), "street", T, 25.0)])  # a year later
    days = det.days["rural-reference"]
    assert len(days) == days.maxlen == 62
    assert days[-1].day == date(2027, 5, 31) and days[-1].state == UNAVAILABLE


# --- the simulator's default heatwave (the one `clapas demo` shows) through the whole chain --------------------------
def test_the_default_heatwave_opens_heat_heatwave_once_and_lifts(tmp_path):
    from clapas.simulator.city import build_city
    from clapas.simulator.incidents import default_incidents
    from tests.helpers import detect_simulated

    full = build_city(34, 300)
    end = datetime(2026, 11, 26, tzinfo=UTC)  # late November, as a demo run today would be: the heat is injected
    start = end - timedelta(days=7)
    (heatwave,) = [i for i in default_incidents(full, start, end, 34) if i.kind == "heatwave"]
    sink = detect_simulated(full.only("weather_station"), [HeatDetector()], start, end, 34, [heatwave], tmp_path)
    opened = [d for d in sink.transitions if d.rule == "heat.heatwave" and d.state == OPEN]
    assert [d.subject for d in opened] == ["rural-reference"]
    # three whole hot days: decided at the close of the third (local midnight + lateness)
    assert heatwave.start + timedelta(days=3) < opened[0].at < heatwave.end
    assert [d.at > heatwave.end for d in sink.transitions if d.rule == "heat.heatwave" and d.state == CLEAR] == [True]


def test_heat_stress_is_one_alert_per_station_over_a_hot_spell() -> None:
    _det, runner, sink = make()  # default: 20 h below both categories to clear
    day0 = datetime(2026, 7, 20, tzinfo=PARIS)
    for d in range(3):  # three hot afternoons (Humidex ~42 from 12:00 to 18:00), ordinary evenings and nights
        day = day0 + timedelta(days=d)
        runner.feed(stress_rows(day, 12, 24.0, 50.0))
        runner.feed(stress_rows(day + timedelta(hours=12), 6, 36.0, 35.0))
        runner.feed(stress_rows(day + timedelta(hours=18), 6, 26.0, 50.0))
    runner.feed(stress_rows(day0 + timedelta(days=3), 24, 25.0, 50.0))  # a cooler day: the spell is over
    hs = sink.of("heat.heat_stress")
    assert [d.state for d in hs] == [OPEN, CLEAR]
    assert hs[0].at == day0 + timedelta(hours=14)
    assert hs[1].at == day0 + timedelta(days=2, hours=18 + 20)  # 20 h after the last hot afternoon
