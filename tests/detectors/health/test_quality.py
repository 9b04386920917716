"""Data-quality flags: range, flat line, spike, clock skew; configurable per quantity; a flat-lined sensor does not
feed a heatwave (its readings are withheld from the other detectors)."""

from __future__ import annotations

from datetime import UTC, datetime

from clapas.config import HealthSettings, QualityCheck
from clapas.detectors.base import Detector, DetectorRunner, MemorySink, Registry
from clapas.detectors.health import HealthDetector
from clapas.detectors.health.detector import STUCK
from clapas.detectors.health.quality import FLAT, RANGE, SPIKE, QuantityTrack, judge
from clapas.store.base import Batch
from tests.detectors.health.chain import T0, Stream, eui

Q_T = 6


def test_judge_range_spike_and_flat() -> None:
    c = QualityCheck(min=-40, max=60, flat_s=3600, spike=10)
    q = QuantityTrack()
    assert judge(c, q, 0, 99.0) == RANGE
    assert judge(c, q, 0, 20.0) == ""
    assert judge(c, q, 600, 35.0) == SPIKE
    assert judge(c, q, 1200, 20.5) == ""  # back: that was a spike
    assert judge(c, q, 1800, 33.0) == SPIKE
    assert judge(c, q, 2400, 33.2) == ""  # it held: a change of level
    assert judge(c, q, 4200, 33.2) == ""
    assert judge(c, q, 6000, 33.2) == FLAT


class _Heat(Detector):
    """What a downstream rule sees."""

    kinds = frozenset({"weather_station"})

    def __init__(self) -> None:
        self.seen: list[float] = []

    def observe(self, dev, t, values, out) -> None:
        if Q_T in values:
            self.seen.append(values[Q_T])


def test_a_flat_lined_sensor_does_not_feed_other_rules() -> None:
    s = HealthSettings(quality={"air.temperature": QualityCheck(flat_s=6 * 3600)})
    health, heat = HealthDetector(s), _Heat()
    sink = MemorySink()
    runner = DetectorRunner([health, heat], sink, Registry(devices=[{"eui": eui(1), "kind": "weather_station"}],
                                                          zones=[{"id": "z"}]))

    b = Batch()
    for k in range(24):
        b.o_time.append(datetime.fromtimestamp(T0 + k * 3600, UTC))
        b.o_eui.append(eui(1))
        b.o_quantity.append(Q_T)
        b.o_value.append(38.0)  # stuck
    runner.on_commit(b)
    assert len(heat.seen) == 6  # the first six hours could not be told from a still day
    assert [d.rule for d in sink.opened()] == [STUCK]
    assert {f[3] for f in runner.flags} == {FLAT} and len(runner.flags) == 18


def test_clock_skew_is_flagged_not_withheld() -> None:
    st = Stream([{"eui": eui(1), "kind": "weather_station"}], HealthSettings(quality={}))
    st.up(T0, eui(1), device_time=T0 - 600)
    st.up(T0 + 900, eui(1), device_time=T0 + 905)
    st.flush()
    assert [(f[1], f[3]) for f in st.runner.flags] == [(eui(1), "clock_skew")]
