"""NGSI-LD subscriptions in both stores: create, list, count per key, update, delete; their notifications in the
alerts' outbox, in order per subscription, with the delivery counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from clapas.store.base import Store, open_store
from clapas.store.ngsi_subscriptions import NOTIFIER

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPEC = {"endpoint": "http://127.0.0.1:9/notify", "watched": ["https://smartdatamodels.org/x/temperature"]}


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    url = f"duckdb:///{tmp_path}/s.duckdb" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    s = open_store(url)
    yield s
    s.close()


def test_subscription_lifecycle(store: Store) -> None:
    a = store.create_subscription("urn:ngsi-ld:Subscription:a", body={"type": "Subscription"}, spec=SPEC,
                                  owner_key="k1", owner="partner", now=T0)
    store.create_subscription("urn:ngsi-ld:Subscription:b", body={}, spec=SPEC, owner_key="k1", active=False,
                              expires_at=T0 + timedelta(days=1))
    store.create_subscription("urn:ngsi-ld:Subscription:c", body={}, spec=SPEC, owner="someone",
                              owner_scopes=["open:read"])
    assert a["spec"] == SPEC and a["active"] is True and a["status"] == "active" and a["times_sent"] == 0
    assert a["created_at"] == T0 and a["owner_key"] == "k1"
    assert [s["id"][-1] for s in store.subscriptions()] == ["a", "b", "c"]
    assert [s["id"][-1] for s in store.subscriptions(active=True)] == ["a", "c"]
    assert store.count_subscriptions("k1") == 2 and store.count_subscriptions(None, "someone") == 1
    assert store.subscription("urn:ngsi-ld:Subscription:c")["owner_scopes"] == ["open:read"]
    b = store.update_subscription("urn:ngsi-ld:Subscription:b", body={"q": "x"}, spec={**SPEC, "q": "x"},
                                  active=True, expires_at=None)
    assert b["active"] is True and b["spec"]["q"] == "x" and b["expires_at"] is None
    assert store.delete_subscription("urn:ngsi-ld:Subscription:b") is True
    assert store.delete_subscription("urn:ngsi-ld:Subscription:b") is False
    assert store.subscription("urn:ngsi-ld:Subscription:b") is None


def test_notifications_go_through_the_outbox_in_order_per_subscription(store: Store) -> None:
    for s in ("a", "b"):
        store.create_subscription(f"urn:ngsi-ld:Subscription:{s}", body={}, spec=SPEC, owner_key="k1")
    n = store.queue_notifications([("urn:ngsi-ld:Subscription:a", {"n": 1}), ("urn:ngsi-ld:Subscription:b", {"n": 2}),
                                   ("urn:ngsi-ld:Subscription:a", {"n": 3}),
                                   ("urn:ngsi-ld:Subscription:gone", {"n": 4})], now=T0)
    assert n == 3
    assert store.subscription("urn:ngsi-ld:Subscription:a")["last_notification"] == T0
    claimed = store.claim_notifications(10, now=T0)
    # one pending row per subscription at a time: a's second waits for its first
    assert sorted(r["payload"]["n"] for r in claimed) == [1, 2] and {r["notifier"] for r in claimed} == {NOTIFIER}
    first = next(r for r in claimed if r["payload"]["n"] == 1)
    store.notification_delivered(first["id"])
    store.subscription_delivered("urn:ngsi-ld:Subscription:a", True, now=T0)
    store.subscription_delivered("urn:ngsi-ld:Subscription:a", False, "refused", now=T0 + timedelta(seconds=1))
    assert [r["payload"]["n"] for r in store.claim_notifications(10, now=T0 + timedelta(hours=1))] == [3, 2]
    a = store.subscription("urn:ngsi-ld:Subscription:a")
    assert (a["times_sent"], a["times_failed"], a["last_error"]) == (1, 1, "refused")
    assert a["last_success"] == T0 and a["last_failure"] == T0 + timedelta(seconds=1)
    # deleting a subscription drops what it still had pending, keeps what was delivered
    assert store.delete_subscription("urn:ngsi-ld:Subscription:a")
    left = {(r["payload"]["n"], r["status"]) for r in store.notifications(limit=10)}
    assert left == {(1, "delivered"), (2, "pending")}

