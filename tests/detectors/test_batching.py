"""Decisions do not depend on batch boundaries: the same stream of readings, some of them arriving later than
`lateness_s` (a gateway's backlog, a device's buffered datalog), fed in batches of 1, 7, 1,000 rows or all at once,
gives the same alert changes, in the same order, with the same evidence, for every detector family.

Before the watermark advanced in fixed stream-time steps (`WATERMARK_STEP_S`), it advanced once per batch: a late
reading was dropped against the previous batch's watermark when batches were small, and kept when it shared a large
batch with the readings that had moved the watermark on."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from clapas.detectors.base import DetectorRunner, MemorySink, Registry, run_observations
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import build_city
from clapas.simulator.incidents import environment_incidents, select
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store import open_store

Row = tuple[datetime, str, int, float]
BATCHES = (1, 7, 1000, None)  # None: the whole stream in one batch
LATENESS_S = 7200.0  # the detectors' default `lateness_s`
WATER_START = datetime(2026, 6, 1, tzinfo=UTC)
ENV_START = datetime(2026, 8, 9, 22, tzinfo=UTC)
ENV_DAYS = 10
MOB_START = datetime(2026, 5, 31, 22, tzinfo=UTC)


def _capture(tmp, city: Any, messages: Callable[[Pipeline], None]) -> tuple[list[Row], list, list]:
    """The observation rows the pipeline hands the detectors, in arrival order, with the city's registry."""
    store = open_store(f"duckdb:///{tmp / 'stream.duckdb'}")
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    rows: list[Row] = []
    pipeline = Pipeline(store, on_commit=lambda b: rows.extend(zip(b.o_time, b.o_eui, b.o_quantity, b.o_value,
                                                                     strict=True)))
    messages(pipeline)
    pipeline.close()
    devices, zones = store.devices(limit=1_000_000), store.zones()
    store.close()
    return rows, devices, zones


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """One small stream per family of devices: water (3 days, with the scoring incidents), the environment (heat,
    flood, air, museum: ENV_DAYS days, with its incidents) and mobility (9 days of polls and counters)."""
    from clapas.simulator.mobility import build_mobility, mobility_incidents, scenario_messages

    out = {}
    city = build_city(3, 60).only("water_meter", "district_meter")
    end = WATER_START + timedelta(days=3)
    incidents = select("scoring", city, WATER_START, end, 3)
    out["water"] = _capture(tmp_path_factory.mktemp("water"), city,
                            lambda p: feed(p, Simulation(city, WATER_START, end, 3, incidents).messages()))
    from clapas.detectors.score import environment_city

    env = environment_city(build_city(4, 120))
    end = ENV_START + timedelta(days=ENV_DAYS)
    incidents = environment_incidents(env, ENV_START, end, 4)
    out["environment"] = _capture(tmp_path_factory.mktemp("env"), env,
                                  lambda p: feed(p, Simulation(env, ENV_START, end, 4, incidents).messages()))
    mob = build_mobility(4, 6, 3)
    end = MOB_START + timedelta(days=9)
    incidents = mobility_incidents(mob, MOB_START, end, 4)
    out["mobility"] = _capture(tmp_path_factory.mktemp("mob"), mob,
                               lambda p: p.submit_many(list(scenario_messages(mob, incidents, MOB_START, end))))
    return out


def _detector(family: str) -> Any:
    from clapas.detectors.air import AirDetector
    from clapas.detectors.flood import FloodDetector
    from clapas.detectors.heat import HeatDetector
    from clapas.detectors.mobility import MobilityDetector
    from clapas.detectors.museum import MuseumDetector
    from clapas.detectors.water import WaterDetector

    return {"water": WaterDetector, "heat": HeatDetector, "flood": FloodDetector, "air": AirDetector,
            "museum": MuseumDetector, "mobility": MobilityDetector}[family]()


STREAM = {"water": "water", "heat": "environment", "flood": "environment", "air": "environment",
          "museum": "environment", "mobility": "mobility"}


def _uplinks(rows: list[Row]) -> list[list[Row]]:
    """The rows of each uplink (contiguous, as the pipeline writes them)."""
    out: list[list[Row]] = []
    for r in rows:
        if out and out[-1][0][:2] == r[:2]:
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _delay(rows: list[Row], seed: int, share: float) -> tuple[list[Row], int]:
    """Some uplinks (`share` of them) arrive later than `lateness_s`: each moves behind the uplinks up to its own
    time plus 1 to 4 × lateness. Returns the rows in their new arrival order and how many uplinks moved."""
    rnd = random.Random(seed)
    keyed: list[tuple[float, int, list[Row]]] = []
    moved = 0
    for i, up in enumerate(_uplinks(rows)):
        t = up[0][0].timestamp()
        if rnd.random() < share:
            t += LATENESS_S * rnd.uniform(1.0, 4.0)
            moved += 1
        keyed.append((t, i, up))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [r for _, _, up in keyed for r in up], moved


def _run(family: str, rows: list[Row], devices: list, zones: list, batch: int | None) -> tuple[list, Any]:
    detector = _detector(family)
    sink = MemorySink()
    runner = DetectorRunner([detector], sink, Registry(devices=devices, zones=zones))
    run_observations(runner, rows, chunk=batch or len(rows) + 1)
    runner.finish(rows[-1][0].timestamp() + LATENESS_S + 2 * 86400)
    return [(d.rule, d.subject, d.state, d.at, d.severity, repr(d.evidence)) for d in sink.transitions], runner


@pytest.mark.parametrize("family", sorted(STREAM))
@settings(max_examples=3, deadline=None, phases=[Phase.explicit, Phase.generate],  # no shrinking: a stream is long
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), share=st.sampled_from([0.01, 0.05]))
def test_the_same_readings_in_any_batching_give_the_same_alerts(streams, family, seed, share):
    rows, devices, zones = streams[STREAM[family]]
    late, moved = _delay(rows, seed, share)
    assert moved > 0
    first, _ = _run(family, late, devices, zones, BATCHES[0])
    for batch in BATCHES[1:]:
        again, _ = _run(family, late, devices, zones, batch)
        assert again == first, (family, batch)


@pytest.mark.parametrize("family", sorted(STREAM))
def test_every_family_has_alerts_to_compare(streams, family):
    """The comparison above is not between empty lists: each family's stream, in order, raises alerts."""
    rows, devices, zones = streams[STREAM[family]]
    transitions, _ = _run(family, rows, devices, zones, None)
    assert transitions
