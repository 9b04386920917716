"""GET /api/v1/zones/{zone}/series over both stores: a zone's hourly roll-up from the per-zone rollup (the same
answer as aggregating its devices' rows, pending and rolled up), and the charter: a district of dwellings' meters is
personal, so its hours go only to callers who may read personal data; the others are pointed to the open daily
aggregate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter import LOCAL, OPEN_READ, RESTRICTED_READ, Caller
from clapas.config import Settings
from clapas.model import Device, Zone
from clapas.store.base import Batch, Store
from tests.store.batches import uplink
from tests.store.test_store import make_store  # noqa: F401 - the fixture that opens both stores

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOURS = 30
PARTNER = Caller(actor="partner", via="key", role="partner", scopes=frozenset({OPEN_READ, RESTRICTED_READ}))


@pytest.fixture(params=["pending", "rolled up"])
def city(make_store, request: pytest.FixtureRequest) -> Store:  # noqa: F811 - the imported fixture
    """A district (d1) holding a DMA (dma-1) of 12 dwellings' meters, a district meter and a weather station; every
    device reports every 20 min."""
    store: Store = make_store()
    store.upsert_zones([Zone(id="d1", name="District 1", kind="district"),
                        Zone(id="dma-1", name="DMA 1", kind="dma", parent="d1"),
                        Zone(id="d2", name="District 2", kind="district")])
    devices = [Device(eui=f"a{i:015x}", kind="water_meter", zone="dma-1", premises_use="habitation")
               for i in range(12)]
    devices += [Device(eui="b000000000000001", kind="district_meter", zone="d1"),
                Device(eui="c000000000000001", kind="weather_station", zone="d1")]
    store.upsert_devices(devices)
    b = Batch()
    for m in range(0, HOURS * 60, 20):
        t = T0 + timedelta(minutes=m)
        for i, d in enumerate(devices):
            if d.kind == "weather_station":
                uplink(b, d.eui, t, {"air.temperature": 10 + (m % 300) / 60})
            else:
                uplink(b, d.eui, t, {"water.volume": 100 * i + m * (0.001 + i / 10_000)})
    store.write(b)
    if request.param == "rolled up":
        for step in ("maintain", "compact"):
            if hasattr(store, step):
                getattr(store, step)(settle_s=0)
        assert store.sql("SELECT count(*) AS n FROM zone_rollup_pending")[0]["n"] == 0
    return store


def client(store: Store, caller: Caller | None) -> TestClient:
    app = create_app(store, Settings())
    if caller is not None:
        app.state.identify = lambda request: caller
    return TestClient(app)


def series(c: TestClient, zone: str, quantity: str = "water.volume", kind: str | None = "water_meter",
           hours: int = HOURS):
    to = (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
    kind_arg = f"&kind={kind}" if kind else ""
    return c.get(f"/api/v1/zones/{zone}/series?quantity={quantity}{kind_arg}&from=2026-03-02T00:00:00Z&to={to}")


def test_a_dma_hours_are_its_meters_rows_aggregated(city: Store) -> None:
    r = series(client(city, LOCAL), "dma-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["class"] == "personal" and body["resolution"] == "1h" and body["zones"] == ["dma-1"]
    points = body["points"]
    assert len(points) == HOURS
    euis = [d["eui"] for d in city.devices(zone="dma-1")]
    expect = city.group_series("water.volume", T0, T0 + timedelta(hours=HOURS), euis=euis, resolution="1h")
    assert [(p["devices"], p["count"], p["min"], p["max"]) for p in points] == \
        [(e["devices"], e["count"], e["min"], e["max"]) for e in expect]
    assert [p["mean"] for p in points] == pytest.approx([e["mean"] for e in expect])
    assert points[0]["time"] == "2026-03-02T00:00:00Z" and points[0]["devices"] == 12 and points[0]["count"] == 36


def test_a_district_pools_the_zones_under_it(city: Store) -> None:
    c = client(city, LOCAL)
    whole = series(c, "d1", kind=None).json()
    assert whole["zones"] == ["d1", "dma-1"] and whole["class"] == "personal"
    assert whole["points"][0]["devices"] == 13  # 12 meters and the district meter (the station reports no volume)
    network = series(c, "d1", kind="district_meter").json()
    assert network["class"] == "restricted" and network["points"][0]["devices"] == 1
    air = series(c, "d1", quantity="air.temperature", kind=None).json()
    assert air["points"][0]["devices"] == 1 and air["class"] == "personal"  # pooled with the dwellings' zone
    station = series(c, "d1", quantity="air.temperature", kind="weather_station").json()
    assert station["class"] == "open" and station["points"][0]["count"] == 3
    assert series(c, "d2").json()["points"] == []


def test_households_hours_only_for_personal_readers(city: Store) -> None:
    anonymous = series(client(city, None), "dma-1")
    assert anonymous.status_code == 401
    assert "/api/v1/aggregates/water-consumption" in anonymous.text and "a0000" not in anonymous.text
    partner = client(city, PARTNER)
    refused = series(partner, "d1", kind=None)
    assert refused.status_code == 403 and "personal:read" in refused.text
    assert series(partner, "d1", kind="district_meter").status_code == 200  # restricted: the partner reads it
    assert series(client(city, None), "d1", quantity="air.temperature", kind="weather_station").status_code == 200
    assert series(client(city, None), "d1", kind="district_meter").status_code == 401


def test_bad_requests(city: Store) -> None:
    c = client(city, LOCAL)
    assert series(c, "nowhere").status_code == 404
    assert series(c, "d1", quantity="no.such").status_code == 404
    assert c.get("/api/v1/zones/d1/series?quantity=water.volume&from=2026-03-02T00:00:00Z"
                 "&to=2026-03-01T00:00:00Z").status_code == 422
    assert c.get("/api/v1/zones/d1/series?quantity=water.volume&from=2024-01-01T00:00:00Z"
                 "&to=2026-03-01T00:00:00Z").status_code == 422
