"""The flood rules on hand-made gauge streams (open, escalate, clear; gaps, noise, late and repeated uplinks; the
catchment warning's coincidence and lifting), and a simulated storm through the whole chain."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from clapas.detectors import CLEAR, OPEN, DetectorRunner, Registry
from clapas.detectors.base import Detection, run_observations
from clapas.detectors.flood import RAIN, RIVER_LEVEL, RIVER_RISE, WARNING, FloodDetector
from clapas.indices.flood import FloodSettings
from clapas.model import QUANTITY_BY_KEY

LEVEL = QUANTITY_BY_KEY["water.level"].id
RAIN_MM = QUANTITY_BY_KEY["rain.amount"].id
START = datetime(2026, 10, 5, tzinfo=UTC)
LEZ = "catchment-lez"
MOSSON = "catchment-mosson"
LEZ_GAUGE = "00000000000000a1"  # thresholds 1.5 / 2.3 / 3.3 m, base ~0.5 m
LEZ_BARE = "00000000000000a2"  # no thresholds in the registry: only the rise rule
MOSSON_GAUGE = "00000000000000b1"
LEZ_RAIN = "00000000000000c1"
MOSSON_RAIN = "00000000000000c2"
HOUR = 3600.0
Row = tuple[datetime, str, int, float]
THRESHOLDS = {"threshold_yellow": "1.50", "threshold_orange": "2.30", "threshold_red": "3.30"}


def registry() -> Registry:
    devices = [
        {"eui": LEZ_GAUGE, "kind": "water_level", "zone": LEZ, "tags": {"river": "Lez", **THRESHOLDS}},
        {"eui": LEZ_BARE, "kind": "water_level", "zone": LEZ, "tags": {"river": "Lez"}},
        {"eui": MOSSON_GAUGE, "kind": "water_level", "zone": MOSSON, "tags": {"river": "Mosson", **THRESHOLDS}},
        {"eui": LEZ_RAIN, "kind": "rain_gauge", "zone": LEZ, "tags": {}},
        {"eui": MOSSON_RAIN, "kind": "rain_gauge", "zone": MOSSON, "tags": {}},
    ]
    zones = [{"id": LEZ, "kind": "catchment"}, {"id": MOSSON, "kind": "catchment"}]
    return Registry(devices=devices, zones=zones)


def river(eui: str, level: Callable[[float], float], hours: float, *, every_s: float = 900, phase_s: float = 130,
          noise_m: float = 0.004, lost: Callable[[int], bool] = lambda n: False) -> list[Row]:
    """Level readings: `level(h)` at h hours after START, plus ±noise_m gaussian noise (seeded)."""
    rnd = random.Random(eui)
    rows, n = [], 0
    t = phase_s
    while t < hours * HOUR:
        v = level(t / HOUR) + rnd.gauss(0, noise_m)
        if not lost(n):
            rows.append((START + timedelta(seconds=t), eui, LEVEL, round(v, 3)))
        n += 1
        t += every_s
    return rows


def rain(eui: str, intensity: Callable[[float], float], hours: float, *, every_s: float = 600,
         phase_s: float = 40) -> list[Row]:
    """Rain increments (mm since the previous uplink) of an `intensity(h)` in mm/h, integrated minute by minute."""
    rows = []
    t, prev = phase_s, 0.0
    while t < hours * HOUR:
        mm, m = 0.0, prev
        while m < t:
            step = min(60.0, t - m)
            mm += intensity((m + step / 2) / HOUR) * step / HOUR
            m += step
        rows.append((START + timedelta(seconds=t), eui, RAIN_MM, round(mm, 2)))
        prev = t
        t += every_s
    return rows


class Recorder:
    """Keeps every transition, escalations included (MemorySink keeps only the first open)."""

    def __init__(self) -> None:
        self.all: list[Detection] = []

    def handle(self, detections: list[Detection]) -> None:
        self.all.extend(detections)

    def of(self, rule: str, subject: str | None = None, state: str | None = None) -> list[Detection]:
        return [d for d in self.all if d.rule == rule and (subject is None or d.subject == subject)
                and (state is None or d.state == state)]


def run(*series: list[Row], settings: FloodSettings | None = None) -> Recorder:
    sink = Recorder()
    runner = DetectorRunner([FloodDetector(settings)], sink, registry())
    run_observations(runner, sorted((r for s in series for r in s), key=lambda r: (r[0], r[1])), chunk=113)
    return sink


def h(d: Detection) -> float:
    return (d.at - START).total_seconds() / HOUR


def flat(v: float) -> Callable[[float], float]:
    return lambda _h: v


def hump(base: float, rate: float, rise_from: float, rise_to: float) -> Callable[[float], float]:
    """Flat at `base`, rising at `rate` m/h from `rise_from` to `rise_to` (hours), then falling at the same rate."""
    def f(x: float) -> float:
        if x < rise_from:
            return base
        if x < rise_to:
            return base + rate * (x - rise_from)
        return max(base, base + rate * (rise_to - rise_from) - rate * (x - rise_to))
    return f


def shower(mm_h: float, start: float, end: float) -> Callable[[float], float]:
    return lambda x: mm_h if start <= x < end else 0.0


def test_ordinary_weather_raises_nothing():
    days = 3 * 24

    def gentle(x: float) -> float:  # a 4-h shower a day, the river swelling by 30 cm over 6 h and draining
        return 0.5 + 0.3 * max(0.0, 1 - abs((x % 24) - 12) / 6)

    sink = run(river(LEZ_GAUGE, gentle, days), river(LEZ_BARE, flat(0.8), days),
               rain(LEZ_RAIN, lambda x: 3.0 if 8 <= x % 24 < 12 else 0.0, days))
    assert sink.all == []


def test_river_level_opens_at_yellow_escalates_to_red_and_clears_with_hysteresis():
    level = hump(0.5, 0.5, 2, 8)  # up to 3.5 m at 8 h, back under 1.4 m at 12.2 h
    sink = run(river(LEZ_GAUGE, level, 20))
    opens = sink.of(RIVER_LEVEL, LEZ_GAUGE, OPEN)
    assert [d.severity for d in opens] == ["warning", "major", "critical"]
    # yellow (1.5 m), orange (2.3 m) and red (3.3 m) are reached at 4.0, 5.6 and 7.6 h; the de-spiked level runs
    # one reading (15 min) behind, and readings come every 15 min
    for d, crossing in zip(opens, (4.0, 5.6, 7.6), strict=True):
        assert crossing + 0.25 <= h(d) <= crossing + 0.55
    assert opens[0].evidence["level_m"] >= 1.5 and opens[0].evidence["threshold_yellow_m"] == 1.5
    assert "yellow height (1.50 m)" in opens[0].message and "red height (3.30 m)" in opens[2].message
    (clear,) = sink.of(RIVER_LEVEL, LEZ_GAUGE, CLEAR)
    assert clear.evidence["peak_class"] == "red"
    # below 1.4 m (yellow − 0.10 m) from ~12.2 h (+ one reading), for an hour
    assert 13.2 <= h(clear) <= 13.8
    rise = sink.of(RIVER_RISE, LEZ_GAUGE)
    assert [d.state for d in rise] == [OPEN, CLEAR]
    assert 2.8 < h(rise[0]) < 3.4  # 0.5 m/h from 2 h: the 1-hour rule, once 30 cm of it are in the window
    # the crest is at 8 h: the hour ending at 8.5 h has risen as much as it has fallen (+ one reading's lag)
    assert 8.7 < h(rise[1]) < 9.1


def test_stray_echoes_and_noise_open_nothing():
    rows = river(LEZ_GAUGE, flat(1.3), 12)
    rows[20] = (rows[20][0], LEZ_GAUGE, LEVEL, 2.6)  # one wild echo, way above orange
    assert run(rows).all == []


def test_rise_over_three_hours_opens_once_and_a_plateau_clears_it():
    # 0.27 m/h: under the 1-hour rate (0.30) but over the 3-hour one (0.25), for 5 h, then a level river
    def level(x: float) -> float:
        return 0.5 + 0.27 * min(max(x - 2, 0), 5)

    sink = run(river(LEZ_BARE, level, 16))
    rise = sink.of(RIVER_RISE, LEZ_BARE)
    assert [d.state for d in rise] == [OPEN, CLEAR]
    assert rise[0].severity == "warning" and rise[0].evidence["rise_3h_m_per_h"] >= 0.25
    assert 5.0 <= h(rise[0]) <= 5.6  # three hours of rise in the window, + one reading
    # level from 7 h: a whole hour without rise (+ one reading's lag), and no re-opening while the 3-hour rate still
    # holds the old rise
    assert 8.2 < h(rise[1]) < 8.6


def test_lost_uplinks_and_long_silences_make_no_rise():
    # a steady 0.2 m/h rise with one uplink in three lost: under both rates all along
    rows = river(LEZ_BARE, lambda x: 0.5 + 0.2 * x, 8, lost=lambda n: n % 3 == 1)
    assert run(rows).of(RIVER_RISE) == []
    # a 4-hour silence: back 1.5 m higher, level: the jump is no rate of rise
    before = river(LEZ_BARE, flat(0.5), 4)
    after = [r for r in river(LEZ_BARE, flat(2.0), 14) if r[0] >= START + timedelta(hours=8)]
    assert run(before + after).of(RIVER_RISE) == []


def test_late_and_repeated_uplinks_count_once():
    # 40 mm in 2 h is under the heavy-rain depths (45 mm in 3 h): counted twice it would not be. The stream is
    # re-fed from its start once half of it has gone through (a replay overlapping live data).
    rows = rain(LEZ_RAIN, shower(20.0, 1, 3), 8)
    sink = Recorder()
    det = FloodDetector()
    runner = DetectorRunner([det], sink, registry())
    runner.feed(rows[:15])
    runner.feed(rows)
    assert sink.all == [] and det.rain_gauges[LEZ_RAIN].series.ignored == 15
    assert det.rain_gauges[LEZ_RAIN].acc[12] == pytest.approx(40.0, abs=0.1)
    # a river reading arriving after newer ones is ignored, whatever it says
    levels = river(LEZ_GAUGE, flat(1.0), 6)
    late = (levels[10][0] - timedelta(minutes=5), LEZ_GAUGE, LEVEL, 3.0)
    sink = Recorder()
    det = FloodDetector()
    runner = DetectorRunner([det], sink, registry())
    runner.feed(levels[:12])
    runner.feed([late])
    runner.feed(levels[12:])
    assert sink.all == [] and det.out_of_order == 1


def test_rain_opens_escalates_and_clears():
    # 25 mm/h for 2 h then 60 mm/h for an hour: 110 mm
    sink = run(rain(LEZ_RAIN, lambda x: 25.0 if 1 <= x < 3 else 60.0 if 3 <= x < 4 else 0.0, 30))
    opens = sink.of(RAIN, LEZ_RAIN, OPEN)
    assert [d.severity for d in opens] == ["warning", "major"]
    assert 2.7 <= h(opens[0]) <= 2.95  # 45 mm in 3 h reached at 2.8 h
    assert opens[0].evidence["tiers"]["3h"] == "heavy" and opens[0].evidence["accumulations_mm"]["3h"] >= 45
    assert "mm in 3 h" in opens[0].message
    # major: heavy over three windows (30 mm in 1 h, 45 mm in 3 h, 55 mm in 6 h) at 3.1 h
    assert 3.1 <= h(opens[1]) <= 3.3
    assert [k for k, v in opens[1].evidence["tiers"].items() if v != "none"] == ["1h", "3h", "6h"]
    (clear,) = sink.of(RAIN, LEZ_RAIN, CLEAR)
    assert 26.0 <= h(clear) <= 26.5  # the 24-h window keeps 80 mm until the first 30 mm leave it (2.2 h + 24 h)


def test_warning_needs_heavy_rain_and_a_rising_river_of_the_same_catchment():
    storm_rain = rain(LEZ_RAIN, shower(25.0, 1, 3), 20)
    lez_rise = river(LEZ_GAUGE, hump(0.5, 0.4, 2, 5), 20)  # rising 0.4 m/h from 2 h, up to 1.7 m
    sink = run(storm_rain, lez_rise)
    (warn,) = sink.of(WARNING, LEZ, OPEN)
    assert warn.severity == "major"
    assert warn.evidence["rain"]["gauge"] == LEZ_RAIN and warn.evidence["river"]["gauge"] == LEZ_GAUGE
    # heavy rain from 2.8 h; the river's 1-hour rise reaches 0.30 m at 2.75 h (+ one reading's lag)
    assert 3.0 <= h(warn) <= 3.3
    assert "heavy rain at" in warn.message and LEZ_GAUGE in warn.message
    # the same river rise in another catchment: no warning anywhere
    sink = run(storm_rain, river(MOSSON_GAUGE, hump(0.5, 0.4, 2, 5), 20))
    assert sink.of(WARNING) == [] and sink.of(RIVER_RISE, MOSSON_GAUGE)
    # the river rising 9 hours after the rain stopped being heavy: no coincidence
    sink = run(storm_rain, river(LEZ_GAUGE, hump(0.5, 0.4, 14, 17), 24))
    assert sink.of(WARNING) == [] and sink.of(RIVER_RISE, LEZ_GAUGE) and sink.of(RAIN, LEZ_RAIN)


def test_warning_escalates_at_red_and_is_lifted_when_levels_fall():
    storm_rain = rain(LEZ_RAIN, shower(20.0, 0, 6), 40)  # 120 mm in 6 h
    lez = river(LEZ_GAUGE, hump(0.5, 0.5, 2, 8), 40)  # up to 3.5 m (red), under yellow again at ~12 h
    bare = river(LEZ_BARE, hump(0.6, 0.3, 3, 7), 40)  # rising, then falling back, never any threshold
    sink = run(storm_rain, lez, bare)
    warn = sink.of(WARNING, LEZ)
    assert [(d.state, d.severity) for d in warn] == [(OPEN, "major"), (OPEN, "critical"), (CLEAR, "info")]
    assert warn[1].evidence["river"]["class"] in ("orange", "red")
    # every gauge under yellow (1.5 m at 12 h + one reading) and not rising: lifted three hours later
    assert 15.2 <= h(warn[2]) <= 15.6
    # the 24-hour rain is still heavy for hours after the lift: stale conditions do not re-open the warning
    assert sink.of(RAIN, LEZ_RAIN, CLEAR) and h(sink.of(RAIN, LEZ_RAIN, CLEAR)[0]) > 24


# --- the simulator's storm through the whole chain -------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory):
    from clapas.simulator.city import build_city
    from clapas.simulator.incidents import default_incidents
    from tests.helpers import detect_simulated

    full = build_city(0, 300)
    city = full.only("water_level", "rain_gauge")
    start = datetime(2026, 9, 1, tzinfo=UTC)
    end = start + timedelta(days=10)
    (storm,) = [i for i in default_incidents(full, start, end, 0) if i.kind == "flood"]
    sink = detect_simulated(city, [FloodDetector()], start, end, 0, [storm], tmp_path_factory.mktemp("flood"))
    return city, storm, sink


def test_the_simulated_storm_raises_every_flood_rule_and_nothing_else(simulated):
    city, storm, sink = simulated
    in_storm = set(storm.devices) | {storm.zone}
    opened = sink.opened()
    assert opened and all(d.subject in in_storm for d in opened)  # the other catchments stay quiet
    assert all(storm.start <= d.at <= storm.end for d in opened)  # nothing from the ordinary weather
    kinds = {d.eui: d.kind for d in city.devices}
    for rule, kind in ((RIVER_LEVEL, "water_level"), (RIVER_RISE, "water_level"), (RAIN, "rain_gauge")):
        subjects = {d.subject for d in opened if d.rule == rule}
        assert subjects == {e for e in storm.devices if kinds[e] == kind}, rule
    (warn,) = sink.opened(WARNING)
    assert warn.subject == storm.zone and warn.at - storm.start <= timedelta(hours=4)
    cleared = [d for d in sink.transitions if d.rule == WARNING and d.state == CLEAR]
    assert cleared and cleared[0].at < storm.end  # lifted once the Lez is back under yellow
