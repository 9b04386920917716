"""Gateways: three gateways, 100 devices, 20 heard only by one: stopping it opens one incident listing the 20 and
no per-device silent alert; a flap shorter than the debounce opens nothing."""

from __future__ import annotations

from clapas.config import HealthSettings
from clapas.detectors.health.detector import GATEWAY, SILENT
from clapas.detectors.health.gateways import blast_radius, offline_at
from tests.detectors.health.chain import T0, Stream, eui

T = 600.0
GWS = ("gw-a", "gw-b", "gw-c")


def _heard_by(i: int) -> tuple[str, ...]:
    if i < 20:
        return ("gw-a",)  # orphans when gw-a stops
    if i < 50:
        return ("gw-a", "gw-b")  # lose their redundancy
    return ("gw-b", "gw-c") if i % 2 else ("gw-a", "gw-b", "gw-c")


def _run(outage: tuple[float, float], flap: tuple[float, float] | None = None, per_batch: int = 200) -> Stream:
    devices = [{"eui": eui(i), "kind": "water_meter", "zone": "z", "expected_interval_s": T} for i in range(100)]
    st = Stream(devices, HealthSettings(), per_batch=per_batch)
    a0, a1 = outage
    end = T0 + 86400
    events: list[tuple[float, int, object]] = []
    for k in range(int((end - T0) // 30)):
        t = T0 + k * 30
        for g in GWS:
            if g == "gw-a" and a0 <= t < a1:
                continue
            events.append((t, 0, ("stats", g)))
    events.append((a0 + 1, 0, ("conn-off", "gw-a")))
    events.append((a1, 0, ("conn-on", "gw-a")))
    if flap is not None:
        events.append((flap[0], 0, ("conn-off", "gw-c")))
        events.append((flap[1], 0, ("conn-on", "gw-c")))
    for i in range(100):
        t = T0 + i * T / 100
        while t < end:
            rx = tuple((g, 5.0) for g in _heard_by(i) if not (g == "gw-a" and a0 <= t < a1))
            if rx:
                events.append((t, 1, (i, rx)))
            t += T
    events.sort(key=lambda e: (e[0], e[1]))
    for t, kind, what in events:
        if kind == 0:
            ev, g = what  # type: ignore[misc]
            st.gateway(t, g, "stats" if ev == "stats" else "conn", ev != "conn-off")
        else:
            i, rx = what  # type: ignore[misc]
            st.up(t, eui(i), rx=rx)
    st.flush()
    return st


def test_one_incident_lists_the_orphans_and_no_device_alert() -> None:
    a0, a1 = T0 + 6 * 3600, T0 + 12 * 3600  # six hours down: far beyond the devices' 3·T
    st = _run((a0, a1))
    incidents = st.opened(GATEWAY)
    assert [d.subject for d in incidents] == ["gw-a"]
    ev = incidents[0].evidence
    assert ev["orphaned"] == sorted(eui(i) for i in range(20))
    assert ev["lost_redundancy"] == sorted(eui(i) for i in range(20, 50))
    assert incidents[0].at.timestamp() - a0 <= 120  # offline after 60 s, debounced over 2 checks of 30 s
    assert st.opened(SILENT) == []
    cleared = [d for d in st.transitions(GATEWAY) if d.state == "clear"]
    assert len(cleared) == 1 and cleared[0].at.timestamp() >= a1


def test_a_flap_shorter_than_the_debounce_opens_nothing() -> None:
    a0 = T0 + 6 * 3600
    st = _run((a0, a0 + 40), flap=(T0 + 3 * 3600 + 5, T0 + 3 * 3600 + 20))
    assert st.opened(GATEWAY) == [] and st.opened(SILENT) == []


def test_the_same_incident_whatever_the_batching() -> None:
    a = (T0 + 6 * 3600, T0 + 7 * 3600)
    small = [(d.state, d.subject, d.at) for d in _run(a, per_batch=3).transitions(GATEWAY)]
    big = [(d.state, d.subject, d.at) for d in _run(a, per_batch=100_000).transitions(GATEWAY)]
    assert small == big and len(small) == 2


def test_offline_timing_and_blast_radius() -> None:
    s = HealthSettings()
    assert offline_at(100.0 + s.offline_factor * s.stats_interval_s, s.gateway_check_s, s.debounce_checks) == 210.0
    heard = {"d1": {"a": 10.0}, "d2": {"a": 10.0, "b": 10.0}, "d3": {"a": 10.0, "b": 1.0}, "d4": {"b": 10.0}}
    assert blast_radius("a", heard, since=5.0) == (["d1", "d3"], ["d2"])  # b heard d3 too long ago
