"""Silent devices: T from the registry, the profile or learned; opens at the configured multiple of T (± one check),
never for a device sending at T ± 2 %, clears on the next uplink."""

from __future__ import annotations

import random

from clapas.config import HealthSettings, ProfileSettings
from clapas.detectors.base import DetectorRunner, MemorySink, Registry
from clapas.detectors.health import HealthDetector
from clapas.detectors.health.detector import SILENT
from tests.detectors.health.chain import T0, Stream, eui

T = 900.0


def _devices(n: int, interval: float | None = T, **extra) -> list[dict]:
    return [{"eui": eui(i), "kind": "weather_station", "zone": "z", "expected_interval_s": interval, **extra}
            for i in range(n)]


def test_jitter_of_two_percent_never_opens_and_silence_opens_at_three_t_then_clears() -> None:
    s = HealthSettings()
    st = Stream(_devices(20), s)
    rng = random.Random(1)
    stop_at = T0 + 2 * 86400  # device 0 stops then, comes back 6 hours later
    events = []
    for i in range(20):
        t = T0 + rng.random() * T
        while t < T0 + 4 * 86400:
            if not (i == 0 and stop_at <= t < stop_at + 6 * 3600):
                events.append((t, i))
            t += T * (1 + rng.uniform(-0.02, 0.02))
    events.sort()
    last0 = max(t for t, i in events if i == 0 and t < stop_at)
    for t, i in events:
        st.up(t, eui(i))
    opened = st.opened(SILENT)
    assert [d.subject for d in opened] == [eui(0)]
    at = opened[0].at.timestamp()
    expected = last0 + s.silent_factor * T
    assert abs(at - expected) <= s.check_interval_s
    cleared = [d for d in st.transitions(SILENT) if d.state == "clear"]
    back = min(t for t, i in events if i == 0 and t >= stop_at)
    assert len(cleared) == 1 and abs(cleared[0].at.timestamp() - back) < 1e-3


def test_interval_from_profile_then_registry_then_learned() -> None:
    devices = [{"eui": eui(1), "kind": "weather_station", "profile": "p", "expected_interval_s": 60},
               {"eui": eui(2), "kind": "weather_station", "expected_interval_s": 60},
               {"eui": eui(3), "kind": "weather_station"}]
    det = HealthDetector(HealthSettings(), profiles={"p": ProfileSettings(expected_interval_s=600)})
    DetectorRunner([det], MemorySink(), Registry(devices=devices, zones=[{"id": "z"}]))
    assert det.interval(eui(1)) == 600
    assert det.interval(eui(2)) == 60
    assert det.interval(eui(3)) is None  # nothing to learn from yet
    st = Stream([{"eui": eui(3), "kind": "weather_station"}])
    for k in range(10):
        st.up(T0 + k * 1800.0, eui(3))
    st.flush()
    assert st.det.interval(eui(3)) == 1800.0
    st.up(T0 + 9 * 1800.0 + 3 * 1800.0 + 400, eui(4))  # another device moves the stream's time on
    assert [d.subject for d in st.opened(SILENT)] == [eui(3)]


def test_one_batch_holding_the_gap_opens_and_clears_as_small_batches_do() -> None:
    def run(per_batch: int) -> list[tuple[str, str, float]]:
        st = Stream(_devices(2), per_batch=per_batch)
        for k in range(40):
            t = T0 + k * T
            st.up(t, eui(1))
            if not 10 <= k < 20:
                st.up(t + 5, eui(0))
        return [(d.state, d.subject, d.at.timestamp()) for d in st.transitions(SILENT)]

    small, big = run(1), run(10_000)
    assert small == big and [s for s, _, _ in small] == ["open", "clear"]


def test_never_seen_device() -> None:
    s = HealthSettings()
    st = Stream(_devices(2), s)
    for k in range(int(s.never_seen_after_s // T) + 2):
        st.up(T0 + k * T, eui(0))
    opened = st.opened(SILENT)
    assert [(d.subject, d.evidence["state"]) for d in opened] == [(eui(1), "never_seen")]
