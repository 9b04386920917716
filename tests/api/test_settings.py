"""`/api/v1/settings` on a real app over both stores: a department key changes its own settings (validated by the
config file's rules, kept, audited), a key of another department or without a key is refused, the change survives
a restart because it is in the store, and a revert gives the config file's value back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter.keys import new_key
from clapas.config import AuthSettings, Settings, WebhookSettings
from clapas.model import Device
from clapas.store.base import Store, open_store

GAUGE = "0004a30b001c2f3a"
YELLOW = f"flood.gauges.{GAUGE}.yellow_m"
SETTINGS = "/api/v1/settings"
# the gauge's own heights, as the registry tags them (the base the per-device overrides lie over)
TAGS = {"threshold_yellow": "3.00", "threshold_orange": "4.00", "threshold_red": "5.00", "river": "Lez"}


def base_settings() -> Settings:
    s = Settings(auth=AuthSettings(key_cache_s=0))
    s.alerts.webhook = WebhookSettings(url="http://127.0.0.1:9/hook", rules="water.*")
    return s


class City:
    """A store with one river gauge and an app over it; `restart` closes both and opens them again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._open()
        self.store.upsert_devices([Device(eui=GAUGE, name="Lez à Lavalette", kind="water_level", zone="lez",
                                          tags=TAGS)])
        self.env = self.key("crues", "operator-environment")
        self.water = self.key("eau", "operator-water")
        self.partner = self.key("labo", "partner")
        self.admin = self.key("plateforme", "operator")

    def _open(self) -> None:
        self.store: Store = open_store(self.url)
        self.app = create_app(self.store, base_settings())
        self.client = TestClient(self.app)

    def key(self, name: str, role: str) -> str:
        k = new_key()
        self.store.create_key(key_id=k.key_id, name=name, secret_hash=k.hash, role=role)
        return k.token

    def restart(self) -> None:
        self.close()
        self._open()

    def audit(self, event: str | None = None) -> list[dict]:
        self.app.state.access.audit.flush()
        return self.store.audit_entries(event=event, limit=1000)[::-1]

    def close(self) -> None:
        self.app.state.access.close()
        self.store.close()


@pytest.fixture(params=["duckdb", "postgres"])
def city(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[City]:
    url = (f"duckdb:///{tmp_path / 'city.duckdb'}" if request.param == "duckdb"
           else request.getfixturevalue("pg_url"))
    c = City(url)
    yield c
    c.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def message(r) -> str:
    return r.json()["error"]["message"]


def listed(c: City, token: str, **params) -> dict[str, dict]:
    r = c.client.get(SETTINGS, headers=auth(token), params=params)
    assert r.status_code == 200, r.text
    return {s["path"]: s for s in r.json()["settings"]}


def test_a_department_changes_its_gauge_threshold_audited_and_listed(city: City) -> None:
    before = listed(city, city.env)
    gauge = before[YELLOW]
    assert (gauge["value"], gauge["in_use"], gauge["overridden"], gauge["device"]) == (None, 3.0, False, GAUGE)
    assert gauge["scope"] == "settings:environment" and gauge["may_change"]
    assert not any(p.startswith("water.") for p in before)  # only what this key may change
    r = city.client.put(SETTINGS, headers=auth(city.env), json={"path": YELLOW, "value": 2.4})
    assert r.status_code == 200, r.text
    change = r.json()["change"]
    assert (change["path"], change["value"], change["previous"], change["actor"]) == (YELLOW, 2.4, None, "crues")
    after = listed(city, city.env)[YELLOW]
    assert (after["value"], after["in_use"], after["overridden"], after["changed_by"]) == (2.4, 2.4, True, "crues")
    assert after["base"] is None and after["base_in_use"] == 3.0  # the file sets nothing: the tag was the base
    # the running settings (what the detectors and the API read) have it
    assert city.app.state.settings.flood.level_thresholds(GAUGE, TAGS) == (2.4, 4.0, 5.0)
    [entry] = city.audit("settings.changed")
    assert (entry["actor"], entry["role"], entry["method"], entry["route"], entry["status"]) == (
        "crues", "operator-environment", "PUT", SETTINGS, 200)
    assert entry["detail"] == {"path": YELLOW, "value": 2.4, "previous": None, "department": "environment",
                               "change_id": change["id"]}
    hist = city.client.get(SETTINGS + "/history", headers=auth(city.env), params={"path": YELLOW}).json()["changes"]
    assert [(h["value"], h["actor"], h["removed"]) for h in hist] == [(2.4, "crues", False)]


def test_a_key_without_the_departments_scope_is_refused_and_nothing_changes(city: City) -> None:
    r = city.client.put(SETTINGS, headers=auth(city.water), json={"path": YELLOW, "value": 1.0})
    assert r.status_code == 403
    assert message(r) == (f"the role 'operator-water' of this credential lacks the scope settings:environment to "
                          f"change {YELLOW} (the environment department's settings)")
    # a key holding no settings scope at all (nor an anonymous caller) is refused before the body is read
    r = city.client.put(SETTINGS, headers=auth(city.partner), json={"path": "water.burst_q3_share", "value": 0.5})
    assert r.status_code == 403 and "lacks one of the scopes settings:water, " in message(r)
    r = city.client.put(SETTINGS, json={"nonsense": True})
    assert r.status_code == 401 and "settings:environment" in message(r)
    # routes shared by every department: config:write, which no department role holds
    r = city.client.put(SETTINGS, headers=auth(city.env), json={"path": "alerts.webhook.rules", "value": "*"})
    assert r.status_code == 403 and "config:write" in message(r)
    assert city.store.settings_history() == []
    assert city.app.state.settings.flood.level_thresholds(GAUGE, TAGS)[0] == 3.0
    refused = city.audit("refused")
    assert [(e["actor"], e["status"]) for e in refused] == [("eau", 403), ("labo", 403), ("anonymous", 401),
                                                            ("crues", 403)]
    # the water key changes its own department's settings
    r = city.client.put(SETTINGS, headers=auth(city.water), json={"path": "water.burst_q3_share", "value": 0.5})
    assert r.status_code == 200 and city.app.state.settings.water.burst_q3_share == 0.5


@pytest.mark.parametrize(("path", "value", "expected"), [
    (YELLOW, "high", "Expected `float | null`, got `str` - at `$.flood.gauges[...].yellow_m`"),
    (f"flood.gauges.{GAUGE}.yelow_m", 2.0, "Object contains unknown field `yelow_m`"),
    ("flood.rain_heavy_mm", [30, 45], "rain thresholds: one depth per window of rain_windows_h (5)"),
    ("heat.department", "99", "heat.department '99' has no canicule thresholds"),
    ("store", "duckdb:///elsewhere.duckdb", "store cannot be changed at run time"),
    ("flood.gauges.\"unterminated", 1.0, "unterminated quoted key"),
    ('alerts.rule_enabled."weather.sunny"', False, "'weather.sunny' is no rule of a known use"),
])
def test_values_the_config_file_refuses_are_refused_with_its_message(city: City, path: str, value, expected) -> None:
    r = city.client.put(SETTINGS, headers=auth(city.admin), json={"path": path, "value": value})
    assert r.status_code == 422, r.text
    assert expected in message(r)
    assert city.store.settings_history() == []


def test_a_change_survives_a_restart_because_it_is_in_the_store_and_reverts_to_the_base(city: City) -> None:
    for path, value in ((YELLOW, 2.4), ('alerts.rule_enabled."flood.river_rise"', False),
                        ("alerts.webhook.rules", "water.*,flood.*")):
        r = city.client.put(SETTINGS, headers=auth(city.admin), json={"path": path, "value": value})
        assert r.status_code == 200, r.text
    city.restart()
    s = city.app.state.settings
    assert s.flood.level_thresholds(GAUGE, TAGS)[0] == 2.4
    assert s.alerts.rule_enabled == {"flood.river_rise": False}
    assert s.alerts.webhook.rules == "water.*,flood.*"
    r = city.client.delete(SETTINGS, headers=auth(city.env), params={"path": YELLOW})
    assert r.status_code == 200 and r.json()["value"] is None
    assert city.app.state.settings.flood.level_thresholds(GAUGE, TAGS)[0] == 3.0  # the tag again
    assert city.client.delete(SETTINGS, headers=auth(city.env), params={"path": YELLOW}).status_code == 404
    city.restart()
    assert city.app.state.settings.flood.level_thresholds(GAUGE, TAGS)[0] == 3.0
    assert city.app.state.settings.alerts.webhook.rules == "water.*,flood.*"
    hist = city.store.settings_history(YELLOW)
    assert [(h["removed"], h["actor"]) for h in hist] == [(True, "crues"), (False, "plateforme")]
    assert [e["detail"]["path"] for e in city.audit("settings.reverted")] == [YELLOW]
