"""The NGSI-LD notifier (`clapas.alerts.notifiers.ngsi_ld`) through the outbox: HTTP with the context as the
subscriber asked (Link header or `@context` in an ld+json body, receiverInfo headers), MQTT (the spec's
metadata/body message, QoS 1), retries counted on the subscription, a refused endpoint and a revoked key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from clapas.alerts.notifiers.ngsi_ld import NgsiLdNotifier, request_of
from clapas.alerts.outbox import OutboxWorker
from clapas.charter.keys import new_key
from clapas.config import AlertSettings
from clapas.store.duckdb import DuckDBStore

from .conftest import Hook, Subscriber

SUB = "urn:ngsi-ld:Subscription:n1"


def notification() -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:Notification:1", "type": "Notification", "subscriptionId": SUB,
            "notifiedAt": "2026-03-01T12:00:00Z", "data": [{"id": "urn:ngsi-ld:X:1", "type": "X"}]}


def payload(endpoint: str, key: str | None, **over: Any) -> dict[str, Any]:
    return {"ngsi_ld": True, "class": "open", "subscription": SUB, "owner_key": key, "endpoint": endpoint,
            "accept": "application/json", "receiver_info": {}, "context": None, "notification": notification(),
            **over}


def setup(tmp_path: Any, endpoint: str, **over: Any) -> tuple[DuckDBStore, str, OutboxWorker]:
    store = DuckDBStore(f"duckdb:///{tmp_path}/n.duckdb")
    k = new_key()
    store.create_key(key_id=k.key_id, name="partner", secret_hash=k.hash, role="partner")
    store.create_subscription(SUB, body={}, spec={"endpoint": endpoint}, owner_key=k.key_id)
    store.queue_notifications([(SUB, payload(endpoint, k.key_id, **over))])
    worker = OutboxWorker(store, {"ngsi-ld": NgsiLdNotifier(store, 5.0)}, AlertSettings(retry_base_s=0.01))
    return store, k.key_id, worker


def test_the_request_carries_the_context_as_asked() -> None:
    data, headers = request_of(payload("http://x/", None, context="https://example.org/c.jsonld",
                                       receiver_info={"X-Token": "t", "Content-Type": "text/plain"}))
    assert headers["Content-Type"] == "application/json" and headers["X-Token"] == "t"
    assert headers["Link"].startswith("<https://example.org/c.jsonld>") and "@context" not in json.loads(data)
    data, headers = request_of(payload("http://x/", None, accept="application/ld+json", context=["a", "b"]))
    assert headers["Content-Type"] == "application/ld+json" and json.loads(data)["@context"] == ["a", "b"]


async def test_http_delivery_after_a_failure_is_counted(tmp_path: Any, hook: Hook) -> None:
    hook.fail_first = 1
    store, _, worker = setup(tmp_path, hook.url, receiver_info={"X-Token": "t"})
    assert await worker.run_once() == 1  # fails (500), retried
    store._con.execute("UPDATE notifications SET next_at = now()")
    assert await worker.run_once() == 1
    await worker.close()
    assert json.loads(hook.answered_ok[0])["subscriptionId"] == SUB
    assert hook.requests[1][0]["X-Token"] == "t"
    s = store.subscription(SUB)
    assert (s["times_sent"], s["times_failed"]) == (1, 1) and "500" in s["last_error"]
    store.close()


async def test_mqtt_delivery(tmp_path: Any, subscriber: Subscriber, mqtt_url: str) -> None:
    endpoint = f"{mqtt_url}/{subscriber.prefix}/notifications"
    store, _, worker = setup(tmp_path, endpoint)
    assert await worker.run_once() == 1
    await worker.close()
    [(topic, message)] = subscriber.wait(1)
    doc = json.loads(message)
    assert topic == f"{subscriber.prefix}/notifications" and doc["body"]["subscriptionId"] == SUB
    assert doc["metadata"]["Content-Type"] == "application/json"
    assert [n["status"] for n in store.notifications()] == ["delivered"]
    store.close()


async def test_revoked_key_and_bad_endpoints_are_dead_letters_at_once(tmp_path: Any, hook: Hook) -> None:
    store, key, worker = setup(tmp_path, hook.url)
    store.revoke_key(key, datetime.now(UTC))
    assert await worker.run_once() == 1
    [n] = store.notifications()
    assert n["status"] == "dead" and n["attempts"] == 1 and "revoked" in n["last_error"] and hook.requests == []
    assert store.subscription(SUB)["status"] == "paused"
    store.queue_notifications([(SUB, payload("ftp://x/", None))])
    assert await worker.run_once() == 1
    assert "only http(s) and mqtt(s)" in store.notifications()[0]["last_error"]
    await worker.close()
    store.close()
