"""An app over a sandbox tenant (the default tenant, as in a conformance run), on each store; the city of
city/city_data.py on each store (`ngsi_store`, module-scoped: filled once per store)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.config import NgsiLdSettings, Settings
from clapas.store.base import Store, open_store
from tests.helpers import as_local

from .city.city_data import fill


def settings(url: str, **ngsi: object) -> Settings:
    return Settings(store=url, ngsi_ld=NgsiLdSettings(**{"sandbox": True, "default_tenant": "sandbox", **ngsi}))


def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              name: str) -> tuple[str, Any]:
    """A DuckDB file, or a throwaway PostgreSQL database (with the function that drops it), per the param."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path_factory.mktemp('ngsi') / name}", None
    from tests.api.test_charter_routes import _pg_database

    return _pg_database(request)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url, drop = store_url(request, tmp_path_factory, "sandbox.duckdb")
    store = open_store(url, "Europe/Paris")
    app = as_local(create_app(store, settings(url)))
    with TestClient(app) as c:
        yield c
    store.close()
    if drop:
        drop()


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def ngsi_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    url, drop = store_url(request, tmp_path_factory, "city.duckdb")
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


E = "/ngsi-ld/v1/entities"
FIWARE = "https://fiware.github.io/NGSI-LD_TestSuite/ldContext/testContext.jsonld"
LINK = f'<{FIWARE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def create(client: TestClient, body: dict[str, Any], **headers: str) -> Any:
    """POST an entity, which must be created."""
    r = client.post(E, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r


def problem(r: Any, status: int, kind: str) -> None:
    """The response is the spec's error `kind` as a ProblemDetails body."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{kind}" and body["title"] and body["detail"]
    assert r.headers["content-type"].startswith("application/json")


def ids_of(client: TestClient, query: str, **headers: str) -> list[str]:
    """The ids a query answers (it must succeed)."""
    r = client.get(f"{E}?{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


SAMPLES_NGSI = Path(__file__).resolve().parents[3].parent / "shared" / "samples" / "ngsi-ld"
