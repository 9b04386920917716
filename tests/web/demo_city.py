"""A demo-like city for the dashboard's page tests and screenshots: the simulator's city (every kind of device, the
demo's mix at a smaller size) and its default incidents (a mains leak, a heatwave, a storm, a museum HVAC failure…)
over the week up to now, through the real pipeline and the real detectors into a DuckDB store — so that each page
has its alerts, series and evidence, as `clapas demo` has after its first three minutes — and the demo's
bike-share system (the simulated Vélomagg's stations, polled every 5 min over the last day, in the city's
districts), so that the Mobility page has stations, KPIs and rankings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clapas.alerts.wiring import build_alerting
from clapas.config import Settings
from clapas.pipeline.ingest import Pipeline
from clapas.registry.zones import zone_at
from clapas.simulator.city import build_city
from clapas.simulator.incidents import select
from clapas.simulator.mobility import POLL_S, StationModel, build_mobility, poll_messages
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store.base import Store, open_store

DEVICES = 60  # every kind at least once (38 water meters, 3 district meters, 4 weather stations…): 22,000 uplinks
DAYS = 7  # the demo's week: enough nights for a night-flow baseline, three IBM days, a storm after the heat
SEED = 0
BIKE_STATIONS = 12
BIKE_HOURS = 24  # the station KPIs' default period (a day)


def build_demo_store(path: Path, settings: Settings | None = None) -> Store:
    """The store at `path` (DuckDB), filled; the caller closes it."""
    settings = settings or Settings()
    city = build_city(SEED, DEVICES)
    store = open_store(f"duckdb:///{path}", timezone=settings.timezone)
    store.migrate()
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    alerting = build_alerting(settings, store)
    pipeline = Pipeline(store, settings.pipeline, settings.profiles, detectors=alerting.runner)
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=DAYS)
    feed(pipeline, Simulation(city, start, end, SEED, select("default", city, start, end, SEED)).messages())
    _bike_share(store, pipeline, end)
    pipeline.close()
    return store


def _bike_share(store: Store, pipeline: Pipeline, end: datetime) -> None:
    """The simulated Vélomagg's stations in the city's own districts, and its polls of the last `BIKE_HOURS`."""
    mob = build_mobility(SEED, stations=BIKE_STATIONS, counters=0)
    zones = store.zones()
    mob.stations = [dataclasses.replace(s, zone=zone_at(zones, s.lat, s.lon)) for s in mob.stations]
    store.upsert_devices(mob.registry_devices())
    pipeline.reload_registry()
    model = StationModel(mob, [])
    t = (end - timedelta(hours=BIKE_HOURS)).timestamp()
    while t < end.timestamp():
        pipeline.submit_many(poll_messages(model, t))
        t += POLL_S
