"""The fleet's device states judged by the store (`reports.health.Fleet`: one statement, counted per group, paged by
EUI) give the answers of the Python classification they replace (`reports.health.device_states`, kept for a
device's own route), on both stores: a fleet in every state (ok, late, silent, never seen, unknown), T from the
profile, the registry (0 included) or learned (kept medians, times still pending, times outside the window, too
few), ages on the late and silent boundaries to the microsecond, open `health.silent` alerts, orphaned devices, and
personal devices counted, not listed, without the scope."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clapas.api import health
from clapas.charter import LOCAL, Caller
from clapas.charter.classes import Classifier
from clapas.config import HealthSettings, ProfileSettings, Settings
from clapas.indices.health import LATE, STATES
from clapas.model import Device
from clapas.reports import health as rep
from clapas.store.alerts import AlertChange
from clapas.store.base import DUPLICATE, Batch, Store
from tests.store import test_store as suite
from tests.store.batches import uplink

make_store = suite.make_store
store = suite.store
AT = datetime(2026, 8, 3, 12, 0, 0, 250_000, tzinfo=UTC)
NOC = Caller(actor="noc", via="key", role="operator", scopes=frozenset({"open:read", "restricted:read"}))
KINDS = ("weather_station", "air_quality", "water_meter")
PROFILES = {"fast": ProfileSettings(expected_interval_s=100), "none": ProfileSettings(expected_interval_s=None)}


def _eui(i: int) -> str:
    return f"70b3d50000002{i:03x}"


def _fleet(store: Store, seed: int = 7) -> None:
    """120 random devices and a few on the boundaries; half the learned devices' times folded, the rest pending."""
    rng = random.Random(seed)
    devices, early, late = [], Batch(), Batch()
    for i in range(120):
        interval = rng.choice([None, None, 0, 300, 600, 3600])
        devices.append(Device(eui=_eui(i), kind=rng.choice(KINDS), zone=rng.choice(["z1", "z2", ""]),
                              profile=rng.choice(["", "", "fast", "none", "unknown"]), expected_interval_s=interval,
                              data_class=rng.choice(["open", "open", "personal"]),
                              premises_use=rng.choice(["", "habitation"])))
        if rng.random() < 0.1:
            continue  # never seen
        step = rng.choice([300.0, 600.0, 2 * 86400.0])  # 2 days: kept times older than the 30-day window
        n = rng.choice([2, 4, 8, 25])
        last = AT - timedelta(seconds=rng.uniform(-100, 4 * step), microseconds=rng.randrange(1_000_000))
        for k in range(n):
            b = early if k >= n // 2 or i % 2 else late  # odd devices all folded; even ones' last times pending
            uplink(b, _eui(i), last - timedelta(seconds=step * k * rng.uniform(0.95, 1.05)))
        if rng.random() < 0.2:
            uplink(early, _eui(i), last, status=DUPLICATE)
    # on the boundaries: T = 600 s, late after 900 s, silent after 1800 s (an `at` with microseconds)
    for j, age_us in enumerate((900_000_000, 900_000_001, 1_800_000_000, 1_800_000_001, -5)):
        devices.append(Device(eui=_eui(200 + j), kind="air_quality", zone="z3", expected_interval_s=600))
        uplink(early, _eui(200 + j), AT - timedelta(microseconds=age_us))
    store.upsert_devices(devices)
    store.write(early)
    store.fold_uplink_times()
    store.write(late)
    silent = [_eui(i) for i in range(0, 120, 9)]
    store.apply_alert_changes([AlertChange("health.silent", e, "open", AT, "warning", {}, "no uplink", "device", "z1")
                               for e in silent] +
                              [AlertChange("health.gateway_offline", "0016c001f1000001", "open", AT, "critical",
                                           {"orphaned": [_eui(i) for i in range(3, 120, 11)]}, "offline",
                                           "gateway", "")])


def _settings(**health: Any) -> Settings:
    return Settings(profiles=PROFILES, health=HealthSettings(**health))


def _reference(store: Store, settings: Settings, caller: Caller, at: datetime, *, state: str | None = None,
               kind: str | None = None, zone: str | None = None, limit: int = 1000) -> dict[str, Any]:
    """`/health/devices` as the route answered before the store judged: every device classified in Python."""
    classes = Classifier(settings.charter)
    devices = store.health_devices(kind=kind, zone=zone)
    by_eui = {d["eui"]: d for d in devices}
    rows = rep.device_states(store, settings.health, settings.profiles, at, devices)
    listed, withheld = [], 0
    for r in rows:
        if state is not None and r["state"] != state:
            continue
        if not health._listable(caller, classes, by_eui[r["eui"]]):
            withheld += 1
        elif len(listed) < limit:
            listed.append(health._state_out(r))
    return {"at": at, "counts": rep.state_counts(rows), "devices": listed, "withheld": withheld}


@pytest.mark.parametrize("learn_uplinks", [20, 6])  # 20: the kept medians answer; 6: every device recomputed
def test_the_store_judges_as_the_python_classification(store: Store, learn_uplinks: int) -> None:
    _fleet(store)
    settings = _settings(learn_uplinks=learn_uplinks)
    judged = rep.device_states(store, settings.health, settings.profiles, AT)
    assert set(Counter(r["state"] for r in judged)) == set(STATES)  # a fleet in every state
    assert {r["interval_source"] for r in judged} == {"profile", "registry", "learned", None}
    assert any(r["orphaned_by"] for r in judged)
    fleet = rep.Fleet(store, settings.health, settings.profiles, AT)
    everyone = sorted({(g["data_class"], g["kind"], g["premises_use"]) for g in store.device_groups()})
    groups, rows = fleet.judge(everyone, limit=10_000)
    assert rows == judged
    assert rep.state_counts(groups) == rep.state_counts(judged)
    for at in (AT, AT - timedelta(seconds=700), AT + timedelta(hours=3)):
        for caller in (LOCAL, NOC):
            for state, kind, zone, limit in ((None, None, None, 1000), (LATE, None, None, 7), ("silent", None, "z1", 3),
                                             ("ok", "air_quality", None, 1000), ("unknown", None, "", 0)):
                assert health.device_states(store, caller, settings, at, state=state, kind=kind, zone=zone,
                                            limit=limit) == _reference(store, settings, caller, at, state=state,
                                                                       kind=kind, zone=zone, limit=limit)


def test_the_fleet_summary_counts_and_lists_the_late_ones_as_before(store: Store) -> None:
    _fleet(store)
    settings = _settings()
    for caller in (LOCAL, NOC):
        body = health.summary(store, caller, 5, "en", settings, AT)
        classes = Classifier(settings.charter)
        registry = {d["eui"]: d for d in store.health_devices()}
        rows = rep.device_states(store, settings.health, settings.profiles, AT)
        late = [r for r in rows if r["state"] == LATE]
        shown = [r for r in late if health._listable(caller, classes, registry[r["eui"]])]
        by_kind: dict[str, int] = defaultdict(int)
        for r in late:
            by_kind[r["kind"]] += 1
        assert body["devices"] == len(registry) and body["device_states"] == rep.state_counts(rows)
        assert body["problems"]["late"] == len(late)
        assert {k: v["late"] for k, v in body["by_kind"].items() if "late" in v} == by_kind
        assert body["late"] == [health._state_out(r) for r in shown[:5]]
        alerts_withheld = sum(1 for a in store.alerts(states=("open",), rule_prefix="health.", limit=1000)
                              if a["subject"] in registry and not health._listable(caller, classes,
                                                                                   registry[a["subject"]]))
        assert body["withheld"] == alerts_withheld + len(late) - len(shown)
