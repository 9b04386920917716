"""Fixtures: a DuckDB file filled through the real pipeline (see city.py), and the app over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.config import Settings
from clapas.model import Zone
from clapas.pipeline.ingest import Pipeline
from clapas.store.duckdb import DuckDBStore
from tests.helpers import as_local

from .city import fill_city

ZONES = [
    Zone(id="ecusson", name="Écusson", kind="district",
         geometry={"type": "Polygon", "coordinates": [[[3.87, 43.61], [3.88, 43.61], [3.88, 43.62], [3.87, 43.61]]]}),
    Zone(id="musee-fabre", name="Musée Fabre, salle 12", kind="museum_room"),
]


@pytest.fixture(scope="module")
def city(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DuckDBStore, Pipeline]]:
    path = tmp_path_factory.mktemp("city") / "city.duckdb"
    store = DuckDBStore(f"duckdb:///{path}", timezone="Europe/Paris")
    store.upsert_zones(ZONES)
    pipeline = Pipeline(store)
    fill_city(samples, pipeline)
    yield store, pipeline
    pipeline.close()
    store.close()


@pytest.fixture(scope="module")
def client(city: tuple[DuckDBStore, Pipeline]) -> Iterator[TestClient]:
    store, pipeline = city
    with TestClient(as_local(create_app(store, Settings(), pipeline))) as c:
        yield c


@pytest.fixture
def readonly_client(city: tuple[DuckDBStore, Pipeline]) -> Iterator[TestClient]:
    """The same store served by an app that does not ingest."""
    with TestClient(as_local(create_app(city[0], Settings()))) as c:
        yield c
