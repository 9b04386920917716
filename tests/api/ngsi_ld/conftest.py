"""An app over a sandbox tenant (the default tenant, as in a conformance run), on each store; the city of
city/city_data.py on each store (`ngsi_store`, module-scoped: filled once per store)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.config import NgsiLdSettings, Settings
from clapas.store.base import Store, open_store
from tests.helpers import as_local

from .city.city_data import fill


def settings(url: str, **ngsi: object) -> Settings:
    return Settings(store=url, ngsi_ld=NgsiLdSettings(**{"sandbox": True, "default_tenant": "sandbox", **ngsi}))


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    if request.param == "duckdb":
        url, drop = f"duckdb:///{tmp_path_factory.mktemp('ngsi') / 'sandbox.duckdb'}", None
    else:
        from tests.api.test_charter_routes import _pg_database

        url, drop = _pg_database(request)
    store = open_store(url, "Europe/Paris")
    app = as_local(create_app(store, settings(url)))
    with TestClient(app) as c:
        yield c
    store.close()
    if drop:
        drop()


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def ngsi_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    if request.param == "duckdb":
        url, drop = f"duckdb:///{tmp_path_factory.mktemp('ngsi') / 'city.duckdb'}", None
    else:
        from tests.api.test_charter_routes import _pg_database

        url, drop = _pg_database(request)
    store = open_store(url, "Europe/Paris")
    fill(store)
    yield store
    store.close()
    if drop:
        drop()


def uid(kind: str = "Vehicle") -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex[:10]}"


def vehicle(eid: str, speed: float = 80, lon: float = 3.88, lat: float = 43.61, **extra: object) -> dict:
    return {"id": eid, "type": "Vehicle",
            "speed": {"type": "Property", "value": speed, "unitCode": "KMH", "observedAt": "2026-03-01T12:00:00Z"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}, **extra}


SAMPLES_NGSI = Path(__file__).resolve().parents[3].parent / "shared" / "samples" / "ngsi-ld"
