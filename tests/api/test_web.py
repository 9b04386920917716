"""/api/v1/web/config: the dashboard's public settings ([web]), the same for an anonymous caller and for every key,
and nothing else of the settings (the city's secrets are in the same Settings object)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter.keys import new_key
from clapas.config import AlertSettings, Settings, WebhookSettings, WebSettings
from clapas.store.duckdb import DuckDBStore

TILES = "https://tiles.ville.example/{z}/{x}/{y}.png"
SECRET = "https://hooks.example/s3cr3t-token"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = DuckDBStore(f"duckdb:///{tmp_path_factory.mktemp('web-config') / 'city.duckdb'}")
    tokens = {}
    for role in ("partner", "operator-water", "admin"):
        k = new_key()
        store.create_key(key_id=k.key_id, name=f"web {role}", secret_hash=k.hash, role=role)
        tokens[role] = k.token
    settings = Settings(web=WebSettings(tile_url=TILES, tile_attribution="© Ville <b>"),
                        alerts=AlertSettings(webhook=WebhookSettings(url=SECRET)))
    app = create_app(store, settings)  # the charter on, as it ships: anonymous is "public"
    with TestClient(app) as client:
        yield client, tokens
    store.close()


def test_anonymous_gets_the_public_settings_only(served: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = served
    r = client.get("/api/v1/web/config")
    assert r.status_code == 200
    assert r.json() == {"tile_url": TILES, "tile_attribution": "© Ville <b>", "tile_max_zoom": 19,
                        "language": "fr"}
    assert set(r.json()) == set(msgspec.structs.asdict(WebSettings()))
    assert "s3cr3t" not in r.text


@pytest.mark.parametrize("role", ["partner", "operator-water", "admin"])
def test_every_key_gets_the_same_answer(served: tuple[TestClient, dict[str, str]], role: str) -> None:
    client, tokens = served
    anonymous = client.get("/api/v1/web/config").json()
    r = client.get("/api/v1/web/config", headers={"Authorization": f"Bearer {tokens[role]}"})
    assert r.status_code == 200 and r.json() == anonymous


def test_a_bad_key_is_refused(served: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = served
    r = client.get("/api/v1/web/config", headers={"Authorization": "Bearer clapas_nope_nope"})
    assert r.status_code == 401


def test_default_is_no_tiles(tmp_path: Path) -> None:
    store = DuckDBStore(f"duckdb:///{tmp_path / 'c.duckdb'}")
    app = create_app(store, Settings())
    try:
        with TestClient(app) as client:
            assert client.get("/api/v1/web/config").json()["tile_url"] == ""
    finally:
        store.close()
