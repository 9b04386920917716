"""A small simulated city through `clapas run`'s real chain (Pipeline → store → DetectorRunner with its state in the
store → PersistentAlerts), stopped and started again at chosen batch boundaries, for the restart tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise
from typing import Any

from clapas.alerts.wiring import build_alerting
from clapas.config import Settings
from clapas.connectors.chirpstack import message
from clapas.model import Message
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import City, build_city
from clapas.simulator.incidents import Incident, default_incidents
from clapas.simulator.simulation import Simulation
from clapas.store.base import Store, open_store

START = datetime(2026, 7, 1, tzinfo=UTC)
DAYS = 8
CHUNK = 200  # messages per batch (≈ 1.5 h of the city): a restart may fall after any of them
SEED = 3


@cache
def scenario() -> tuple[City, tuple[Message, ...], tuple[Incident, ...]]:
    """60 devices of every kind over 8 days, with the default incidents (a heatwave, a storm, a backflow…) and a
    leak that ends (so that `water.continuous_flow` clears)."""
    city = build_city(SEED, 60)
    end = START + timedelta(days=DAYS)
    incidents = [i for i in default_incidents(city, START, end, SEED) if i.kind != "leak"]
    leak = next(i for i in default_incidents(city, START, end, SEED) if i.kind == "leak")
    incidents.append(Incident(kind="leak", start=leak.start, end=leak.start + timedelta(hours=40),
                              devices=leak.devices, zone=leak.zone, params=leak.params))
    msgs = tuple(message(raw, datetime.fromtimestamp(ts, UTC), topic=topic, source="simulator")
                 for ts, topic, raw in Simulation(city, START, end, SEED, incidents).messages())
    return city, msgs, tuple(incidents)


def alert_history(store: Store) -> list[tuple[Any, ...]]:
    """Every alert with its lifecycle events (kind and observation time), in a comparable form."""
    out = []
    for a in store.alerts(limit=100_000):
        full = store.alert(a["id"])
        out.append((a["rule"], a["subject"], a["state"], a["severity"], a["opened_at"], a["resolved_at"],
                    tuple((e["kind"], e["time"]) for e in full["events"])))  # type: ignore[index]
    return sorted(out, key=repr)


def run_chain(url: str, cuts: list[int] = (), settings: Settings | None = None,  # type: ignore[assignment]
              messages: tuple[Message, ...] | None = None, on_stop: Any = None) -> list[tuple[Any, ...]]:
    """Feed the scenario, stopping the whole process (pipeline, detectors, store) at each cut (a message index,
    multiple of CHUNK) and starting again from the store; returns the final alert history. `on_stop(store, i)` is
    called before each stop."""
    city, msgs, _ = scenario()
    msgs = messages or msgs
    settings = settings or Settings()
    bounds = [0, *sorted(set(cuts)), len(msgs)]
    history: list[tuple[Any, ...]] = []
    for a, b in pairwise(bounds):
        store = open_store(url)
        try:
            if a == 0:
                store.upsert_zones(city.zones)
                store.upsert_devices(city.registry_devices())
            alerting = build_alerting(settings, store)
            pipeline = Pipeline(store, settings.pipeline, detectors=alerting.runner)
            for i in range(a, b, CHUNK):
                pipeline.submit_many(list(msgs[i:min(i + CHUNK, b)]))
                pipeline.flush()
            pipeline.close()
            if on_stop is not None:
                on_stop(store, b)
            if b == len(msgs):
                history = alert_history(store)
        finally:
            store.close()
    return history


def cut_at(when: datetime) -> int:
    """The first batch boundary at or after the first message received at or after `when`."""
    _, msgs, _ = scenario()
    i = next(k for k, m in enumerate(msgs) if m.received_at >= when)
    return -(-i // CHUNK) * CHUNK
