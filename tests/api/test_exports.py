"""Open-data exports over HTTP, on both stores: formats, filters, streaming in chunks, and the charter (who gets
which rows, what the audit log records)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.config import AuthSettings, Settings
from clapas.opendata.settings import OpenDataSettings
from clapas.store.base import Store
from tests.opendata.city import DAY, HOME, INDOOR, STATIONS, city_store, key_maker

__all__ = ["city_store"]

PERIOD = {"since": DAY[0].isoformat(), "until": DAY[1].isoformat()}
CHUNK = 100  # rows per store read: the day's 384 weather rows come in several chunks


@pytest.fixture
def app(city_store: tuple[Store, int]):
    store, _ = city_store
    settings = Settings(auth=AuthSettings(key_cache_s=0), open_data=OpenDataSettings(chunk_rows=CHUNK))
    return create_app(store, settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rows_of(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def test_csv_of_open_data_for_anyone_every_row_streamed(client: TestClient, city_store, app) -> None:
    store, n = city_store
    calls = []
    original = store.export_observations

    def counting(*a, **kw):
        for chunk in original(*a, **kw):
            calls.append(len(chunk))
            yield chunk

    store.export_observations = counting  # type: ignore[method-assign]
    r = client.get("/api/v1/exports/weather", params={**PERIOD, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv; charset=utf-8")
    assert 'filename="weather_20260504_20260505.csv"' in r.headers["content-disposition"]
    rows = rows_of(r.text)
    assert len(rows) == n  # temperature and humidity of both stations, not their battery
    assert {x["quantity"] for x in rows} == {"air.temperature", "air.humidity"}
    assert {x["device"] for x in rows} == set(STATIONS)
    assert len(calls) > 1 and max(calls) <= CHUNK  # read from the store in bounded chunks
    first = rows[0]
    assert first["time"] == "2026-05-04T00:00:00Z" and first["unit"] in ("Cel", "%")
    t = next(x for x in rows if x["device"] == STATIONS[0] and x["quantity"] == "air.temperature"
             and x["time"] == "2026-05-04T00:15:00Z")
    assert float(t["value"]) == 12.625 and t["zone"] == "s1" and float(t["lat"]) == 43.608
    # a device kind is a dataset too
    assert len(rows_of(client.get("/api/v1/exports/weather_station", params=PERIOD).text)) == n


def test_french_csv_geojson_and_parquet_hold_the_same_rows(client: TestClient, city_store) -> None:
    _, n = city_store
    plain = rows_of(client.get("/api/v1/exports/weather", params=PERIOD).text)
    r = client.get("/api/v1/exports/weather", params={**PERIOD, "format": "csv-fr"})
    assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, for Excel
    fr = rows_of(r.content.decode("utf-8-sig"), ";")
    assert [x["time"] for x in fr] == [x["time"] for x in plain]
    assert [float(x["value"].replace(",", ".")) for x in fr] == [float(x["value"]) for x in plain]
    assert any("," in x["value"] for x in fr) and not any("." in x["value"] for x in fr)
    g = client.get("/api/v1/exports/weather", params={**PERIOD, "format": "geojson"})
    assert g.headers["content-type"].startswith("application/geo+json")
    fc = json.loads(g.content)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == n
    f0 = fc["features"][0]
    assert f0["geometry"]["type"] == "Point" and f0["properties"]["time"] == plain[0]["time"]
    lon, lat = f0["geometry"]["coordinates"]
    assert (lat, lon) == (float(plain[0]["lat"]), float(plain[0]["lon"]))
    p = client.get("/api/v1/exports/weather", params={**PERIOD, "format": "parquet"})
    table = pq.read_table(io.BytesIO(p.content))
    assert table.num_rows == n and str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"
    assert table.column("value").to_pylist() == [float(x["value"]) for x in plain]
    assert pq.ParquetFile(io.BytesIO(p.content)).num_row_groups > 1  # one per chunk: written as it streams


def test_zone_and_period_filters(client: TestClient) -> None:
    whole = rows_of(client.get("/api/v1/exports/weather", params={**PERIOD, "zone": "d1"}).text)
    assert {x["device"] for x in whole} == set(STATIONS)  # the district holds the sector
    sector = rows_of(client.get("/api/v1/exports/weather", params={**PERIOD, "zone": "s1"}).text)
    assert {x["device"] for x in sector} == {STATIONS[0]}
    hour = rows_of(client.get("/api/v1/exports/weather", params={
        "since": "2026-05-04T10:00:00Z", "until": "2026-05-04T11:00:00Z"}).text)
    assert len(hour) == 2 * 2 * 4 and min(x["time"] for x in hour) == "2026-05-04T10:00:00Z"
    assert client.get("/api/v1/exports/weather", params={**PERIOD, "zone": "nowhere"}).status_code == 404
    assert client.get("/api/v1/exports/nothing").status_code == 404
    assert client.get("/api/v1/exports/weather", params={"format": "xls"}).status_code == 422
    assert client.get("/api/v1/exports/weather", params={"since": "2026-05-04", "until": "2026-05-01"}
                      ).status_code == 422
    assert client.get("/api/v1/exports/weather", params={"since": "2020-01-01", "until": "2026-01-01"}
                      ).status_code == 422  # past max_days
    assert client.get("/api/v1/exports/water-consumption", params={"format": "geojson"}).status_code == 422


def test_registry_and_zones_as_geojson(client: TestClient) -> None:
    devices = json.loads(client.get("/api/v1/exports/devices", params={"format": "geojson"}).content)
    euis = {f["properties"]["device"] for f in devices["features"]}
    assert euis == set(STATIONS)  # anonymous: open devices only; the meter's position is personal
    zones = json.loads(client.get("/api/v1/exports/zones", params={"format": "geojson"}).content)
    by_id = {f["properties"]["zone"]: f for f in zones["features"]}
    assert by_id["s1"]["geometry"]["type"] == "Polygon" and by_id["s1"]["properties"]["parent"] == "d1"
    assert by_id["d2"]["geometry"] is None


def test_restricted_needs_its_scope_and_export_bulk(client: TestClient, city_store, app) -> None:
    store, _ = city_store
    key = key_maker(store)
    assert client.get("/api/v1/exports/indoor-climate", params=PERIOD).status_code == 401
    reader = key("reader", "public", scopes=["open:read", "restricted:read"])  # may page, not export
    r = client.get("/api/v1/exports/indoor-climate", params=PERIOD, headers=bearer(reader))
    assert r.status_code == 403 and "export:bulk" in r.json()["error"]["message"]
    partner = key("labo", "partner")
    r = client.get("/api/v1/exports/indoor-climate", params=PERIOD, headers=bearer(partner))
    assert r.status_code == 200 and {x["device"] for x in rows_of(r.text)} == {INDOOR}
    # the registry export grows with the caller's scopes, never to the dwelling for a partner
    devices = rows_of(client.get("/api/v1/exports/devices", headers=bearer(partner)).text)
    assert {x["device"] for x in devices} == {*STATIONS, INDOOR}


def test_personal_readings_only_with_personal_read_and_audited(client: TestClient, city_store, app) -> None:
    store, _ = city_store
    key = key_maker(store)
    partner, water = key("labo", "partner"), key("regie", "operator-water")
    assert client.get("/api/v1/exports/water_meter", params=PERIOD).status_code == 401
    r = client.get("/api/v1/exports/water_meter", params=PERIOD, headers=bearer(partner))
    assert r.status_code == 403 and HOME not in r.text
    devices = client.get("/api/v1/exports/devices", headers=bearer(partner))
    assert HOME not in devices.text and "Appartement" not in devices.text
    assert devices.headers["x-withheld-devices"] == "1"
    r = client.get("/api/v1/exports/water_meter", params=PERIOD, headers=bearer(water))
    assert r.status_code == 200
    rows = rows_of(r.text)
    assert len(rows) == 96 and {x["device"] for x in rows} == {HOME}
    # everyone gets the open aggregate instead
    agg = client.get("/api/v1/exports/water-consumption", params={"since": "2026-05-03", "until": "2026-05-06"})
    assert agg.status_code == 200 and HOME not in agg.text
    assert agg.text.splitlines()[0].split(",")[:7] == ["zone", "name", "kind", "parent", "period", "complete",
                                                       "status"]
    app.state.access.audit.flush()
    entries = [e for e in store.audit_entries(limit=100) if e["route"] == "/api/v1/exports/{dataset}"]
    personal = [e for e in entries if e["data_class"] == "personal" and e["event"] == "read"]
    assert len(personal) == 1 and personal[0]["row_count"] == 96 and personal[0]["role"] == "operator-water"
    assert personal[0]["subjects"] and HOME not in json.dumps(personal[0], default=str)  # devices as pseudonyms
    refused = [e for e in entries if e["event"] == "refused"]
    assert len(refused) >= 2


def test_listing_says_what_the_caller_may_export(client: TestClient) -> None:
    body = client.get("/api/v1/exports").json()
    by_id = {d["id"]: d for d in body["datasets"]}
    assert by_id["weather"]["exportable"] and not by_id["indoor-climate"]["exportable"]
    assert by_id["weather"]["licence"] == "etalab-2.0"
    assert by_id["weather"]["formats"]["csv-fr"].endswith("/api/v1/exports/weather?format=csv-fr")
    assert "geojson" not in by_id["water-consumption"]["formats"]
    schema = client.get("/api/v1/exports/weather/schema").json()
    assert [f["name"] for f in schema["fields"]][:2] == ["time", "device"]
    assert schema["licenses"][0]["name"] == "etalab-2.0"


SENTINELS = (HOME, "AB-1234", "Appartement 12", "43.6101", "3.8751", "8765.4")


@pytest.mark.parametrize("who", ["anonymous", "partner"])
def test_no_personal_value_in_any_export_without_personal_read(client: TestClient, city_store, who: str) -> None:
    store, _ = city_store
    headers = bearer(key_maker(store)("labo", "partner")) if who == "partner" else {}
    names = [d["id"] for d in client.get("/api/v1/exports").json()["datasets"]] + ["water_meter"]
    seen = 0
    for name in names:
        for fmt in ("csv", "csv-fr", "geojson", "parquet"):
            r = client.get(f"/api/v1/exports/{name}", params={"since": "2026-05-01", "until": "2026-05-06",
                                                               "format": fmt}, headers=headers)
            assert r.status_code in (200, 401, 403, 422), (name, fmt, r.text[:200])
            seen += r.status_code == 200
            body = r.content.decode("utf-8", "replace") + " ".join(r.headers.values())
            if fmt == "parquet" and r.status_code == 200:
                body += str(pq.read_table(io.BytesIO(r.content)).to_pylist())
            assert not [s for s in SENTINELS if s in body], (who, name, fmt)
    assert seen >= 20


def test_table_schema_in_the_language_asked_with_the_same_column_names(client: TestClient) -> None:
    fr = client.get("/api/v1/exports/weather/schema")
    en = client.get("/api/v1/exports/weather/schema", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert fr.headers["content-language"] == "fr" and en.headers["content-language"] == "en"
    fr, en = fr.json(), en.json()
    assert [f["name"] for f in fr["fields"]] == [f["name"] for f in en["fields"]]  # stable machine names
    assert (fr["title"], en["title"]) == ("Météo urbaine", "Urban weather")
    assert "noms techniques stables" in fr["description"] and "stable machine names" in en["description"]
    by_name = {f["name"]: f for f in fr["fields"]}
    assert by_name["device"]["description"] == "DevEUI du capteur"
    assert {f["name"]: f for f in en["fields"]}["device"]["description"] == "DevEUI of the sensor"
    assert client.get("/api/v1/exports/weather/schema", params={"lang": "en"},
                      headers={"Accept-Language": "fr"}).json()["language"] == "en"
    listing = {d["id"]: d for d in client.get("/api/v1/exports").json()["datasets"]}
    assert listing["weather"]["description"]["en"].startswith("Temperature, humidity")
    assert listing["weather"]["description"]["fr"].startswith("Température, humidité")
