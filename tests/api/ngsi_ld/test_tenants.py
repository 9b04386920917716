"""Tenancy (§4.15, §6.3.14) and the charter over the NGSI-LD routes: which tenant answers, who may write the
sandbox, and the city's tenant read-only."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.api.ngsi_ld.source import Hint
from clapas.api.ngsi_ld.tenants import CITY, EmptySource, Tenants, register_tenant, sandbox_enabled
from clapas.charter.keys import new_key
from clapas.config import AuthSettings, CharterSettings, NgsiLdSettings, Settings
from clapas.store.base import open_store

from .conftest import settings, uid, vehicle

E = "/ngsi-ld/v1/entities"


def test_sandbox_is_on_with_duckdb_and_off_with_postgres_unless_said() -> None:
    assert sandbox_enabled(Settings(store="duckdb:///x.duckdb"))
    assert not sandbox_enabled(Settings(store="postgresql://h/db"))
    assert sandbox_enabled(Settings(store="postgresql://h/db", ngsi_ld=NgsiLdSettings(sandbox="true")))
    assert not sandbox_enabled(Settings(store="duckdb:///x", ngsi_ld=NgsiLdSettings(sandbox=False)))


def test_without_a_sandbox_its_name_is_an_unknown_tenant(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'c.duckdb'}"
    store = open_store(url)
    s = Settings(store=url, ngsi_ld=NgsiLdSettings(sandbox=False), auth=AuthSettings(enforce=False))
    with TestClient(create_app(store, s)) as c:
        r = c.get(f"{E}?type=T", headers={"NGSILD-Tenant": "sandbox"})
        assert r.status_code == 404 and r.json()["type"].endswith("NonexistentTenant")
        assert c.get(f"{E}?type=T").status_code == 200  # the city's, the default
    store.close()


def test_writes_need_the_sandbox_scope(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'c.duckdb'}"
    store = open_store(url)
    key = new_key()
    store.create_key(key_id=key.key_id, name="lab", secret_hash=key.hash, role="experimenter")
    partner = new_key()
    store.create_key(key_id=partner.key_id, name="p", secret_hash=partner.hash, role="partner")
    s = settings(url)
    with TestClient(create_app(store, Settings(store=url, ngsi_ld=s.ngsi_ld,
                                               auth=AuthSettings(rate_limits=False)))) as c:
        eid = uid()
        r = c.post(E, json=vehicle(eid))
        assert r.status_code == 401 and r.json()["type"] == "about:blank"  # ProblemDetails on /ngsi-ld/ paths
        assert c.post(E, json=vehicle(eid), headers={"Authorization": f"Bearer {partner.token}"}).status_code == 403
        assert c.post(E, json=vehicle(eid), headers={"Authorization": f"Bearer {key.token}"}).status_code == 201
        assert c.get(f"{E}/{eid}").status_code == 200  # anyone reads the sandbox (open)
        assert c.get("/api/v1/nothing-here").json()["error"]["status"] == 404  # clapas's own shape elsewhere
    store.close()


def test_a_conformance_run_writes_anonymously_with_the_experimenter_grant(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'c.duckdb'}"
    store = open_store(url)
    s = Settings(store=url, ngsi_ld=settings(url).ngsi_ld, charter=CharterSettings(anonymous="experimenter"),
                 auth=AuthSettings(rate_limits=False))
    with TestClient(create_app(store, s)) as c:
        assert c.post(E, json=vehicle(uid())).status_code == 201
    store.close()


def test_the_city_tenant_is_pluggable(tmp_path: Path) -> None:
    class One(EmptySource):
        def candidates(self, caller: object, hint: Hint):  # type: ignore[override]
            yield {"id": "urn:ngsi-ld:WeatherObserved:1", "type": "https://smartdatamodels.org/WeatherObserved"}

    url = f"duckdb:///{tmp_path / 'c.duckdb'}"
    store = open_store(url)
    register_tenant(CITY, lambda st, se: One())
    try:
        tenants = Tenants.for_app(store, Settings(store=url))
        assert isinstance(tenants.sources["city"], One)
        with TestClient(create_app(store, Settings(store=url, auth=AuthSettings(enforce=False)))) as c:
            body = c.get(f"{E}?type=https://smartdatamodels.org/WeatherObserved").json()
            assert [e["id"] for e in body] == ["urn:ngsi-ld:WeatherObserved:1"]
    finally:
        from clapas.api.ngsi_ld import tenants as mod

        mod._FACTORIES.pop(CITY, None)
    store.close()


def test_a_creation_creates_its_tenant_and_tenants_are_isolated(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'c.duckdb'}"
    store = open_store(url)
    s = Settings(store=url, ngsi_ld=NgsiLdSettings(sandbox=True, default_tenant="sandbox", max_tenants=2),
                 auth=AuthSettings(enforce=False))
    a, b = {"NGSILD-Tenant": "tp414a"}, {"NGSILD-Tenant": "tp414b"}
    eid = uid()
    with TestClient(create_app(store, s)) as c:
        r = c.get(f"{E}?type=Vehicle", headers=a)
        assert r.status_code == 404 and r.headers["NGSILD-Tenant"] == "tp414a"  # echoed on errors too
        r = c.post(E, json=vehicle(eid), headers=a)
        assert r.status_code == 201 and r.headers["NGSILD-Tenant"] == "tp414a"
        assert c.get(f"{E}/{eid}", headers=a).status_code == 200
        assert c.get(f"{E}/{eid}").status_code == 404  # the default tenant does not see it
        assert c.post(E, json=vehicle(uid()), headers=b).status_code == 201
        assert c.get(f"{E}/{eid}", headers=b).status_code == 404
        r = c.post(E, json=vehicle(uid()), headers={"NGSILD-Tenant": "third"})
        assert r.status_code == 422 and "max_tenants" in r.json()["detail"]
        assert c.patch(f"{E}/{eid}/attrs", json={"speed": 1}, headers={"NGSILD-Tenant": "fourth"}).status_code == 404
    with TestClient(create_app(store, s)) as c:  # after a restart the tenant is there
        assert c.get(f"{E}/{eid}", headers=a).status_code == 200
    store.close()
