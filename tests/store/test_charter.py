"""API keys and the audit log in the store: one suite on both stores (fixtures of test_store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clapas.charter import audit
from clapas.charter.audit import AuditEntry, pseudonym
from clapas.charter.keys import matches, new_key, refusal
from clapas.store.base import Store
from clapas.store.keys import KeyNotFound
from tests.store import test_store as suite

make_store = suite.make_store
store = suite.store

NOW = datetime(2026, 6, 3, 9, tzinfo=UTC)


def read(eui: str, key_id: str = "k1", at: datetime = NOW, **kw) -> AuditEntry:
    return AuditEntry(audit.READ, "partner-a", "key", "partner", key_id, "10.0.0.9", "GET",
                      "/api/v1/devices/{eui}", "personal", 3, [eui], 200, "req-1", time=at, **kw)


def test_key_lifecycle(store: Store) -> None:
    k = new_key()
    row = store.create_key(key_id=k.key_id, name="labo", secret_hash=k.hash, role="partner", scopes=["metrics:read"],
                           expires_at=NOW + timedelta(days=30), rate_per_minute=10, note="university", now=NOW)
    assert (row["name"], row["role"], row["scopes"], row["rate_per_minute"], row["rate_per_day"]) == (
        "labo", "partner", ["metrics:read"], 10, None)
    assert row["created_at"] == NOW and row["expires_at"] == NOW + timedelta(days=30)
    assert matches(k.token, row, NOW) and not matches(k.token + "x", row, NOW)
    assert refusal(row, NOW) is None and refusal(row, NOW + timedelta(days=30)) == "this key has expired"
    assert store.find_key("labo")["id"] == k.key_id == store.find_key(k.key_id)["id"]
    # rotation: a new secret, the old one works during the grace period only
    k2 = new_key(k.key_id)
    row = store.rotate_key(k.key_id, k2.hash, NOW + timedelta(hours=1), now=NOW)
    assert matches(k2.token, row, NOW) and matches(k.token, row, NOW + timedelta(minutes=59))
    assert not matches(k.token, row, NOW + timedelta(hours=1))
    # revoked: refused, kept in the list of all keys, no longer found by name
    row = store.revoke_key(k.key_id, now=NOW)
    assert refusal(row, NOW) == "this key has been revoked" and row["previous_hash"] is None
    assert store.api_keys() == [] and [r["id"] for r in store.api_keys(include_revoked=True)] == [k.key_id]
    with pytest.raises(KeyNotFound):
        store.find_key("labo")
    with pytest.raises(KeyNotFound):
        store.rotate_key(k.key_id, new_key(k.key_id).hash, None)


def test_audit_chain_verifies_and_breaks_when_a_row_is_edited(store: Store) -> None:
    assert store.verify_audit().ok and store.verify_audit().checked == 0
    store.append_audit([read("a1"), read("b2", at=NOW + timedelta(seconds=1))])
    store.append_audit([read("a1", key_id="k2", at=NOW + timedelta(seconds=2))])
    v = store.verify_audit()
    assert v.ok and v.checked == 3
    [last, *_] = store.audit_entries()
    # devices are kept as pseudonyms keyed with the store's own secret: never the EUI, the same for any spelling
    secret = store.sql("SELECT secret FROM audit_secret")[0]["secret"]
    a1 = store.audit_pseudonym("A1")
    assert a1 == pseudonym(secret, "a1") != pseudonym("another store's secret", "a1") and len(a1) == 32
    assert last["id"] == 3 and last["subjects"] == [a1] and last["route"] == "/api/v1/devices/{eui}"
    assert store.sql("SELECT count(*) AS n FROM audit_log WHERE subjects LIKE '%\"a1\"%'")[0]["n"] == 0
    assert [e["id"] for e in store.audit_entries(subject="a1")] == [3, 1]
    assert [r["key_id"] for r in store.audit_readers("a1")] == ["k1", "k2"]
    assert store.audit_readers("a1")[0]["reads"] == 1 and store.audit_readers("zz") == []
    # someone edits a row in the database: the chain breaks there
    with store._alert_tx() as cur:
        cur.execute(store._q("UPDATE audit_log SET row_count = 0 WHERE id = ?"), [2])
    v = store.verify_audit()
    assert not v.ok and v.first_broken == 2 and "changed" in v.reason
    with store._alert_tx() as cur:
        cur.execute(store._q("UPDATE audit_log SET row_count = 3 WHERE id = ?"), [2])
    assert store.verify_audit().ok
    with store._alert_tx() as cur:  # deleting a row breaks it too
        cur.execute(store._q("DELETE FROM audit_log WHERE id = ?"), [2])
    assert store.verify_audit().first_broken == 3


def test_prune_keeps_the_chain_verifiable(store: Store) -> None:
    store.append_audit([read(f"d{i}", at=NOW + timedelta(days=i)) for i in range(5)])
    assert store.prune_audit(NOW + timedelta(days=3), now=NOW + timedelta(days=400)) == 3
    rows = store.audit_entries(limit=10)
    assert [r["id"] for r in rows] == [6, 5, 4] and rows[0]["event"] == audit.AUDIT_PRUNED
    assert rows[0]["detail"]["deleted"] == 3
    v = store.verify_audit()
    assert v.ok and v.checked == 3
    store.append_audit([read("d9", at=NOW + timedelta(days=401))])
    assert store.verify_audit().ok
    assert store.prune_audit(NOW) == 0  # nothing older
    with store._alert_tx() as cur:  # removing the oldest remaining entry is seen
        cur.execute(store._q("DELETE FROM audit_log WHERE id = ?"), [4])
    assert store.verify_audit().first_broken == 5


def test_audit_filters_and_no_two_writers_share_an_id(make_store) -> None:
    a, b = make_store(), make_store()
    if "duckdb" in a.url:  # one DuckDB file is one process's; the second store shares it in tests only
        b = a
    a.append_audit([read("a1")])
    b.append_audit([read("b2", key_id="k9")])
    a.append_audit([AuditEntry(audit.REFUSED, "anonymous", "anonymous", status=401, route="/api/v1/audit")])
    assert a.verify_audit().ok and a.verify_audit().checked == 3
    assert [r["status"] for r in a.audit_entries(event=audit.REFUSED)] == [401]
    assert [r["key_id"] for r in a.audit_entries(subject="b2")] == ["k9"]
    assert len(a.audit_entries(since=NOW + timedelta(seconds=1))) == 1
