"""Device and zone tags through self-service, on `clapas run`'s service (pipeline, detectors, store, API over one
settings holder): the environment department lowers the river gauge's `threshold_yellow` tag through the API; the
next reading above it opens `flood.river_level` with the new height, no restart, although the network server still
sends the old tag; the change is in the settings history and the audit log, and `clapas devices export` writes it
back. Another department's key is refused, tags the registry file could not hold are refused with the reason."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from clapas.charter.keys import new_key
from clapas.config import SelfServiceSettings
from clapas.model import Zone
from clapas.registry.devices_csv import read_devices, write_devices
from clapas.selfservice.tags import InvalidTags, check
from tests.selfservice.test_end_to_end import GAUGE, TAGS, Run

URL = f"/api/v1/devices/{GAUGE}/tags"
PATH = f"devices.{GAUGE}.tags"


@pytest.fixture
def run(samples: Path, tmp_path: Path):
    r = Run(samples, tmp_path)
    yield r
    r.close()


def key(run: Run, name: str, role: str) -> dict[str, str]:
    k = new_key()
    run.store.create_key(key_id=k.key_id, name=name, secret_hash=k.hash, role=role)
    return {"Authorization": f"Bearer {k.token}"}


def test_a_gauge_tag_changed_through_the_api_opens_the_alert_at_the_next_reading(run: Run) -> None:
    for _ in range(4):
        run.reading(2.0)
    assert run.alerts() == []  # 2 m: below the tagged yellow height (3 m)
    got = run.client.get(URL, headers=run.headers).json()
    assert got["tags"]["threshold_yellow"] == "3.00"
    assert (got["department"], got["scope"], got["may_change"]) == ("environment", "settings:environment", True)

    new = {**TAGS, "threshold_yellow": "1.50", "bridge": "Lavalette"}
    r = run.client.put(URL, headers=run.headers, json={"tags": new})
    assert r.status_code == 200, r.text
    assert r.json()["change"]["previous"]["threshold_yellow"] == "3.00"
    run.reading(2.0)  # the network server still tags it 3.00: the city's tags stay
    [alert] = run.alerts()
    assert alert["state"] == "open" and alert["evidence"]["threshold_yellow_m"] == 1.5
    assert run.store.device(GAUGE)["tags"] == new

    # kept with who and when, before and after, in the settings history; audited; not a setting
    [change] = run.client.get("/api/v1/settings/history", headers=run.headers, params={"path": PATH}).json()["changes"]
    assert change["actor"] == "service des crues" and change["role"] == "operator-environment"
    assert change["value"] == new and change["previous"]["threshold_yellow"] == "3.00"
    run.app.state.access.audit.flush()
    [entry] = run.store.audit_entries(event="tags.changed")
    assert entry["actor"] == "service des crues" and entry["detail"]["tags"]["bridge"] == "Lavalette"
    assert entry["detail"]["previous"]["threshold_yellow"] == "3.00"
    assert run.service.holder.overrides == {} and run.service.holder.skipped == {}

    # back to file: the registry CSV, which reads back as the same tags
    out = io.StringIO()
    write_devices(run.store.devices(limit=10), out)
    [dev] = [d for d in read_devices(io.StringIO(out.getvalue())) if d.eui == GAUGE]
    assert dev.tags == new
    assert "bridge=Lavalette" in next(r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["eui"] == GAUGE)[
        "tags"]


def test_another_department_and_bad_tags_are_refused(run: Run) -> None:
    run.reading(2.0)
    water = key(run, "eau", "operator-water")
    r = run.client.put(URL, headers=water, json={"tags": {"river": "Mosson"}})
    assert r.status_code == 403 and "settings:environment" in r.json()["error"]["message"]
    assert run.client.get(URL, headers=water).json()["may_change"] is False
    assert run.client.put(URL, json={"tags": {}}).status_code == 401
    r = run.client.put(URL, headers=run.headers, json={"tags": {"threshold_yellow": "haut", "a;b": "c"}})
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "threshold_yellow: read as a number" in message and "key 'a;b'" in message
    assert run.client.put(URL, headers=run.headers, json={"river": "Lez"}).status_code == 422
    admin = key(run, "plateforme", "operator")  # config:write and every department
    assert run.client.put(URL, headers=admin, json={"tags": {"river": "Lez"}}).status_code == 200
    assert run.store.settings_history(PATH)[0]["actor"] == "plateforme"
    assert len(run.store.settings_history()) == 1


def test_a_zone_tag_is_kept_in_its_properties_and_exported(run: Run) -> None:
    run.store.upsert_zones([Zone(id="lez", name="Bassin du Lez", kind="catchment", properties={"area_km2": 746})])
    run.store.upsert_zones([Zone(id="ecusson", name="Écusson", kind="district")])
    r = run.client.put("/api/v1/zones/lez/tags", headers=run.headers, json={"tags": {"vigicrues": "Lez-Mosson"}})
    assert r.status_code == 200, r.text
    [z] = [z for z in run.store.zones() if z["id"] == "lez"]
    assert z["properties"] == {"area_km2": 746, "tags": {"vigicrues": "Lez-Mosson"}}
    assert run.service.alerting.runner.registry.zones["lez"].properties["tags"] == {"vigicrues": "Lez-Mosson"}
    assert run.store.settings_history('zones.lez.tags')[0]["value"] == '{"vigicrues":"Lez-Mosson"}'
    # a district is every department's: config:write
    r = run.client.put("/api/v1/zones/ecusson/tags", headers=run.headers, json={"tags": {"a": "b"}})
    assert r.status_code == 403 and "config:write" in r.json()["error"]["message"]
    assert run.client.get("/api/v1/zones/nowhere/tags", headers=run.headers).status_code == 404


@pytest.mark.parametrize("tags,why", [
    ({"k": " padded"}, "space at either end"), ({"k": "a\nb"}, "control character"),
    ({"x" * 65: "v"}, "1 to 64"), ({"k": "v" * 257}, "at most 256"), ({"k": True}, "must be text"),
    ({f"k{i}": "v" for i in range(51)}, "at most 50"), (["k=v"], "an object"), ({"lat": "nord"}, "number"),
])
def test_tags_the_registry_file_could_not_hold_are_refused(tags, why) -> None:
    with pytest.raises(InvalidTags, match=why):
        check(tags, SelfServiceSettings())


def test_numbers_are_kept_as_text() -> None:
    assert check({"capacity": 12, "level_datum": "10.0", "note": ""}, SelfServiceSettings()) == {
        "capacity": "12", "level_datum": "10.0", "note": ""}
