"""The environment routes over the small known city (tests/reports/env_city.py) written up to the present moment:
shapes, the figures that do not depend on the hour of the run, and errors in the API's one shape."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.config import Settings
from tests.helpers import as_local
from tests.reports.env_city import PARIS, G, R, open_city


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    store = open_city(str(tmp_path_factory.mktemp("env") / "city.duckdb"), now.astimezone(PARIS).date(), now)
    with TestClient(as_local(create_app(store, Settings()))) as c:
        yield c
    store.close()


def today() -> str:
    return datetime.now(PARIS).date().isoformat()


def yesterday() -> str:
    return (datetime.now(PARIS).date() - timedelta(days=1)).isoformat()


def ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    return body["error"]["message"]


def test_atmo_per_zone_today_by_default(env: TestClient) -> None:
    body = ok(env.get("/api/v1/air/atmo"))
    assert body["day"] == today() and body["indicative"] is True and len(body["scale"]) == 6
    zones = {z["zone"]: z for z in body["zones"]}
    assert set(zones) == {"dma-01", "dma-02"}
    centre = zones["dma-01"]
    assert {"index", "label", "colour", "pollutants", "sensors", "completeness", "indicative", "previous"} <= set(
        centre)
    assert set(centre["pollutants"]) == {"pm10", "no2"} and centre["sensors"] == 2
    assert centre["previous"]["day"] == yesterday() and centre["previous"]["label"] == "Indisponible"


def test_atmo_of_a_given_day(env: TestClient) -> None:
    body = ok(env.get("/api/v1/air/atmo", params={"day": yesterday()}))
    assert body["day"] == yesterday()
    assert all(z["label"] == "Indisponible" for z in body["zones"])  # the air sensors only reported today


def test_eaqi_latest_hour_per_zone(env: TestClient) -> None:
    body = ok(env.get("/api/v1/air/eaqi"))
    assert body["indicative"] is True
    for z in body["zones"]:
        assert {"zone", "hour", "level", "label", "sub_indices", "sensors"} <= set(z)


def test_heat_status_shape_and_statement(env: TestClient) -> None:
    body = ok(env.get("/api/v1/heat/status", params={"days": 3}))
    assert body["today"] == today() and body["thresholds"]["ibmn"] == 22.0 and body["thresholds"]["ibmx"] == 35.0
    assert "Météo-France" in body["statement"]
    (station,) = body["stations"]
    assert station["eui"] == R and len(station["days"]) == 3
    # yesterday: IBMn (21+22+23)/3 = 22 and IBMx (34+35+36)/3 = 35, whatever the hour of the run
    assert station["days"][1] | {"window": None} == {
        "day": yesterday(), "state": "heatwave", "tn": 23.0, "tx": 36.0, "ibmn": 22.0, "ibmx": 35.0,
        "window": None, "run_days": 1}
    assert body["state"] in ("heatwave", "unavailable")  # today: depends on how much of the day has passed
    assert [s["eui"] for s in body["heat_stress"]] in ([R], [])


def test_islands_of_yesterday(env: TestClient) -> None:
    body = ok(env.get("/api/v1/heat/islands", params={"day": yesterday()}))
    districts = {d["zone"]: d for d in body["districts"]}
    assert districts["dma-01"]["day"] == {"mean": 2.0, "max": 2.0, "hours": 12}
    parks = {p["zone"]: p for p in body["parks"]}
    assert parks["park-01"]["day"]["mean"] == 3.0 and parks["park-02"]["day"] is None


def test_cool_refuges_json_and_csv(env: TestClient) -> None:
    body = ok(env.get("/api/v1/heat/cool-refuges"))
    assert body["basis"] == "heatwave" and body["days"][0] == yesterday()
    assert [p["zone"] for p in body["parks"]] == ["park-01", "park-03", "park-02"]
    r = env.get("/api/v1/heat/cool-refuges", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["zone"] for row in rows] == ["park-01", "park-03", "park-02"] and rows[0]["rank"] == "1"


def test_rivers_and_rain(env: TestClient) -> None:
    body = ok(env.get("/api/v1/flood/rivers"))
    (gauge,) = body["rivers"]
    assert gauge["eui"] == G and gauge["thresholds"] == {"yellow": 1.5, "orange": 2.3, "red": 3.3}
    assert gauge["class_name"] == "yellow" and gauge["rise_1h_m_per_h"] == 0.4
    (rain,) = body["rain_gauges"]
    assert set(rain["accumulations_mm"]) == {"1h", "3h", "6h", "12h", "24h"}


@pytest.mark.parametrize("url", ["/api/v1/air/atmo?day=2026-13-01", "/api/v1/air/atmo?day=yesterday",
                                 "/api/v1/heat/islands?day=01/07/2026"])
def test_a_bad_day_is_400(env: TestClient, url: str) -> None:
    assert "query parameter 'day'" in error(env.get(url), 400)


@pytest.mark.parametrize("url", ["/api/v1/heat/status?days=0", "/api/v1/heat/status?days=x",
                                 "/api/v1/heat/cool-refuges?format=xml"])
def test_bad_parameters_are_422(env: TestClient, url: str) -> None:
    error(env.get(url), 422)



def test_an_empty_city_answers_empty_reports(tmp_path) -> None:
    from clapas.store.duckdb import DuckDBStore

    store = DuckDBStore(f"duckdb:///{tmp_path / 'empty.duckdb'}")
    try:
        with TestClient(as_local(create_app(store, Settings()))) as c:
            assert ok(c.get("/api/v1/air/atmo"))["zones"] == []
            assert ok(c.get("/api/v1/air/eaqi"))["zones"] == []
            status = ok(c.get("/api/v1/heat/status"))
            assert status["stations"] == [] and status["state"] == "unavailable"
            assert ok(c.get("/api/v1/heat/islands"))["parks"] == []
            assert ok(c.get("/api/v1/heat/cool-refuges"))["parks"] == []
            assert ok(c.get("/api/v1/flood/rivers"))["rivers"] == []
    finally:
        store.close()
