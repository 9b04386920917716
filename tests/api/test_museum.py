"""The museum routes over a DuckDB store with a few rooms: each room's summary, the monthly report as JSON and as
a CSV download, and readable errors for a bad month, an unknown room or format."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.config import Settings
from tests.helpers import as_local
from tests.reports.test_museum import ROOM_A, ROOM_B, ROOM_C, SETTINGS, build_store


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = build_store(tmp_path_factory.mktemp("museum-api") / "museum.duckdb")
    with TestClient(as_local(create_app(store, Settings(museum=SETTINGS)))) as c:
        yield c
    store.close()


def test_rooms_summary(client: TestClient) -> None:
    r = client.get("/api/v1/museum/rooms", params={"month": "2026-06"})
    assert r.status_code == 200
    body = r.json()
    assert body["month"] == "2026-06"
    rooms = {x["room"]: x for x in body["rooms"]}
    assert list(rooms) == [ROOM_A, ROOM_B, ROOM_C]
    a = rooms[ROOM_A]
    assert (a["climate_class"], a["sensors"], a["breaches"], a["breach_hours"]) == ("Bizot", 2, 2, 9.0)
    assert a["last_breach"]["quantity"] == "temperature" and a["last_breach"]["start"] == "2026-06-20T00:00:00Z"
    assert a["band_rh"] == [40, 60] and 0.98 < a["share_in_band_both"] < 1
    assert rooms[ROOM_B]["climate_class"] == "A1" and rooms[ROOM_C]["share_in_band_rh"] is None
    # without a month: the current local month (no data there in this store)
    now = client.get("/api/v1/museum/rooms").json()
    assert len(now["month"]) == 7 and all(x["completeness"] == 0 for x in now["rooms"])


def test_report_json(client: TestClient) -> None:
    r = client.get("/api/v1/museum/report", params={"month": "2026-06", "room": ROOM_B})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    (b,) = r.json()["rooms"]
    assert b["room"] == ROOM_B and b["en15757"][0]["floor_applied"] is True
    assert b["en15757"][0]["lower"] == -10.0


def test_report_csv_download(client: TestClient) -> None:
    r = client.get("/api/v1/museum/report", params={"month": "2026-06", "room": ROOM_A, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="museum-report-2026-06-{ROOM_A}.csv"'
    (row,) = csv.DictReader(io.StringIO(r.text))
    assert (row["room"], row["breach_count"], row["climate_class"]) == (ROOM_A, "2", "Bizot")
    both = client.get("/api/v1/museum/report?month=2026-06&room=fabre-room-a&room=fabre-room-c&format=csv")
    assert [x["room"] for x in csv.DictReader(io.StringIO(both.text))] == [ROOM_A, ROOM_C]
    assert both.headers["content-disposition"] == 'attachment; filename="museum-report-2026-06.csv"'


@pytest.mark.parametrize(("query", "status", "says"), [
    ("month=2026-13", 400, "query parameter 'month': month '2026-13': expected YYYY-MM, e.g. 2026-06"),
    ("month=juin", 400, "expected YYYY-MM"),
    ("month=", 400, "expected YYYY-MM"),
    ("", 422, "month"),
    ("month=2026-06&room=nope", 404, "unknown museum room 'nope'"),
    ("month=2026-06&format=xml", 422, "format"),
])
def test_report_errors(client: TestClient, query: str, status: int, says: str) -> None:
    r = client.get(f"/api/v1/museum/report?{query}")
    assert r.status_code == status
    assert says in r.json()["error"]["message"]


def test_rooms_bad_month(client: TestClient) -> None:
    r = client.get("/api/v1/museum/rooms", params={"month": "2026/06"})
    assert r.status_code == 400 and "expected YYYY-MM" in r.json()["error"]["message"]
