"""A one-week run of a small city through a real pipeline into DuckDB, shared by the simulator's tests."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import City, build_city
from clapas.simulator.incidents import Incident, default_incidents
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store.base import Store, open_store

SEED = 7
DEVICES = 200
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
DAYS = 7
TZ = ZoneInfo("Europe/Paris")


class Week:
    """The city, its incidents, the store they went into, and helpers to read observations back."""

    def __init__(self, city: City, incidents: list[Incident], store: Store, submitted: int) -> None:
        self.city, self.incidents, self.store, self.submitted = city, incidents, store, submitted
        self._cache: dict[str, dict[str, list[tuple[datetime, float]]]] = {}

    def incident(self, kind: str) -> Incident:
        return next(i for i in self.incidents if i.kind == kind)

    def series(self, key: str) -> dict[str, list[tuple[datetime, float]]]:
        """eui → [(time, value)] in time order for one quantity."""
        if key not in self._cache:
            rows = self.store.sql(
                "SELECT d.eui, o.time, o.value FROM observations o JOIN devices d ON d.id = o.device_id "
                "JOIN quantities q ON q.id = o.quantity_id WHERE q.key = ? ORDER BY o.time", [key])
            out: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
            for r in rows:
                out[r["eui"]].append((r["time"], r["value"]))
            self._cache[key] = dict(out)
        return self._cache[key]

    def during(self, key: str, eui: str, inc: Incident) -> list[float]:
        return [v for t, v in self.series(key).get(eui, []) if inc.start <= t < inc.end]


def local_hour(t: datetime) -> int:
    return t.astimezone(TZ).hour


@pytest.fixture(scope="session")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    city = build_city(SEED, DEVICES)
    end = START + timedelta(days=DAYS)
    incidents = default_incidents(city, START, end, SEED)
    path: Path = tmp_path_factory.mktemp("sim") / "week.duckdb"
    store = open_store(f"duckdb:///{path}")
    pipeline = Pipeline(store)
    n = feed(pipeline, Simulation(city, START, end, SEED, incidents).messages())
    pipeline.close()
    yield Week(city, incidents, store, n)
    store.close()


@pytest.fixture(scope="session")
def small_city() -> City:
    return build_city(3, 60)


def take(it: Iterator[Any], n: int) -> list[Any]:
    out = []
    for x in it:
        out.append(x)
        if len(out) >= n:
            break
    return out
