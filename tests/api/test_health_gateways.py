"""Which devices each gateway hears (the uplinks' rxInfo, `device_gateways`), served by the health routes, on both
stores: counted and listed, a device heard only by one gateway marked, personal devices counted not listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter import Caller
from clapas.config import Settings
from clapas.model import Device
from clapas.store.alerts import AlertChange
from clapas.store.base import Batch, Store
from tests.helpers import as_local
from tests.store import test_store as suite
from tests.store.batches import uplink

make_store = suite.make_store
store = suite.store
AT = datetime(2026, 8, 3, 12, tzinfo=UTC)
D1, D2, D3, D4, M = (f"70b3d5000000020{i}" for i in range(5))
NOC = Caller(actor="noc", via="key", role="operator", scopes=frozenset({"open:read", "restricted:read"}))


def heard(b: Batch, eui: str, t: datetime, *rx: tuple[str, float]) -> Batch:
    """One uplink of `eui` heard by the gateways `rx` (id, SNR), as the pipeline hands it to the store."""
    uplink(b, eui, t)
    b.links.append((t.timestamp(), eui, "up", None, 7, 125_000, rx, None, None))
    return b


def _city(store: Store) -> None:
    store.upsert_devices([Device(eui=D1, name="Station 1", kind="weather_station", zone="z1", lat=43.6, lon=3.87),
                          Device(eui=D2, kind="weather_station", zone="z1"),
                          Device(eui=D3, kind="air_quality", zone="z2"), Device(eui=D4, kind="air_quality"),
                          Device(eui=M, kind="water_meter", zone="z1", data_class="personal")])
    b = Batch()
    heard(b, D1, AT - timedelta(hours=5), ("gw-a", 2.0))
    heard(b, D1, AT - timedelta(hours=1), ("gw-a", 4.5))
    heard(b, D2, AT - timedelta(hours=2), ("gw-a", -3.0), ("gw-b", 7.0))
    heard(b, D3, AT - timedelta(hours=2), ("gw-b", 1.0))
    heard(b, M, AT - timedelta(hours=3), ("gw-a", 0.5))
    heard(b, D4, AT - timedelta(days=8), ("gw-c", 3.0))  # outside the 7-day window
    store.write(b)


@pytest.fixture
def city(store: Store) -> Store:
    _city(store)
    return store


def test_the_devices_a_gateway_hears(city: Store) -> None:
    with TestClient(as_local(create_app(city, Settings()))) as c:
        r = c.get("/api/v1/gateways/GW-A/devices", params={"at": AT.isoformat()})
        assert c.get("/api/v1/gateways/gw-c/devices", params={"at": AT.isoformat()}).status_code == 404
        assert c.get("/api/v1/gateways/gw-zz/devices").status_code == 404
    assert r.status_code == 200
    body = r.json()
    by = {d["eui"]: d for d in body["devices"]}
    assert list(by) == [D1, D2, M]
    assert body["counts"] == {"heard": 3, "only_this_gateway": 2, "one_other_gateway": 1}
    assert by[D1]["only_this_gateway"] and not by[D2]["only_this_gateway"] and by[D2]["gateways"] == 2
    assert by[D1]["last_snr"] == 4.5 and by[D1]["zone"] == "z1" and by[D1]["lat"] == 43.6
    assert datetime.fromisoformat(by[D1]["first_heard"]) == AT - timedelta(hours=5)
    assert datetime.fromisoformat(by[D1]["last_heard"]) == AT - timedelta(hours=1)
    assert body["withheld"] == 0 and body["offline_since"] is None


def test_a_personal_device_is_counted_not_listed_without_the_scope(city: Store) -> None:
    app = create_app(city, Settings())
    app.state.identify = lambda request: NOC
    with TestClient(app) as c:
        body = c.get("/api/v1/gateways/gw-a/devices", params={"at": AT.isoformat()}).json()
        device = c.get(f"/api/v1/health/devices/{D2}", params={"at": AT.isoformat()}).json()
    assert [d["eui"] for d in body["devices"]] == [D1, D2] and body["withheld"] == 1
    assert body["counts"]["heard"] == 3
    assert [g["gateway"] for g in device["gateways"]] == ["gw-a", "gw-b"]  # latest first, then by id


def test_the_gateway_list_counts_and_shows_incidents(city: Store) -> None:
    city.apply_alert_changes([AlertChange("health.gateway_offline", "gw-b", "open", AT - timedelta(minutes=10),
                                          "major", {"orphaned": [D3]}, "offline", "gateway", "")])
    with TestClient(as_local(create_app(city, Settings()))) as c:
        body = c.get("/api/v1/gateways", params={"at": AT.isoformat()}).json()
        b = c.get("/api/v1/gateways/gw-b/devices", params={"at": AT.isoformat()}).json()
        d3 = c.get(f"/api/v1/health/devices/{D3}", params={"at": AT.isoformat()}).json()
    gws = {g["gateway"]: g for g in body["gateways"]}
    assert set(gws) == {"gw-a", "gw-b"}
    assert (gws["gw-a"]["devices"], gws["gw-a"]["only_by_it"]) == (3, 2)
    assert (gws["gw-b"]["devices"], gws["gw-b"]["only_by_it"]) == (2, 1)
    assert gws["gw-a"]["offline_since"] is None
    assert datetime.fromisoformat(gws["gw-b"]["offline_since"]) == AT - timedelta(minutes=10)
    assert datetime.fromisoformat(b["offline_since"]) == AT - timedelta(minutes=10)
    assert d3["orphaned_by"] == "gw-b"


def test_later_and_replayed_uplinks_move_the_pairs_forward_only(city: Store) -> None:
    later = heard(Batch(), D1, AT - timedelta(minutes=5), ("gw-a", -1.0))
    city.write(later)
    city.write(heard(Batch(), D1, AT - timedelta(hours=9), ("gw-a", 9.0)))  # an old uplink, late or replayed
    city.write(heard(Batch(), D1, AT - timedelta(hours=1), ("gw-a", 4.5)))  # the same again
    [g] = city.device_gateways(D1)
    assert g["gateway"] == "gw-a" and g["last_snr"] == -1.0
    assert g["first_heard"] == AT - timedelta(hours=9) and g["last_heard"] == AT - timedelta(minutes=5)
