"""The access layer on a real app: own keys, 401/403, writes refused without changing anything, rate limits,
the audit log of what happened (tests of OIDC and gateway identities: test_identity.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter.keys import new_key
from clapas.charter.roles import RoleSettings
from clapas.config import AuthSettings, CharterSettings, Settings
from clapas.pipeline.ingest import Pipeline
from clapas.store.alerts import AlertChange
from clapas.store.duckdb import DuckDBStore
from tests.helpers import up_event

AUDIT = "/api/v1/audit"
INGEST = "/api/v1/ingest/chirpstack?event=up"
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


class City:
    def __init__(self, tmp_path: Path, settings: Settings | None = None) -> None:
        self.store = DuckDBStore(f"duckdb:///{tmp_path / 'city.duckdb'}")
        self.pipeline = Pipeline(self.store)
        self.app = create_app(self.store, settings or Settings(auth=AuthSettings(key_cache_s=0)), self.pipeline)

    def key(self, name: str, role: str = "", **kw) -> str:
        k = new_key()
        self.store.create_key(key_id=k.key_id, name=name, secret_hash=k.hash, role=role, **kw)
        return k.token

    def audit(self) -> list[dict]:
        self.app.state.access.audit.flush()
        return self.store.audit_entries(limit=1000)[::-1]

    def close(self) -> None:
        self.pipeline.close()
        self.store.close()


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    c = City(tmp_path)
    yield c
    c.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(r) -> str:
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == r.status_code
    return body["error"]["message"]


def test_keys_open_what_their_role_holds(city: City) -> None:
    dpo, partner = city.key("dpo-office", "dpo"), city.key("labo", "partner")
    with TestClient(city.app) as c:
        r = c.get(AUDIT)
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="clapas"'
        assert "audit:read" in error_of(r)
        assert c.get(AUDIT, headers=bearer(dpo)).status_code == 200
        assert c.get(AUDIT, headers={"X-API-Key": dpo}).status_code == 200  # Kong-style key header
        assert c.get(AUDIT, headers={"apikey": dpo}).status_code == 200
        r = c.get(AUDIT, headers=bearer(partner))
        assert r.status_code == 403 and "lacks the scopes personal:read and audit:read" in error_of(r)
        assert "www-authenticate" not in r.headers
        # a bad credential is refused, never taken as anonymous, even on an open route
        for headers in (bearer(dpo[:-2] + "xx"), bearer("clapas_0123456789ab_nope"), bearer("a.b.c"),
                        {"Authorization": "Basic dXNlcjpwdw=="}, {"X-API-Key": "whatever"}):
            r = c.get("/api/v1/quantities", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"].startswith('Bearer realm="clapas", error="invalid_token"')
        assert c.get("/api/v1/quantities").status_code == 200  # anonymous: open read


def test_revoked_expired_and_rotated_keys(city: City) -> None:
    token = city.key("labo", "dpo")
    expired = city.key("old", "dpo", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    key_id = token.split("_")[1]
    with TestClient(city.app) as c:
        assert c.get(AUDIT, headers=bearer(token)).status_code == 200
        r = c.get(AUDIT, headers=bearer(expired))
        assert r.status_code == 401 and error_of(r) == "this key has expired"
        # rotation: the old secret works during the grace period, the new one at once
        fresh = new_key(key_id)
        city.store.rotate_key(key_id, fresh.hash, datetime.now(UTC) + timedelta(hours=1))
        assert c.get(AUDIT, headers=bearer(token)).status_code == 200
        assert c.get(AUDIT, headers=bearer(fresh.token)).status_code == 200
        newer = new_key(key_id)
        city.store.rotate_key(key_id, newer.hash, None)  # no grace: the previous secret stops now
        assert c.get(AUDIT, headers=bearer(fresh.token)).status_code == 401
        assert c.get(AUDIT, headers=bearer(newer.token)).status_code == 200
        city.store.revoke_key(key_id)
        r = c.get(AUDIT, headers=bearer(newer.token))
        assert r.status_code == 401 and error_of(r) == "this key has been revoked"
    refused = [e for e in city.audit() if e["status"] == 401]
    assert [e["key_id"] for e in refused][-1] == key_id and refused[-1]["actor"] == "labo"


def test_ingest_refused_without_the_scope_journals_nothing(city: City, samples: Path) -> None:
    ingest, partner = city.key("chirpstack", "ingest"), city.key("labo", "partner")
    body = json.dumps(up_event(samples, eui="0101010101010101")).encode()
    with TestClient(city.app) as c:
        r = c.post(INGEST, content=body)
        assert r.status_code == 401 and "ingest:write" in error_of(r)
        assert c.post(INGEST, content=body, headers=bearer(partner)).status_code == 403
        city.pipeline.flush()
        assert city.pipeline.drain(10)
        assert sum(v for k, v in city.store.counts().items() if k != "observations") == 0
        assert c.post(INGEST, content=body, headers=bearer(ingest)).status_code == 200
        city.pipeline.flush()
        assert city.pipeline.drain(10)
        assert city.store.counts()["stored"] + city.store.counts()["quarantined"] == 1
    events = [(e["event"], e["status"], e["route"]) for e in city.audit()]
    assert events == [("refused", 401, "/api/v1/ingest/chirpstack"), ("refused", 403, "/api/v1/ingest/chirpstack"),
                      ("write", 200, "/api/v1/ingest/chirpstack")]


def test_alert_actions_need_alerts_write_and_change_nothing_when_refused(city: City) -> None:
    city.store.apply_alert_changes([AlertChange("water.burst", "0101010101010101", "open", T0, "major", {}, "",
                                                "device", "ecusson")])
    operator, partner = city.key("water-service", "operator-water"), city.key("labo", "partner")
    with TestClient(city.app) as c:
        for path, body in (("/api/v1/alerts/1/ack", None), ("/api/v1/alerts/1/resolve", None),
                           ("/api/v1/alerts/1/comments", {"author": "x", "text": "hello"})):
            assert c.post(path, json=body).status_code == 401
            assert c.post(path, json=body, headers=bearer(partner)).status_code == 403
        a = city.store.alert(1)
        assert a["state"] == "open" and [e["kind"] for e in a["events"]] == ["opened"]
        assert c.post("/api/v1/alerts/1/ack", headers=bearer(operator)).status_code == 200
    assert city.store.alert(1)["state"] == "acknowledged"
    writes = [e for e in city.audit() if e["event"] == "write"]
    assert [(w["actor"], w["route"], w["status"]) for w in writes] == [
        ("water-service", "/api/v1/alerts/{alert_id}/ack", 200)]


def test_rate_limits_per_key_and_per_client_address(tmp_path: Path) -> None:
    roles = {"public": RoleSettings(scopes=["open:read"], rate_per_minute=2, rate_per_day=100)}
    city = City(tmp_path, Settings(charter=CharterSettings(roles=roles), auth=AuthSettings(key_cache_s=0)))
    token = city.key("labo", "partner", rate_per_minute=3)
    try:
        with TestClient(city.app) as c:
            remaining = []
            for _ in range(3):
                r = c.get("/api/v1/quantities", headers=bearer(token))
                assert r.status_code == 200
                remaining.append(int(r.headers["x-ratelimit-remaining-minute"]))
                assert r.headers["x-ratelimit-limit-minute"] == "3"
                assert r.headers["ratelimit-limit"] == "3"  # the tighter window: the minute (the day's is 200,000)
            assert remaining == [2, 1, 0]
            r = c.get("/api/v1/quantities", headers=bearer(token))
            assert r.status_code == 429 and "rate limit exceeded" in error_of(r)
            assert 1 <= int(r.headers["retry-after"]) <= 60 and r.headers["ratelimit-remaining"] == "0"
            assert r.headers["x-ratelimit-remaining-day"] == "199997"
        # anonymous callers are counted per address: the role's 2 a minute, each
        with TestClient(city.app, client=("192.0.2.1", 5000)) as a, \
                TestClient(city.app, client=("192.0.2.2", 5000)) as b:
            assert [a.get("/api/v1/quantities").status_code for _ in range(3)] == [200, 200, 429]
            assert b.get("/api/v1/quantities").headers["x-ratelimit-remaining-day"] == "99"
        limited = [e for e in city.audit() if e["event"] == "rate_limited"]
        assert [(e["actor"], e["client"], e["status"]) for e in limited] == [
            ("labo", "testclient", 429), ("anonymous", "192.0.2.1", 429)]
    finally:
        city.close()


def test_rate_limits_can_be_left_to_the_gateway(tmp_path: Path) -> None:
    roles = {"public": RoleSettings(scopes=["open:read"], rate_per_minute=1)}
    city = City(tmp_path, Settings(charter=CharterSettings(roles=roles), auth=AuthSettings(rate_limits=False)))
    try:
        with TestClient(city.app) as c:
            rs = [c.get("/api/v1/quantities") for _ in range(3)]
        assert [r.status_code for r in rs] == [200] * 3 and "ratelimit-limit" not in rs[0].headers
    finally:
        city.close()


def test_anonymous_access_can_be_removed(tmp_path: Path) -> None:
    city = City(tmp_path, Settings(charter=CharterSettings(anonymous="")))
    token = city.key("anyone", "public")
    try:
        with TestClient(city.app) as c:
            assert c.get("/api/v1/quantities").status_code == 401
            assert c.get("/api/v1/quantities", headers=bearer(token)).status_code == 200
    finally:
        city.close()


def test_audit_records_reads_of_personal_data_not_open_ones(city: City) -> None:
    dpo = city.key("dpo-office", "dpo")
    with TestClient(city.app) as c:
        c.get("/api/v1/quantities", headers=bearer(dpo))  # open: not audited
        r = c.get(AUDIT, headers={**bearer(dpo), "X-Request-ID": "req-42"})
        assert r.headers["x-request-id"] == "req-42"
        assert c.get("/api/v1/quantities").headers["x-request-id"]  # one is made when the client sends none
        r = c.get(AUDIT, headers=bearer(dpo), params={"route": AUDIT})
        assert r.status_code == 200
    entries = city.audit()
    first = entries[0]
    assert (first["event"], first["route"], first["data_class"], first["request_id"]) == (
        "read", AUDIT, "personal", "req-42")
    assert len(entries) == 2 and entries[0]["row_count"] == 0 and entries[0]["key_id"] == dpo.split("_")[1]
    assert entries[0]["role"] == "dpo" and entries[0]["via"] == "key"
    assert city.store.verify_audit().ok
    with TestClient(city.app) as c:
        v = c.get(f"{AUDIT}/verify", headers=bearer(dpo)).json()
    assert v["ok"] and v["checked"] >= 2


def test_charter_off_serves_everyone_everything(tmp_path: Path) -> None:
    city = City(tmp_path, Settings(auth=AuthSettings(enforce=False)))
    try:
        with TestClient(city.app) as c:
            r = c.get(AUDIT)
        assert r.status_code == 200 and "x-request-id" not in r.headers
        assert city.audit() == []
    finally:
        city.close()


def test_the_secret_is_nowhere_in_the_store(city: City, samples: Path) -> None:
    token = city.key("chirpstack", "ingest")
    secret = token[len("clapas_") + 13:]  # after the key id (the secret itself may hold "_")
    assert len(secret) >= 40
    with TestClient(city.app) as c:
        body = json.dumps(up_event(samples, eui="0101010101010101")).encode()
        assert c.post(INGEST, content=body, headers=bearer(token)).status_code == 200
        assert c.post(INGEST, content=body, headers=bearer(token + "x")).status_code == 401
    city.pipeline.flush()
    city.audit()
    tables = city.store.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
    found = []
    for t in (r["table_name"] for r in tables):
        for row in city.store.sql(f'SELECT * FROM "{t}"'):
            text = msgspec.json.encode({k: (v.decode("latin-1") if isinstance(v, bytes) else str(v))
                                        for k, v in row.items()}).decode()
            if secret in text or token in text:
                found.append(t)
    assert found == [] and len(tables) > 10


def test_a_key_lookup_waiting_on_the_store_never_blocks_other_requests(city: City) -> None:
    """A key not remembered is looked up off the event loop: while the store hangs on it (a database outage),
    /healthz and anonymous reads still answer, and the keyed request completes once the store answers."""
    import asyncio
    import threading

    import httpx

    token = city.key("labo", "partner")
    release, entered = threading.Event(), threading.Event()
    lookup = city.store.key

    def hanging_key(key_id: str):
        entered.set()
        release.wait(10)
        return lookup(key_id)

    city.store.key = hanging_key  # type: ignore[method-assign]

    async def scenario() -> tuple[int, int, int, bool]:
        transport = httpx.ASGITransport(app=city.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://city") as c:
            keyed = asyncio.create_task(c.get("/api/v1/devices", headers=bearer(token)))
            while not entered.is_set():
                await asyncio.sleep(0.01)
            health = await asyncio.wait_for(c.get("/healthz"), 5)
            anonymous = await asyncio.wait_for(c.get("/api/v1/devices"), 5)
            pending = not keyed.done()
            release.set()
            return health.status_code, anonymous.status_code, (await keyed).status_code, pending

    health, anonymous, keyed, pending = asyncio.run(scenario())
    assert pending  # the keyed request was still waiting on its lookup while the others were answered
    assert health == 200 and anonymous == 200 and keyed == 200
