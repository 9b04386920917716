"""The mobility routes over a DuckDB store filled through the pipeline (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.config import Settings
from clapas.connectors.counts import counter_eui
from clapas.store.base import open_store
from tests.helpers import as_local
from tests.reports.mobility_city import DAY0, YEAR, fill


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = open_store(f"duckdb:///{tmp_path_factory.mktemp('mob') / 'm.duckdb'}")
    store.migrate()
    fill(store)
    with TestClient(as_local(create_app(store, Settings()))) as c:
        yield c
    store.close()


def test_stations_and_kpis(client: TestClient) -> None:
    r = client.get("/api/v1/mobility/stations", params={"at": "2026-06-02T12:30:00+02:00"})
    assert r.status_code == 200
    assert sorted(s["state"] for s in r.json()["stations"]) == ["empty", "ok"]
    k = client.get("/api/v1/mobility/stations/kpis", params={"start": DAY0.isoformat(),
                                                             "end": "2026-06-03T00:00:00+02:00"}).json()
    assert k["stations"][0]["violations"] == 1 and k["stations"][0]["name"] == "Comédie"
    assert client.get("/api/v1/mobility/stations/kpis", params={"start": "nope"}).status_code == 400
    assert client.get("/api/v1/mobility/systems").status_code == 200


def test_counters(client: TestClient) -> None:
    eui = counter_eui("site-lez")
    assert [c["eui"] for c in client.get("/api/v1/mobility/counters").json()["counters"]] == [eui]
    obs = client.get(f"/api/v1/mobility/counters/{eui}/observatory", params={"year": YEAR}).json()
    assert obs["directions"]["total"]["tmja_days_used"] == 335
    csv = client.get(f"/api/v1/mobility/counters/{eui}/series",
                     params={"start": f"{YEAR}-06-01T00:00:00Z", "end": f"{YEAR}-06-02T00:00:00Z",
                             "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.splitlines()) == 1 + 3 * 24
    daily = client.get(f"/api/v1/mobility/counters/{eui}/series",
                       params={"start": f"{YEAR}-06-01T00:00:00Z", "end": f"{YEAR}-06-08T00:00:00Z",
                               "resolution": "1d"}).json()
    assert all(r["flag"] == 1 for r in daily["directions"]["total"])
    assert client.get("/api/v1/mobility/counters/0000000000000000/series").status_code == 404


def test_free_floating_history_per_zone(client: TestClient) -> None:
    r = client.get("/api/v1/mobility/free-floating", params={"start": DAY0.isoformat(),
                                                             "end": DAY0.replace(hour=3).isoformat()})
    assert r.status_code == 200, r.text
    [zone] = r.json()["zones"]
    assert (zone["system"], zone["zone"]) == ("tam", "centre")
    assert [p["mean"] for p in zone["points"]] == [0.0, 1.0, 2.0] and zone["latest"] == 2.0
    raw = client.get("/api/v1/mobility/free-floating", params={"start": DAY0.isoformat(), "resolution": "raw",
                                                               "end": DAY0.replace(hour=1).isoformat()}).json()
    assert [p["value"] for p in raw["zones"][0]["points"]] == [0.0] * 4  # the polls of 00:00–00:45
    assert client.get("/api/v1/mobility/free-floating", params={"resolution": "5m"}).status_code == 422
