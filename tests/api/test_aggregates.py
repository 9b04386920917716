"""GET /api/v1/aggregates/water-consumption, anonymous, over both stores: index differences per zone and day,
k meters, secondary suppression, steps of a day or coarser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.config import Settings
from clapas.model import Device, Zone
from clapas.store.base import Batch, Store
from tests.store.batches import uplink
from tests.store.test_store import make_store  # noqa: F401 - the fixture that opens both stores

# local days of Paris (UTC+1 in March before the 29th): readings every 2 h from 1 March to 9 March
T0 = datetime(2026, 2, 28, 23, tzinfo=UTC)  # 1 March, 00:00 local
HOURS = 8 * 24
DISTRICTS = {"d1": 12, "d2": 9, "d3": 10}
USE_M3_H = 0.01  # each meter uses 10 L/h, meter i of a district i × 1 L/h more


def eui(zone: str, i: int) -> str:
    return f"{'abc'[int(zone[1]) - 1]}{i:015x}"


@pytest.fixture(params=["rolled up", "pending"])
def client(make_store, request: pytest.FixtureRequest) -> TestClient:  # noqa: F811 - the imported fixture
    """PostgreSQL reads days from its daily rollup once rolled up, from the raw rows while pending."""
    store: Store = make_store()
    if request.param == "pending" and not hasattr(store, "maintain"):
        pytest.skip("DuckDB has no rollups")
    store.upsert_zones([Zone(id=z, name=f"District {z}", kind="district") for z in DISTRICTS]
                       + [Zone(id="park", name="Parc", kind="park", parent="d1")])
    devices = [Device(eui=eui(z, i), kind="water_meter", zone=z, data_class="personal", subscriber=f"S-{z}-{i}")
               for z, n in DISTRICTS.items() for i in range(n)]
    devices.append(Device(eui="dddddddddddddddd", kind="district_meter", zone="d1"))  # not a consumer
    store.upsert_devices(devices)
    b = Batch()
    for h in range(0, HOURS, 2):
        t = T0 + timedelta(hours=h)
        for d in devices:
            i = int(d.eui[1:], 16) if d.kind == "water_meter" else 500
            uplink(b, d.eui, t, {"water.volume": 100 + h * (USE_M3_H + i * 0.001)})
    store.write(b)
    if hasattr(store, "maintain") and request.param == "rolled up":
        store.maintain(settle_s=0)
        assert store.sql("SELECT count(*) AS n FROM rollup_pending")[0]["n"] == 0
    return TestClient(create_app(store, Settings()))


def daily_m3(zone: str, hours: float = 24) -> float:
    """A day's volume of a district: the index at the day's last reading (22:00) minus the day before's."""
    return sum(hours * (USE_M3_H + i * 0.001) for i in range(DISTRICTS[zone]))


def cells(r) -> dict[tuple[str | None, str], dict]:
    assert r.status_code == 200, r.text
    return {(c["zone"], c["period"]): c for c in r.json()["cells"]}


def test_districts_by_day_anonymous(client: TestClient) -> None:
    r = client.get("/api/v1/aggregates/water-consumption?from=2026-03-02&to=2026-03-04")
    got = cells(r)
    d1 = got[("d1", "2026-03-02")]
    assert d1["status"] == "published" and d1["meters"] == 12
    assert d1["volume_m3"] == pytest.approx(daily_m3("d1"), abs=1e-3)
    city = got[(None, "2026-03-03")]
    assert city["status"] == "published" and city["meters"] == 31
    assert city["volume_m3"] == pytest.approx(sum(daily_m3(z) for z in DISTRICTS), abs=1e-3)
    # 9 meters: suppressed; the city minus d1 and d3 would give it back, so d3 (the smaller) goes too
    assert (got[("d2", "2026-03-02")]["status"], got[("d2", "2026-03-02")]["reason"]) == ("suppressed", "min_meters")
    assert (got[("d3", "2026-03-02")]["status"], got[("d3", "2026-03-02")]["reason"]) == ("suppressed", "secondary")
    assert "volume_m3" not in got[("d2", "2026-03-02")] and "meters" not in got[("d3", "2026-03-02")]
    assert {p for _, p in got} == {"2026-03-02", "2026-03-03"}
    assert ("park", "2026-03-02") not in got  # no meter ever: not listed
    # the first day of data has no day before it: nobody's consumption is known
    first = cells(client.get("/api/v1/aggregates/water-consumption?from=2026-03-01&to=2026-03-02"))
    assert all(c["status"] == "empty" for c in first.values()) or first == {}
    # nothing in it names a meter or a subscriber
    assert "S-d" not in r.text and eui("d1", 0) not in r.text


def test_weeks_and_one_zone(client: TestClient) -> None:
    got = cells(client.get("/api/v1/aggregates/water-consumption?from=2026-03-02&to=2026-03-09&step=1w"))
    week = got[("d1", "2026-03-02")]  # Monday 2 → Sunday 8
    assert week["status"] == "published" and week["meter_days"] == 7 * 12 and week["complete"]
    assert week["volume_m3"] == pytest.approx(7 * daily_m3("d1"), abs=1e-3)
    assert got[("d2", "2026-03-02")]["status"] == "suppressed"
    only = cells(client.get("/api/v1/aggregates/water-consumption?from=2026-03-02&to=2026-03-03&zone=d1"))
    assert {z for z, _ in only} == {"d1"}


@pytest.mark.parametrize("step", ["1h", "15min", "raw"])
def test_no_sub_daily_aggregate(client: TestClient, step: str) -> None:
    r = client.get(f"/api/v1/aggregates/water-consumption?from=2026-03-02&to=2026-03-03&step={step}")
    assert r.status_code == 422 and "daily or coarser" in r.json()["error"]["message"]


def test_bad_requests(client: TestClient) -> None:
    assert client.get("/api/v1/aggregates/water-consumption?zone=nowhere&from=2026-03-02").status_code == 404
    assert client.get("/api/v1/aggregates/water-consumption?from=2026-03-05&to=2026-03-02").status_code == 422
    assert client.get("/api/v1/aggregates/water-consumption?from=March").status_code == 422
