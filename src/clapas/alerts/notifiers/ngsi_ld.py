"""NGSI-LD notifications (subscriptions of `/ngsi-ld/v1/subscriptions`), delivered by the alerts' outbox.

Each outbox row of the notifier `ngsi-ld` holds a Notification built by the matching engine
(`clapas.api.ngsi_ld.matching`) and where it goes. Before every attempt the subscriber's key is read again from the
store: a key revoked (or expired) since stops the delivery at once — the row goes to the dead letters with why,
never retried — and pauses the subscription; so a revoked key's subscription stops within one delivery. Over HTTP the
body is POSTed as the spec says (ETSI GS CIM 009 §5.3.1, §7.3): `application/json` with the context in a `Link`
header, or `application/ld+json` with `@context` in the body when the subscriber asked for it (`endpoint.accept`),
plus the subscriber's `receiverInfo` headers. Over MQTT (`mqtt://host:port/topic`, `mqtts://` with TLS: the
spec's MQTT binding, ETSI GS CIM 009 annex on MQTT notifications) the message is `{"metadata": {headers}, "body":
notification}`, published at QoS 1 and counted delivered once the broker acknowledges it (the alerts' MQTT client).
Each outcome is counted on the subscription (`timesSent`, `timesFailed`, `lastSuccess`, `lastFailure`).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import msgspec

from clapas import __version__
from clapas.alerts.notifiers import Undeliverable
from clapas.charter.keys import refusal
from clapas.config import AlertMqttSettings
from clapas.store.base import Store

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
_HOP_HEADERS = {"content-type", "content-length", "host", "link", "transfer-encoding", "connection"}


def _link_of(context: Any) -> str | None:
    """The one context URL a `Link` header can carry, or None when the context is inline or several."""
    if context is None:
        return CORE_CONTEXT
    if isinstance(context, str):
        return context
    if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
        return context[0]
    return None


def request_of(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one notification, as the subscriber asked for them."""
    body = dict(payload["notification"])
    headers = {"User-Agent": f"clapas/{__version__}"}
    link = _link_of(payload.get("context"))
    if payload.get("accept") == "application/ld+json" or link is None:
        body["@context"] = payload.get("context") or CORE_CONTEXT
        headers["Content-Type"] = "application/ld+json"
    else:
        headers["Content-Type"] = "application/json"
        headers["Link"] = LINK.format(link)
    for k, v in (payload.get("receiver_info") or {}).items():
        if k.lower() not in _HOP_HEADERS:
            headers[k] = str(v)
    return msgspec.json.encode(body), headers


class NgsiLdNotifier:
    name = "ngsi-ld"

    def __init__(self, store: Store, timeout_s: float = 10.0) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._brokers: dict[str, Any] = {}  # broker URL → the alerts' MQTT notifier, one connection each

    async def _check_subscriber(self, payload: dict[str, Any]) -> None:
        sub_id = payload["subscription"]
        sub = await asyncio.to_thread(self.store.subscription, sub_id)
        if sub is None:
            raise Undeliverable(f"subscription {sub_id} was deleted")
        key_id = payload.get("owner_key")
        if key_id:
            key = await asyncio.to_thread(self.store.key, key_id)
            why = "the subscriber's key no longer exists" if key is None else refusal(key, datetime.now(UTC))
            if why:
                await asyncio.to_thread(self.store.set_subscription_status, sub_id, "paused", False)
                raise Undeliverable(f"not sent: {why}")

    async def send(self, row: dict[str, Any]) -> None:
        payload = row["payload"]
        await self._check_subscriber(payload)
        endpoint = str(payload["endpoint"])
        scheme = endpoint.split(":", 1)[0].lower()
        if scheme not in ("http", "https", "mqtt", "mqtts"):
            raise Undeliverable(f"endpoint {endpoint!r}: only http(s) and mqtt(s) endpoints are delivered")
        data, headers = request_of(payload)
        headers["X-Clapas-Delivery"] = str(row["id"])
        try:
            if scheme.startswith("mqtt"):
                await self._publish(endpoint, data, headers)
            else:
                await self._post(endpoint, data, headers)
        except Exception as e:
            await asyncio.to_thread(self.store.subscription_delivered, payload["subscription"], False,
                                    f"{type(e).__name__}: {e}")
            raise
        await asyncio.to_thread(self.store.subscription_delivered, payload["subscription"], True)

    async def _post(self, endpoint: str, data: bytes, headers: dict[str, str]) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        r = await self._client.post(endpoint, content=data, headers=headers)
        if not 200 <= r.status_code < 300:
            raise RuntimeError(f"endpoint answered {r.status_code}: {r.text[:200]}")

    async def _publish(self, endpoint: str, data: bytes, headers: dict[str, str]) -> None:
        from clapas.alerts.notifiers.mqtt import MqttNotifier

        parts = urlsplit(endpoint)
        topic = unquote(parts.path.lstrip("/"))
        if not topic or "+" in topic or "#" in topic:
            raise Undeliverable(f"endpoint {endpoint!r}: an MQTT endpoint names one topic (no wildcard)")
        broker = f"{parts.scheme}://{parts.netloc}"
        client = self._brokers.get(broker)
        if client is None:
            client = self._brokers[broker] = MqttNotifier(AlertMqttSettings(
                url=broker, qos=1, client_id=f"clapas-ngsi-{uuid.uuid4().hex[:8]}", timeout_s=self.timeout_s))
        message = msgspec.json.encode({"metadata": headers, "body": msgspec.json.decode(data)})
        await asyncio.to_thread(client._publish, topic, message)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        for client in self._brokers.values():
            await client.close()
        self._brokers.clear()
