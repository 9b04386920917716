"""The water rules on hand-made meter streams: each rule opens when it should, clears when it should, and stays
silent on ordinary use, legitimate high use and missing uplinks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from clapas.config import WaterSettings
from clapas.detectors import CLEAR, OPEN, DetectorRunner, MemorySink, Registry
from clapas.detectors.base import run_observations
from clapas.detectors.water import WaterDetector
from clapas.model import QUANTITY_BY_KEY

VOL = QUANTITY_BY_KEY["water.volume"].id
FLOW = QUANTITY_BY_KEY["water.flow"].id
REV = QUANTITY_BY_KEY["water.reverse_volume"].id
LEAK_FLAG = QUANTITY_BY_KEY["alarm.leak"].id
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 01:00 in Montpellier
HOME = "00000000000000a1"
SHOP = "00000000000000b2"
DMA = "00000000000000d1"
Row = tuple[datetime, str, int, float]


def registry(*extra: dict) -> Registry:
    devices = [
        {"eui": HOME, "kind": "water_meter", "zone": "dma-01", "premises_use": "habitation", "subscriber": "AB-1",
         "tags": {}},
        {"eui": SHOP, "kind": "water_meter", "zone": "dma-01", "premises_use": "professional", "subscriber": "AB-2",
         "tags": {}},
        {"eui": DMA, "kind": "district_meter", "zone": "dma-01", "tags": {}},
        *extra,
    ]
    return Registry(devices=devices)


def household(t: datetime) -> float:
    """L/h: an ordinary dwelling: nothing at night, some use in the morning and the evening."""
    h = (t.hour + 1) % 24  # local time in winter
    return {7: 60.0, 8: 40.0, 12: 20.0, 19: 50.0, 20: 70.0, 21: 30.0}.get(h, 0.0)


def meter(eui: str, flow: Callable[[datetime], float], hours: float, *, start: datetime = START,
          every_s: float = 3600, phase_s: float = 1380, index0: float = 100.0,
          lost: Callable[[int], bool] = lambda n: False, with_flow: bool = True,
          reverse: bool = False) -> Iterator[Row]:
    """Readings of one meter: the index integrates `flow` minute by minute (exact to the litre)."""
    index, rev = index0, 0.0
    t = start + timedelta(seconds=phase_s)
    n = 0
    prev = start
    end = start + timedelta(hours=hours)
    while t < end:
        litres = 0.0
        m = prev
        while m < t:
            step = min(timedelta(minutes=1), t - m)
            litres += flow(m) * step.total_seconds() / 3600
            m += step
        index += litres / 1000
        if litres < 0:
            rev -= litres / 1000
        if not lost(n):
            yield t, eui, VOL, round(index, 3)
            if with_flow:
                yield t, eui, FLOW, round(litres / ((t - prev).total_seconds() / 3600), 1)
            if reverse:
                yield t, eui, REV, round(rev, 3)
        prev = t
        n += 1
        t += timedelta(seconds=every_s)


def run(rows: list[Row], reg: Registry | None = None, settings: WaterSettings | None = None) -> MemorySink:
    sink = MemorySink()
    runner = DetectorRunner([WaterDetector(settings)], sink, reg or registry())
    run_observations(runner, sorted(rows, key=lambda r: r[0]), chunk=997)
    runner.finish(max(r[0] for r in rows).timestamp() + 3 * 86400)
    return sink


def opened(sink: MemorySink, rule: str) -> list:
    return [d for d in sink.transitions if d.rule == rule and d.state == OPEN]


def test_ordinary_use_raises_nothing():
    sink = run(list(meter(HOME, household, 24 * 10)) + list(meter(SHOP, household, 24 * 10, phase_s=600)))
    assert sink.transitions == []


def test_continuous_flow_opens_after_24h_without_a_flow_free_hour_and_clears_after_one():
    # starting at a reading, so that every hourly interval of the window carries the whole leak
    leak_from, leak_to = START + timedelta(days=2, hours=13, minutes=23), START + timedelta(days=5)

    def flow(t: datetime) -> float:
        return household(t) + (18.0 if leak_from <= t < leak_to else 0.0)

    sink = run(list(meter(HOME, flow, 24 * 7)))
    (op,) = opened(sink, "water.continuous_flow")
    last_dry = datetime.fromisoformat(op.evidence["last_flow_free_hour_end"])
    assert last_dry <= leak_from
    assert timedelta(hours=23) < op.at - last_dry <= timedelta(hours=25)  # within the hour after the window
    assert op.severity == "warning" and op.evidence["min_hourly_flow_lph"] >= 18  # Kamstrup N=1 to N=2
    clear = [d for d in sink.transitions if d.rule == "water.continuous_flow" and d.state == CLEAR]
    assert len(clear) == 1 and leak_to < clear[0].at <= leak_to + timedelta(hours=3)


def test_continuous_flow_survives_lost_uplinks_but_not_long_silences():
    def flow(t: datetime) -> float:
        return household(t) + (18.0 if t >= START + timedelta(days=1) else 0.0)

    sink = run(list(meter(HOME, flow, 24 * 4, lost=lambda n: n % 7 == 3)))
    assert len(opened(sink, "water.continuous_flow")) == 1
    # a 6-hour silence every 20 hours: nobody can say there was no flow-free hour inside it
    sink = run(list(meter(HOME, flow, 24 * 4, lost=lambda n: n % 20 < 6)))
    assert opened(sink, "water.continuous_flow") == []


def test_night_flow_needs_two_nights_in_a_row():
    def flow(t: datetime) -> float:
        return household(t) + (20.0 if t >= START + timedelta(days=1, hours=12) else 0.0)

    sink = run(list(meter(HOME, flow, 24 * 4)))
    (op,) = opened(sink, "water.night_flow")
    assert op.evidence["nights"] == 2 and op.evidence["night"] == "2026-03-05"

    def one_night(t: datetime) -> float:  # a single night of water (a sick child), then nothing
        return household(t) + (20.0 if START + timedelta(days=2) <= t < START + timedelta(days=2, hours=5) else 0)

    assert opened(run(list(meter(HOME, one_night, 24 * 4))), "water.night_flow") == []


def test_burst_is_a_sustained_flow_above_what_a_tap_gives():
    def burst(t: datetime) -> float:
        return household(t) + (2800.0 if START + timedelta(days=1, hours=10) <= t < START + timedelta(days=1,
                                                                                                      hours=15) else 0)

    sink = run(list(meter(HOME, burst, 24 * 3)))
    (op,) = opened(sink, "water.burst")
    assert op.severity == "critical" and op.evidence["flow_lph"] > 2000
    assert op.at - (START + timedelta(days=1, hours=10)) <= timedelta(hours=3, minutes=30)
    assert [d.state for d in sink.transitions if d.rule == "water.burst"] == [OPEN, CLEAR]

    def pool(t: datetime) -> float:  # a pool filled with a garden hose for 12 hours: legitimate
        return household(t) + (1200.0 if START + timedelta(days=1, hours=8) <= t < START + timedelta(days=1,
                                                                                                    hours=20) else 0)

    assert run(list(meter(HOME, pool, 24 * 3))).transitions == []


def test_backflow_from_the_index_going_back_and_the_reverse_register():
    def back(t: datetime) -> float:
        if START + timedelta(days=1, hours=2) <= t < START + timedelta(days=1, hours=5):
            return -60.0
        return household(t)

    sink = run(list(meter(HOME, back, 48, reverse=True)))
    states = [(d.state, d.rule) for d in sink.transitions]
    assert states == [(OPEN, "water.backflow"), (CLEAR, "water.backflow")]
    op = sink.transitions[0]
    assert op.evidence["index_change_m3"] < 0 and op.evidence["reverse_volume_change_m3"] > 0


def test_meter_alarm_flags_keep_the_meters_wording():
    t = START + timedelta(hours=3)
    rows = [(t, HOME, VOL, 1.0), (t, HOME, LEAK_FLAG, 1.0),
            (t + timedelta(hours=1), HOME, VOL, 1.001), (t + timedelta(hours=1), HOME, LEAK_FLAG, 1.0),
            (t + timedelta(hours=2), HOME, VOL, 1.001), (t + timedelta(hours=2), HOME, LEAK_FLAG, 0.0)]
    sink = run(rows)
    assert [(d.rule, d.state) for d in sink.transitions] == [("water.meter_alarm.leak", OPEN),
                                                             ("water.meter_alarm.leak", CLEAR)]
    assert "LEAK" in sink.transitions[0].message


def _year_and_now(factor_from: datetime | None, eui: str = HOME, days: int = 14) -> list[Row]:
    """The same dwelling 52 weeks ago (history) and now, consumption tripled from `factor_from`."""
    last_year = START - timedelta(days=364)
    rows = list(meter(eui, household, 24 * days, start=last_year))

    def now(t: datetime) -> float:
        return household(t) * (3.0 if factor_from is not None and t >= factor_from else 1.0)

    return rows + list(meter(eui, now, 24 * days, index0=300.0))


def test_overconsumption_opens_with_the_subscriber_notice():
    sink = run(_year_and_now(START + timedelta(days=6)))
    (op,) = opened(sink, "water.overconsumption")
    ev = op.evidence
    assert op.subject == HOME and ev["subscriber"] == "AB-1"
    assert ev["reference_source"].startswith("subscriber")
    assert ev["median_ratio"] > 2.5
    assert ev["notice_date"] == op.at.date().isoformat()
    notice = datetime.fromisoformat(ev["notice_date"])
    respond = datetime.fromisoformat(ev["respond_by"])
    assert respond.day == notice.day and (respond.month - notice.month) % 12 == 1
    assert ev["billable_water_cap_m3"] == round(2 * ev["reference_volume_m3"], 3)
    assert ev["billable_water_m3"] == round(min(ev["period_volume_m3"], ev["billable_water_cap_m3"]), 3)
    assert ev["billable_sanitation_m3"] <= ev["reference_volume_m3"] + 1e-9
    # two abnormal days out of three: the third abnormal day at the latest
    assert op.at - (START + timedelta(days=6)) < timedelta(days=3, hours=2)


def test_overconsumption_is_for_dwellings_and_ignores_one_exceptional_day():
    assert opened(run(_year_and_now(START + timedelta(days=6), eui=SHOP)), "water.overconsumption") == []
    last_year = list(meter(HOME, household, 24 * 14, start=START - timedelta(days=364)))

    def pool_day(t: datetime) -> float:
        return household(t) + (1200.0 if START + timedelta(days=5, hours=8) <= t < START + timedelta(days=5,
                                                                                                    hours=20) else 0)

    assert run(last_year + list(meter(HOME, pool_day, 24 * 14, index0=300.0))).transitions == []


def test_overconsumption_falls_back_on_the_zone_without_history():
    size = {"dwelling_size": "T3"}
    peers = [{"eui": f"00000000000001{i:02x}", "kind": "water_meter", "zone": "dma-01",
              "premises_use": "habitation", "tags": size} for i in range(5)]
    bigger = [{"eui": f"00000000000002{i:02x}", "kind": "water_meter", "zone": "dma-01",
               "premises_use": "habitation", "tags": {"dwelling_size": "T6"}} for i in range(3)]
    rows = [r for i, p in enumerate(peers) for r in meter(p["eui"], household, 24 * 14, phase_s=60 * i + 30)]
    rows += [r for i, p in enumerate(bigger) for r in meter(p["eui"], lambda t: 5 * household(t), 24 * 14,
                                                             phase_s=60 * i + 400)]

    def tripled(t: datetime) -> float:
        return household(t) * (3.0 if t >= START + timedelta(days=9) else 1.0)

    home = {"eui": HOME, "kind": "water_meter", "zone": "dma-01", "premises_use": "habitation", "tags": size}
    sink = run(rows + list(meter(HOME, tripled, 24 * 14)), registry(*peers, *bigger, home))
    (op,) = opened(sink, "water.overconsumption")  # the T6 flats neither raise alerts nor dilute the T3 reference
    assert op.subject == HOME and op.evidence["reference_source"].startswith("zone dma-01 dwellings with")
    # without the tag, nothing says which dwellings are comparable: no reference, no judgement
    untagged = [{**p, "tags": {}} for p in peers]
    assert opened(run(rows + list(meter(HOME, tripled, 24 * 14)), registry(*untagged)), "water.overconsumption") == []


def test_district_night_flow_rises_above_its_7_night_percentile():
    leak_from, leak_to = START + timedelta(days=8, hours=20), START + timedelta(days=10, hours=20)

    def inflow(t: datetime) -> float:
        base = 300.0 + 3000.0 * (0 < (t.hour + 1) % 24 - 6 < 16)
        return base + (1600.0 if leak_from <= t < leak_to else 0.0)

    sink = run(list(meter(DMA, inflow, 24 * 13, every_s=900, phase_s=120)))
    states = [(d.rule, d.state) for d in sink.transitions]
    assert states == [("water.district_night_flow", OPEN), ("water.district_night_flow", CLEAR)]
    op = sink.transitions[0]
    assert op.subject == "dma-01"
    assert op.evidence["baseline_p20_lph"] < 320 and op.evidence["min_night_flow_lph"] > 1800
    # one dwelling and one shop in the zone: 0.06 × 10 L/h + 50 L/h of legitimate night use
    assert op.evidence["allowed_rise_lph"] == 50.6
    assert op.at - leak_from < timedelta(hours=12)


def test_meters_without_an_index_use_their_flow():
    def flow(t: datetime) -> float:
        return household(t) + (18.0 if t >= START + timedelta(days=1) else 0.0)

    rows = [r for r in meter(HOME, flow, 24 * 4) if r[2] != VOL]
    assert len(opened(run(rows), "water.continuous_flow")) == 1
