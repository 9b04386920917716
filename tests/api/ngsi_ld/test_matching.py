"""The subscription matching engine on both stores (`Matcher.round`), and end to end: a ChirpStack uplink through
the real pipeline, the after-commit hook, the matcher, the outbox and the NGSI-LD notifier, to an HTTP receiver
within 2 s; a revoked key's subscription stops within one delivery."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from clapas.alerts.notifiers.ngsi_ld import NgsiLdNotifier
from clapas.alerts.outbox import OutboxWorker
from clapas.api.identity import KeyCheck
from clapas.api.ngsi_ld.city.context import expand
from clapas.api.ngsi_ld.city.source import CitySource
from clapas.api.ngsi_ld.matching import CITY, Matcher, key_subscriber
from clapas.charter.keys import new_key
from clapas.charter.roles import effective_roles
from clapas.config import AlertSettings
from clapas.model import QUANTITY_BY_KEY
from clapas.pipeline.ingest import Pipeline
from clapas.store.base import Store, open_store
from tests.alerts.conftest import Hook, hook  # noqa: F401  (the local HTTP receiver)
from tests.api.city import STATION, STATION_TAGS, submit, up_json

from .city.city_data import HOME, WS, fill

TEMP, VOLUME = QUANTITY_BY_KEY["air.temperature"].id, QUANTITY_BY_KEY["water.volume"].id


def key(store: Store, role: str) -> str:
    k = new_key()
    store.create_key(key_id=k.key_id, name=f"ngsi {role}", secret_hash=k.hash, role=role)
    return k.key_id


def subscribe(store: Store, owner_key: str | None, **spec: Any) -> str:
    sub_id = f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
    spec.setdefault("endpoint", "http://127.0.0.1:9/never")
    store.create_subscription(sub_id, body={"type": "Subscription"}, spec=spec, owner_key=owner_key,
                              owner="test")
    return sub_id


def matcher_for(store: Store, **kw: Any) -> Matcher:
    keys = KeyCheck(store, effective_roles({}), 0.0)
    return Matcher(store, {CITY: CitySource(store)}, key_subscriber(keys), **kw)


def queued(store: Store, sub_id: str) -> list[dict[str, Any]]:
    return [n["payload"] for n in store.notifications(limit=1000) if n["payload"].get("subscription") == sub_id]


def test_a_batch_notifies_the_subscriptions_it_concerns(ngsi_store: Store) -> None:
    store = ngsi_store
    partner, water = key(store, "partner"), key(store, "operator-water")
    weather = subscribe(store, partner, entities=[{"type": expand("WeatherObserved")}],
                        watched=[expand("temperature")])
    wind = subscribe(store, partner, entities=[{"type": expand("WeatherObserved")}], watched=[expand("windSpeed")])
    meters = subscribe(store, partner, entities=[{"id_pattern": "urn:ngsi-ld:WaterConsumptionObserved:.*"}])
    meters_water = subscribe(store, water, entities=[{"type": expand("WaterConsumptionObserved")}])
    m = matcher_for(store)
    assert m.round([(CITY, {WS: {TEMP}, HOME: {VOLUME}})]) == 2
    [n] = queued(store, weather)
    body = n["notification"]
    assert body["type"] == "Notification" and body["subscriptionId"] == weather
    assert body["id"].startswith("urn:ngsi-ld:Notification:") and body["notifiedAt"].endswith("Z")
    assert [e["id"] for e in body["data"]] == [f"urn:ngsi-ld:WeatherObserved:{WS}"]  # not its Device entity
    assert body["data"][0]["temperature"]["unitCode"] == "CEL" and n["class"] == "open"
    assert queued(store, wind) == []  # wind did not change
    assert queued(store, meters) == []  # a partner never learns of a dwelling's meter
    [home] = queued(store, meters_water)
    assert home["class"] == "personal" and home["notification"]["data"][0]["waterConsumption"]["value"] > 0
    for s in (weather, wind, meters, meters_water):
        store.delete_subscription(s)


def test_throttling_q_expiry_and_revocation(ngsi_store: Store) -> None:
    store = ngsi_store
    partner = key(store, "partner")
    throttled = subscribe(store, partner, entities=[{"id": f"urn:ngsi-ld:WeatherObserved:{WS}"}],
                          throttling_s=3600.0, format="keyValues", attrs=[expand("temperature")])
    hot = subscribe(store, partner, entities=[{"type": expand("WeatherObserved")}], q="temperature>100")
    expiring = subscribe(store, partner, entities=[{"type": expand("WeatherObserved")}])
    store.update_subscription(expiring, body={}, spec=store.subscription(expiring)["spec"], active=True,
                              expires_at=datetime.now(UTC) - timedelta(seconds=1))

    def q_filter(q: str, entity: dict[str, Any], context: Any) -> bool:
        name, limit = q.split(">")
        return entity[expand(name)]["value"] > float(limit)

    m = matcher_for(store, q_filter=q_filter)
    assert m.round([(CITY, {WS: {TEMP}})]) == 1
    [n] = queued(store, throttled)
    assert n["notification"]["data"][0] == {"id": f"urn:ngsi-ld:WeatherObserved:{WS}", "type": "WeatherObserved",
                                            "scope": ["/open"], "temperature": n["notification"]["data"][0][
                                                "temperature"]}
    assert isinstance(n["notification"]["data"][0]["temperature"], float)  # keyValues
    assert queued(store, hot) == []
    assert store.subscription(expiring)["status"] == "expired"
    assert m.round([(CITY, {WS: {TEMP}})]) == 0  # throttled, and the others still do not match
    store.revoke_key(partner)
    store.update_subscription(throttled, body={}, spec={**store.subscription(throttled)["spec"], "throttling_s": 0},
                              active=True, expires_at=None)
    assert m.round([(CITY, {WS: {TEMP}})]) == 0
    assert store.subscription(throttled)["status"] == "paused" and not store.subscription(throttled)["active"]
    for s in (throttled, hot, expiring):
        store.delete_subscription(s)


def test_periodic_subscriptions_are_notified_when_due(ngsi_store: Store) -> None:
    store = ngsi_store
    sub = subscribe(store, key(store, "partner"), entities=[{"type": expand("WeatherObserved")}],
                    time_interval_s=60.0)
    m = matcher_for(store)
    assert m.round([], periodic=True) == 1 and len(queued(store, sub)) == 1
    assert "triggerReason" not in queued(store, sub)[0]["notification"]  # no change fired it
    assert m.round([], periodic=True) == 0  # not due again for a minute
    assert m.round([], periodic=True, now=datetime.now(UTC) + timedelta(seconds=61)) == 1
    assert m.round([(CITY, {WS: {TEMP}})]) == 0  # periodic ones are not notified on change
    store.delete_subscription(sub)


VEHICLE, SPEED, COLOUR = "https://example.org/Vehicle", "https://example.org/speed", "https://example.org/colour"


def _vehicle(eid: str, **attrs: Any) -> dict[str, Any]:
    return {"id": eid, "type": VEHICLE, **{
        {"speed": SPEED, "colour": COLOUR}[k]: {"type": "Property", "value": v} for k, v in attrs.items()}}


def vehicle_subscription(store: Store, **spec: Any) -> str:
    """A subscription of the writable tenant `play` to its vehicles (`spec` as the store keeps it); its id."""
    sub_id = f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
    store.create_subscription(sub_id, body={"type": "Subscription"}, tenant="play", owner="local", spec={
        "endpoint": "http://127.0.0.1:9/never", "entities": [{"type": VEHICLE}], **spec})
    return sub_id


def test_notification_triggers_and_show_changes(ngsi_store: Store) -> None:
    """A writable tenant's writes as the kinds of change notificationTrigger names (§5.2.12): which subscription
    each notifies, a deleted entity's id, type and deletedAt, and showChanges' previousValue."""
    store = ngsi_store

    sub = partial(vehicle_subscription, store)

    subs = {"default": sub(), "created": sub(triggers=["entityCreated"]), "deleted": sub(triggers=["entityDeleted"]),
            "speed_updated": sub(triggers=["attributeUpdated"], watched=[SPEED], show_changes=True),
            "attr_deleted": sub(triggers=["attributeDeleted"]),
            "entity_updated_speed": sub(triggers=["entityUpdated"], watched=[SPEED])}
    m = matcher_for(store)
    eid = f"urn:ngsi-ld:Vehicle:{uuid.uuid4().hex[:8]}"
    seen = dict.fromkeys(subs, 0)

    def write(before: dict[str, Any] | None, after: dict[str, Any] | None) -> set[str]:
        """The subscriptions one write notifies."""
        m.listener("play", before, after)
        if not m._queue.empty():
            m.round([m._queue.get_nowait()])
        out = set()
        for name, sub_id in subs.items():
            n = len(queued(store, sub_id))
            if n > seen[name]:
                out.add(name)
            seen[name] = n
        return out

    v1, v2 = _vehicle(eid, speed=50, colour="red"), _vehicle(eid, speed=60, colour="red")
    v3, v4 = _vehicle(eid, speed=60, colour="blue"), _vehicle(eid, colour="blue")
    assert write(None, v1) == {"default", "created"}  # a creation: its attributes created
    assert write(v1, v2) == {"default", "speed_updated", "entity_updated_speed"}
    [*_, n] = queued(store, subs["speed_updated"])
    # (the engine's own compaction here: the clapas context, which leaves these IRIs whole)
    assert n["notification"]["data"][0][SPEED] == {"type": "Property", "value": 60, "previousValue": 50}
    assert "previousValue" not in json.dumps(queued(store, subs["default"]))  # showChanges is the subscription's
    assert write(v2, v3) == {"default"}  # colour: not watched by the others
    assert write(v3, v3) == set()  # nothing changed
    assert write(v3, v4) == {"attr_deleted", "entity_updated_speed"}  # speed deleted
    assert write(v4, None) == {"deleted"}
    [n] = queued(store, subs["deleted"])
    [gone] = n["notification"]["data"]
    assert gone["id"] == eid and gone["type"] == VEHICLE and gone["deletedAt"].endswith("Z")
    assert set(gone) == {"id", "type", "deletedAt"}
    for sub_id in subs.values():
        store.delete_subscription(sub_id)


def test_notifications_say_their_trigger_reason(ngsi_store: Store) -> None:
    """v1.8 triggerReason: each notification names the notificationTrigger that fired it, consistent with what the
    subscription asked; changes of one round that fire different triggers go in one notification per reason."""
    store = ngsi_store

    sub = partial(vehicle_subscription, store)

    subs = {"default": sub(), "all": sub(triggers=["attributeDeleted", "attributeUpdated", "entityCreated",
                                                   "entityDeleted"]),
            "entity": sub(triggers=["entityUpdated", "attributeUpdated"])}
    m = matcher_for(store)
    a, b = (f"urn:ngsi-ld:Vehicle:{uuid.uuid4().hex[:8]}" for _ in range(2))

    def reasons(*writes: tuple[Any, Any]) -> dict[str, list[tuple[str, list[str]]]]:
        """One round of these writes: per subscription, the (triggerReason, entity ids) of each new notification."""
        before = {n["notification"]["id"] for s in subs.values() for n in queued(store, s)}
        for w in writes:
            m.listener("play", *w)
        m.round([m._queue.get_nowait() for _ in writes])
        return {name: sorted((n["notification"]["triggerReason"], [e["id"] for e in n["notification"]["data"]])
                             for n in queued(store, s) if n["notification"]["id"] not in before)
                for name, s in subs.items()}

    assert reasons((None, _vehicle(a, speed=1)), (None, _vehicle(b, speed=2))) == {
        "default": [("attributeCreated", [a, b])], "all": [("entityCreated", [a, b])], "entity": []}
    got = reasons((_vehicle(a, speed=1), _vehicle(a, speed=5)), (_vehicle(b, speed=2), _vehicle(b)))
    assert got == {"default": [("attributeUpdated", [a])],
                   "all": [("attributeDeleted", [b]), ("attributeUpdated", [a])],
                   "entity": [("entityUpdated", [a, b])]}  # the entity's own trigger before its attributes'
    assert reasons((_vehicle(a, speed=5), None)) == {"default": [], "all": [("entityDeleted", [a])], "entity": []}
    for sub_id in subs.values():
        store.delete_subscription(sub_id)


def test_the_citys_batches_are_attribute_updates(ngsi_store: Store) -> None:
    """A batch of the city changes attributes of entities that exist: attributeUpdated (and entityUpdated) notify,
    entityCreated does not."""
    store = ngsi_store
    partner = key(store, "partner")
    updated = subscribe(store, partner, entities=[{"type": expand("WeatherObserved")}], triggers=["entityUpdated"])
    created = subscribe(store, partner, entities=[{"type": expand("WeatherObserved")}], triggers=["entityCreated"])
    default = subscribe(store, partner, entities=[{"type": expand("WeatherObserved")}])
    assert matcher_for(store).round([(CITY, {WS: {TEMP}})]) == 2
    assert len(queued(store, updated)) == 1 and queued(store, created) == []
    assert queued(store, updated)[0]["notification"]["triggerReason"] == "entityUpdated"
    assert queued(store, default)[0]["notification"]["triggerReason"] == "attributeUpdated"
    store.delete_subscription(default)
    for s in (updated, created):
        store.delete_subscription(s)


def _wait(predicate: Any, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
async def test_end_to_end_through_the_pipeline(kind: str, samples: Path, tmp_path: Path, hook: Hook,  # noqa: F811
                                               request: pytest.FixtureRequest) -> None:
    url = f"duckdb:///{tmp_path}/e2e.duckdb" if kind == "duckdb" else request.getfixturevalue("pg_url")
    store = open_store(url)
    fill(store)
    partner = key(store, "partner")
    sub = subscribe(store, partner, endpoint=hook.url, entities=[{"type": expand("WeatherObserved")}],
                    watched=[expand("temperature")], context=["https://example.org/ctx.jsonld"])
    m = matcher_for(store)
    m.start()
    pipeline = Pipeline(store, on_commit=m.on_commit)
    worker = OutboxWorker(store, {"ngsi-ld": NgsiLdNotifier(store, 5.0)}, AlertSettings(poll_interval_s=0.2))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        from clapas.simulator.encoders import cayenne_lpp

        _, payload = cayenne_lpp({"air.temperature": 31.5, "air.humidity": 40.0})
        submit(pipeline, up_json(samples, STATION, payload, datetime.now(UTC), tags=STATION_TAGS))
        await asyncio.to_thread(pipeline.drain, 10)
        committed = time.monotonic()
        await asyncio.to_thread(_wait, lambda: hook.answered_ok, 5.0)
        latency = time.monotonic() - committed
        assert latency < 2.0, latency
        headers, data = hook.requests[0]
        body = json.loads(data)
        assert body["type"] == "Notification" and body["subscriptionId"] == sub
        assert body["triggerReason"] == "attributeUpdated"  # the default triggers: an attribute updated
        [e] = body["data"]
        assert e["id"] == f"urn:ngsi-ld:WeatherObserved:{STATION}" and e["temperature"]["value"] == 31.5
        assert headers["Content-Type"] == "application/json"
        assert headers["Link"].startswith("<https://example.org/ctx.jsonld>")
        await asyncio.to_thread(_wait, lambda: store.subscription(sub)["times_sent"] == 1, 5.0)
        # the key is revoked: the notification already queued is not sent, and nothing more is queued
        m.stop()
        _, payload = cayenne_lpp({"air.temperature": 32.0})
        submit(pipeline, up_json(samples, STATION, payload, datetime.now(UTC), f_cnt=2, tags=STATION_TAGS))
        await asyncio.to_thread(pipeline.drain, 10)
        assert m.round([(CITY, {STATION: {TEMP}})]) == 1
        store.revoke_key(partner)
        await asyncio.to_thread(_wait, lambda: any(n["status"] == "dead" for n in store.notifications(limit=10)),
                                5.0)
        dead = [n for n in store.notifications(limit=10) if n["status"] == "dead"]
        assert "revoked" in dead[0]["last_error"] and len(hook.requests) == 1
        assert store.subscription(sub)["status"] == "paused"
        assert m.round([(CITY, {STATION: {TEMP}})]) == 0
    finally:
        stop.set()
        await task
        m.stop()
        pipeline.close()
        store.close()
