"""Migration 9 on both stores: alerts of a silent device marked stale and resumed, data-quality flags beside the
observations (fixtures of test_store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clapas.detectors.state import StateWrite
from clapas.store.alerts import AlertChange
from clapas.store.base import Batch, Store
from tests.store import test_store as suite
from tests.store.batches import uplink

make_store = suite.make_store
store = suite.store
T0 = datetime(2026, 8, 3, 12, tzinfo=UTC)


def _change(rule: str, state: str, at: datetime, subject: str = "a1") -> AlertChange:
    return AlertChange(rule, subject, state, at, "warning", {}, rule, "device", "z")


def test_a_silent_device_makes_its_other_alerts_stale_until_it_speaks(store: Store) -> None:
    store.apply_alert_changes([_change("heat.heat_stress", "open", T0), _change("heat.heat_stress", "open", T0, "b")])
    store.apply_alert_changes([_change("health.silent", "open", T0 + timedelta(hours=3))])
    heat = {a["subject"]: a for a in store.alerts(rule="heat.heat_stress")}
    assert heat["a1"]["state"] == "open" and heat["a1"]["stale_since"] == T0 + timedelta(hours=3)
    assert heat["b"]["stale_since"] is None  # another device
    [silent] = store.alerts(rule="health.silent")
    assert silent["stale_since"] is None
    store.apply_alert_changes([_change("health.silent", "clear", T0 + timedelta(hours=5))])
    a = store.alert(heat["a1"]["id"])
    assert a["stale_since"] is None and a["state"] == "open"
    assert [e["kind"] for e in a["events"]] == ["opened", "stale", "resumed"]
    assert [a["rule"] for a in store.alerts(rule_prefix="health.")] == ["health.silent"]


def test_quality_flags_are_written_with_the_batch(store: Store) -> None:
    b = uplink(Batch(), "70b3d50000000001", T0, {"air.temperature": 38.0}, kind="weather_station")
    t = T0.timestamp()
    b.detector_state = StateWrite(flags=[(t, b.o_eui[0], b.o_quantity[0], "flat")], seq=1)
    store.write(b)
    flags = store.observation_flags(b.o_eui[0])
    assert [(f["eui"], f["quantity_id"], f["flag"]) for f in flags] == [(b.o_eui[0], b.o_quantity[0], "flat")]
    assert flags[0]["time"] == T0
