"""Detectors per partition (partitioned workers) against PostgreSQL: a partition's saved state is its own, so that a
takeover loads exactly what its previous owner held."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from clapas.config import load_settings
from clapas.connectors.broker import Affinity, partition_of
from clapas.detectors.air import AirDetector
from clapas.detectors.state import GLOBAL
from clapas.model import Device
from clapas.pipeline.ingest import Pipeline
from clapas.pipeline.partition_detectors import PartitionDetectors
from clapas.store.base import open_store
from tests.helpers import T0, as_message, up_event

PARTITIONS = 4
# two zones on two partitions
ZONE_A = "zone-0"
ZONE_B = next(
    z for z in (f"zone-{i}" for i in range(1, 20)) if partition_of(z, PARTITIONS) != partition_of(ZONE_A, PARTITIONS)
)
SENSORS = {"a000000000000001": ZONE_A, "b000000000000001": ZONE_B}


class Hook:
    """A worker's `in_transaction` hook (its fence), naming the batch's partition."""

    def __init__(self, partition: int) -> None:
        self.partition = partition

    def __call__(self, cur: object) -> None:
        pass


def readings(samples: Path, eui: str, start: datetime, n: int, f_cnt: int = 1) -> list:
    """`n` PM10 readings every 15 minutes (a decoded object, as ChirpStack's codec gives it)."""
    return [
        as_message(
            up_event(
                samples,
                eui=eui,
                f_cnt=f_cnt + k,
                time=start + k * timedelta(minutes=15),
                tags={"kind": "air_quality", "zone": SENSORS[eui]},
                obj={"air.pm10": 20.0 + k},
            )
        )
        for k in range(n)
    ]


@pytest.fixture
def air_city(pg_url):
    """The two zones' air sensors registered in PostgreSQL: (settings, store, affinity, (A's, B's partition))."""
    settings = load_settings(env={"CLAPAS_STORE": pg_url})
    store = open_store(pg_url, timezone=settings.timezone)
    try:
        store.upsert_devices([Device(eui=e, kind="air_quality", zone=z) for e, z in SENSORS.items()])
        affinity = Affinity.from_devices(PARTITIONS, store.devices())
        yield settings, store, affinity, tuple(affinity.of_device(e) for e in ("a000000000000001", "b000000000000001"))
    finally:
        store.close()


def air(pd: PartitionDetectors, partition: int) -> AirDetector:
    return next(d for d in pd.alerting[partition].runner.detectors if isinstance(d, AirDetector))


def test_a_partition_saves_only_its_own_subjects_and_a_takeover_loads_them(air_city, samples):
    settings, store, affinity, (pa, pb) = air_city
    assert pa != pb

    def generation(held: list[int], batches: list[tuple[int, list]]) -> PartitionDetectors:
        pd = PartitionDetectors(settings, store, held, affinity)
        p = Pipeline(store, settings.pipeline, settings.profiles, detectors=pd)
        for part, msgs in batches:
            p.submit_batch(msgs, Hook(part))
        p.close()
        return pd

    # one worker holds both: zone A has two hours pending (undecided) readings
    first = generation(
        [pa, pb],
        [(pa, readings(samples, "a000000000000001", T0, 8)), (pb, readings(samples, "b000000000000001", T0, 2))],
    )
    held_a = air(first, pa).zones[ZONE_A].pending
    assert held_a and air(first, pb).zones[ZONE_A].pending == {}  # B's runner knows zone A, empty
    # the worker starts again (a rebalance): B's runner writes first, after every row A wrote
    generation([pa, pb], [(pb, readings(samples, "b000000000000001", T0 + timedelta(hours=1), 1, f_cnt=3))])
    assert all(s != GLOBAL for _, s, _, _ in store.detector_state())  # scalars under the partition's tag
    # zone A taken over by another worker: it has what A's runner held, not B's empty copy
    taken = PartitionDetectors(settings, store, [pa], affinity)
    assert air(taken, pa).zones[ZONE_A].pending == held_a


def test_the_workers_detectors_follow_the_stored_overrides(air_city, samples):
    """A department's override stored before the worker starts, and one made while it runs, reach every partition's
    detectors (one settings holder for the worker), as they reach `clapas run`'s."""
    from clapas.selfservice.holder import SettingsHolder

    settings, store, affinity, (pa, pb) = air_city
    departments = SettingsHolder(settings, store)
    who = {"actor": "test", "via": "local", "role": "admin"}
    departments.change("air.lateness_s", 1800.0, **who)
    pd = PartitionDetectors(settings, store, [pa, pb], affinity)
    pd.holder.reload_s = 0.0  # (the test does not wait for `[selfservice] reload_s`)
    p = Pipeline(store, settings.pipeline, settings.profiles, detectors=pd)
    p.submit_batch(readings(samples, "a000000000000001", T0, 1), Hook(pa))
    p.submit_batch(readings(samples, "b000000000000001", T0, 1), Hook(pb))
    p.flush()
    assert air(pd, pa).settings.lateness_s == air(pd, pb).settings.lateness_s == 1800.0
    departments.change("air.lateness_s", 5400.0, **who)  # while the worker runs
    p.submit_batch(readings(samples, "a000000000000001", T0 + timedelta(hours=1), 1, f_cnt=2), Hook(pa))
    p.submit_batch(readings(samples, "b000000000000001", T0 + timedelta(hours=1), 1, f_cnt=2), Hook(pb))
    p.close()
    assert air(pd, pa).settings.lateness_s == air(pd, pb).settings.lateness_s == 5400.0
    assert settings.air.lateness_s not in (1800.0, 5400.0)  # the file says otherwise


def test_a_partition_fed_only_ticks_opens_its_devices_silence_and_judges_only_its_own(pg_url, samples):
    """Health rules in workers: a partition whose device fell silent gets only the router's ticks (no event of its
    own): its watermark still advances and the silence opens; the never-seen silence of a device of another
    partition is not opened by this one."""
    from clapas.pipeline.partition_detectors import Tick

    settings = load_settings(env={"CLAPAS_STORE": pg_url})
    store = open_store(pg_url, timezone=settings.timezone)
    try:
        store.upsert_devices([Device(eui=e, kind="air_quality", zone=z, expected_interval_s=900)
                              for e, z in SENSORS.items()])
        affinity = Affinity.from_devices(PARTITIONS, store.devices())
        pa, pb = (affinity.of_device(e) for e in SENSORS)
        pd = PartitionDetectors(settings, store, [pa], affinity)
        p = Pipeline(store, settings.pipeline, settings.profiles, detectors=pd)
        p.submit_batch(readings(samples, "a000000000000001", T0, 2), Hook(pa))
        ticked = Hook(pa)
        ticked.tick = Tick(stream_time=(T0 + timedelta(days=2)).timestamp(), stream_start=T0.timestamp())
        p.submit_batch([], ticked)  # ticks alone: no journal row
        p.close()
        alerts = {(r["rule"], r["subject"]) for r in store.sql("SELECT rule, subject FROM alerts")}
        assert ("health.silent", "a000000000000001") in alerts
        assert ("health.silent", "b000000000000001") not in alerts  # B's partition judges B (never seen)
        assert pa != pb
    finally:
        store.close()
