"""A demo-like city for the dashboard's page tests and screenshots: the simulator's city (every kind of device, the
demo's mix at a smaller size) and its default incidents (a mains leak, a heatwave, a storm, a museum HVAC failure…)
over the week up to now, through the real pipeline and the real detectors into a DuckDB store — so that each page
has its alerts, series and evidence, as `clapas demo` has after its first three minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from clapas.alerts.wiring import build_alerting
from clapas.config import Settings
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import build_city
from clapas.simulator.incidents import select
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store.base import Store, open_store

DEVICES = 60  # every kind at least once (38 water meters, 3 district meters, 4 weather stations…): 22,000 uplinks
DAYS = 7  # the demo's week: enough nights for a night-flow baseline, three IBM days, a storm after the heat
SEED = 0


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
    pipeline.close()
    return store
