"""Subscription routes (§6.10–6.11) on both stores, as the charter's callers: create (201 + Location), list with
count, retrieve with status and counts, update (merge), delete; the spec's checks and errors; subscriptions are
their owner's only; a per-key limit; anonymous callers cannot subscribe. And `clapas run` wires it all: an uplink
through the service's pipeline reaches a subscriber."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter.keys import new_key
from clapas.config import AuthSettings, NgsiLdSettings, Settings
from clapas.service import Service
from clapas.store.base import Store
from clapas.store.duckdb import DuckDBStore
from tests.alerts.conftest import Hook, hook  # noqa: F401
from tests.api.city import STATION, STATION_TAGS, up_json

from .city.city_data import WS, fill

LINK = '<https://example.org/ngsi/clapas.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
CTX = '<http://localhost/ngsi-ld/contexts/clapas.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; ' \
      'type="application/ld+json"'


def subscription(**over: Any) -> dict[str, Any]:
    return {"type": "Subscription", "entities": [{"type": "WeatherObserved"}], "watchedAttributes": ["temperature"],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"},
                             "format": "keyValues", "attributes": ["temperature"]}, **over}


class Api:
    def __init__(self, client: TestClient, store: Store) -> None:
        self.client, self.tokens = client, {}
        for role in ("partner", "operator-water"):
            k = new_key()
            store.create_key(key_id=k.key_id, name=f"sub {role}", secret_hash=k.hash, role=role)
            self.tokens[role] = k.token

    def call(self, method: str, path: str, role: str | None = "partner", body: Any = None,
             **headers: str) -> Any:
        h = {"Link": CTX, **headers}
        if role:
            h["Authorization"] = f"Bearer {self.tokens[role]}"
        if body is not None:
            h.setdefault("Content-Type", "application/json")
            return self.client.request(method, path, content=json.dumps(body), headers=h)
        return self.client.request(method, path, headers=h)


@pytest.fixture(scope="module")
def api(ngsi_store: Store) -> Iterator[Api]:
    settings = Settings(auth=AuthSettings(rate_limits=False), ngsi_ld=NgsiLdSettings(max_subscriptions_per_key=3))
    with TestClient(create_app(ngsi_store, settings)) as client:
        yield Api(client, ngsi_store)


def test_create_retrieve_list_update_delete(api: Api) -> None:
    r = api.call("POST", "/ngsi-ld/v1/subscriptions", body=subscription(id="urn:ngsi-ld:Subscription:one"))
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:one"
    got = api.call("GET", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:one")
    assert got.status_code == 200
    body = got.json()
    assert body["id"] == "urn:ngsi-ld:Subscription:one" and body["status"] == "active" and body["isActive"]
    assert body["notification"]["timesSent"] == 0 and body["notification"]["status"] == "ok"
    assert body["watchedAttributes"] == ["temperature"]
    listed = api.call("GET", "/ngsi-ld/v1/subscriptions?count=true")
    assert listed.headers["NGSILD-Results-Count"] == "1" and [s["id"] for s in listed.json()] == [body["id"]]
    assert api.call("PATCH", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:one",
                    body={"isActive": False, "throttling": 60}).status_code == 204
    paused = api.call("GET", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:one").json()
    assert paused["status"] == "paused" and paused["throttling"] == 60 and paused["notification"]["format"] == \
        "keyValues"
    # another key neither sees nor changes it
    assert api.call("GET", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:one",
                    "operator-water").status_code == 404
    assert api.call("GET", "/ngsi-ld/v1/subscriptions", "operator-water").json() == []
    assert api.call("DELETE", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:one",
                    "operator-water").status_code == 404
    assert api.call("DELETE", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:one").status_code == 204
    assert api.call("GET", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:one").status_code == 404


@pytest.mark.parametrize(("change", "status", "kind"), [
    ({"type": "Subscripton"}, 400, "BadRequestData"),
    ({"entities": None, "watchedAttributes": None}, 400, "BadRequestData"),
    ({"entities": [{"id": "urn:x:1"}]}, 400, "BadRequestData"),  # no type
    ({"timeInterval": 120}, 400, "BadRequestData"),  # with watchedAttributes
    ({"watchedAttributes": None, "timeInterval": 5}, 400, "BadRequestData"),  # below the floor
    ({"q": "temperature>>"}, 400, "InvalidRequest"),
    ({"notification": {"endpoint": {"uri": "not a uri"}}}, 400, "BadRequestData"),
    ({"notification": {"endpoint": {"uri": "http://x/", "accept": "text/html"}}}, 400, "BadRequestData"),
    ({"id": "urn:ngsi-ld:Subscription:dup"}, 409, "AlreadyExists"),
    ({"notificationTrigger": ["entityMoved"]}, 400, "BadRequestData"),
    ({"notificationTrigger": []}, 400, "BadRequestData"),
    ({"notification": {"endpoint": {"uri": "http://x/"}, "showChanges": "yes"}}, 400, "BadRequestData"),
])
def test_the_specs_checks(api: Api, change: dict[str, Any], status: int, kind: str) -> None:
    if kind == "AlreadyExists":
        assert api.call("POST", "/ngsi-ld/v1/subscriptions", body=subscription(**change)).status_code == 201
    body = {k: v for k, v in subscription(**change).items() if v is not None}
    r = api.call("POST", "/ngsi-ld/v1/subscriptions", body=body)
    assert r.status_code == status and r.json()["type"].endswith(kind), r.text
    if kind == "AlreadyExists":
        api.call("DELETE", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:dup")


def test_media_types_anonymous_callers_and_the_per_key_limit(api: Api) -> None:
    assert api.call("POST", "/ngsi-ld/v1/subscriptions", body=subscription(),
                    **{"Content-Type": "text/plain"}).status_code == 415
    anonymous = api.call("POST", "/ngsi-ld/v1/subscriptions", None, body=subscription())
    assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
    made = [api.call("POST", "/ngsi-ld/v1/subscriptions", "operator-water", body=subscription()) for _ in range(4)]
    assert [r.status_code for r in made] == [201, 201, 201, 403]
    assert "max_subscriptions_per_key" in made[-1].json()["detail"]
    for r in made[:3]:
        assert api.call("DELETE", r.headers["Location"], "operator-water").status_code == 204


def test_ld_json_bodies_carry_their_context(api: Api) -> None:
    body = {**subscription(), "@context": "http://localhost/ngsi-ld/contexts/clapas.jsonld"}
    r = api.call("POST", "/ngsi-ld/v1/subscriptions", body=body, **{"Content-Type": "application/ld+json",
                                                                     "Link": ""})
    assert r.status_code == 201, r.text
    got = api.call("GET", r.headers["Location"], Accept="application/ld+json").json()
    assert got["@context"] and got["entities"] == [{"type": "WeatherObserved"}]
    api.call("DELETE", r.headers["Location"])


def test_clapas_run_notifies_a_subscriber(samples: Path, tmp_path: Path, hook: Hook) -> None:  # noqa: F811
    store = DuckDBStore(f"duckdb:///{tmp_path}/run.duckdb")
    fill(store)
    settings = msgspec.structs.replace(Settings(), store=store.url)
    settings.alerts.enabled = False
    settings.alerts.poll_interval_s = 0.2
    service = Service(settings, store=store)
    with TestClient(create_app(store, settings, service.pipeline)) as client:
        api = Api(client, store)
        sub = subscription(notification={"endpoint": {"uri": hook.url}})
        assert api.call("POST", "/ngsi-ld/v1/subscriptions", body=sub).status_code == 201

    async def main() -> float:
        stop = asyncio.Event()
        run = asyncio.create_task(service.serve(http=False, stop=stop))
        await asyncio.sleep(0.2)
        from clapas.connectors import chirpstack
        from clapas.simulator.encoders import cayenne_lpp

        _, payload = cayenne_lpp({"air.temperature": 33.0})
        raw = up_json(samples, STATION, payload, datetime.now(UTC), tags=STATION_TAGS)
        service.pipeline.submit(chirpstack.message(raw, datetime.now(UTC), event="up"))
        await asyncio.to_thread(service.pipeline.drain, 10)
        committed = time.monotonic()
        while not hook.answered_ok and time.monotonic() - committed < 5:
            await asyncio.sleep(0.01)
        latency = time.monotonic() - committed
        stop.set()
        await run
        return latency

    assert asyncio.run(main()) < 2.0
    [e] = json.loads(hook.answered_ok[0])["data"]
    assert e["id"] == f"urn:ngsi-ld:WeatherObserved:{STATION}" and e["temperature"]["value"] == 33.0
    assert WS != STATION


def test_sandbox_writes_notify_the_sandboxs_subscriptions(client: TestClient, hook: Hook) -> None:  # noqa: F811
    """The writable sandbox (a conformance suite's tenant): a change of a watched attribute is notified, with the
    subscription's format and attributes; a change of another attribute is not."""
    from clapas.alerts.notifiers.ngsi_ld import NgsiLdNotifier
    from clapas.alerts.outbox import OutboxWorker
    from clapas.api.ngsi_ld.matching import attach, for_service
    from clapas.config import AlertSettings

    from .conftest import create, uid, vehicle

    store = client.app.state.store
    matcher = for_service(client.app.state.settings, store)
    attach(client.app, matcher)
    sub = {"type": "Subscription", "entities": [{"type": "Vehicle"}], "watchedAttributes": ["speed"],
           "notification": {"endpoint": {"uri": hook.url}, "format": "keyValues", "attributes": ["speed"]}}
    r = client.post("/ngsi-ld/v1/subscriptions", json=sub)
    assert r.status_code == 201, r.text
    eid = uid()
    create(client, vehicle(eid, speed=50))
    assert client.patch(f"/ngsi-ld/v1/entities/{eid}/attrs", json={"location": {
        "type": "GeoProperty", "value": {"type": "Point", "coordinates": [3.9, 43.6]}}}).status_code == 204
    items = []
    while not matcher._queue.empty():
        items.append(matcher._queue.get_nowait())
    assert matcher.round(items) == 1  # the creation; the location change watches nothing
    worker = OutboxWorker(store, {"ngsi-ld": NgsiLdNotifier(store, 5.0)}, AlertSettings())

    async def deliver() -> None:
        await worker.run_once()
        await worker.close()

    asyncio.run(deliver())
    [body] = [json.loads(b) for b in hook.answered_ok]
    assert body["data"] == [{"id": eid, "type": "Vehicle", "speed": 50}]
    client.delete(r.headers["Location"])
