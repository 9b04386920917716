"""The transparency register follows the live configuration: classes, purposes, retention and readers per kind."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter.register import register
from clapas.config import load_settings
from clapas.store.duckdb import DuckDBStore


def by_kind(reg: dict) -> dict[str, dict]:
    return {k["kind"]: k for k in reg["kinds"]}


def test_defaults_name_the_dwelling_meter_personal_with_its_retention_and_readers() -> None:
    reg = register(load_settings(env={}))
    kinds = by_kind(reg)
    home = kinds["water_meter"]
    assert home["class"] == "personal" and home["personal_data"] and not home["anonymous"]
    assert "loi Warsmann" in home["purpose"]
    assert home["retention"]["observations"] == "24 months"
    assert home["retention"]["quantities"]["water.volume"] == {"sub_daily": "24 months", "daily": "36 months"}
    assert home["retention"]["alerts"] == "36 months after they are resolved"
    assert "public" not in home["roles"] and "partner" not in home["roles"]
    assert {"operator-water", "dpo"} <= set(home["roles"])
    assert kinds["water_meter.non_residential"]["class"] == "restricted"
    assert kinds["weather_station"]["anonymous"] and kinds["weather_station"]["retention"]["observations"] == "kept"
    assert reg["unknown_kinds"]["class"] == "restricted"
    assert reg["audit_log"]["retention"] == "12 months" and "dpo" in reg["audit_log"]["roles"]


def test_the_register_follows_the_city_configuration(tmp_path: Path) -> None:
    city = tmp_path / "city.toml"
    city.write_text("""
[charter]
anonymous = "partner"
[charter.kinds]
indoor_climate = "open"
[charter.quantities]
occupancy = "restricted"
[charter.purposes]
indoor_climate = "museum rooms only"
[charter.roles.researcher]
scopes = ["open:read", "personal:read"]
[charter.retention.kinds.indoor_climate]
months = 12
""")
    reg = register(load_settings(city, env={}))
    kinds = by_kind(reg)
    room = kinds["indoor_climate"]
    assert room["class"] == "open" and room["purpose"] == "museum rooms only" and room["anonymous"]
    assert room["retention"]["observations"] == "12 months"
    assert kinds["district_meter"]["anonymous"]  # anonymous callers are partners in this city
    assert "researcher" in kinds["water_meter"]["roles"]
    assert reg["quantities"] == [{"quantity": "occupancy", "class": "restricted",
                                  "roles": [r for r in kinds["district_meter"]["roles"]]}]


def test_register_route_is_open(tmp_path: Path) -> None:
    settings = load_settings(env={})
    store = DuckDBStore(f"duckdb:///{tmp_path / 'c.duckdb'}")
    with TestClient(create_app(store, settings)) as client:
        r = client.get("/api/v1/register")
    store.close()
    assert r.status_code == 200
    assert by_kind(r.json())["water_meter"]["class"] == "personal"
