"""NGSI-LD notifications (subscriptions of `/ngsi-ld/v1/subscriptions`), delivered by the alerts' outbox.

Each outbox row of the notifier `ngsi-ld` holds a Notification built by the matching engine
(`clapas.api.ngsi_ld.matching`) and where it goes. Before every attempt the subscriber's key is read again from the
store: a key revoked (or expired) since stops the delivery at once — the row goes to the dead letters with why,
never retried — and pauses the subscription; so a revoked key's subscription stops within one delivery. Over HTTP the
body is POSTed as the spec says (ETSI GS CIM 009 §5.3.1, §7.3): `application/json` with the context in a `Link`
header, or `application/ld+json` with `@context` in the body when the subscriber asked for it (`endpoint.accept`),
plus the subscriber's `receiverInfo` headers. Each outcome is counted on the subscription (`timesSent`,
`timesFailed`, `lastSuccess`, `lastFailure`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from clapas import __version__
from clapas.alerts.notifiers import Undeliverable
from clapas.charter.keys import refusal
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
        if not endpoint.startswith(("http://", "https://")):
            raise Undeliverable(f"endpoint {endpoint!r}: only http and https endpoints are delivered")
        data, headers = request_of(payload)
        headers["X-Clapas-Delivery"] = str(row["id"])
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        try:
            r = await self._client.post(endpoint, content=data, headers=headers)
            if not 200 <= r.status_code < 300:
                raise RuntimeError(f"endpoint answered {r.status_code}: {r.text[:200]}")
        except Exception as e:
            await asyncio.to_thread(self.store.subscription_delivered, payload["subscription"], False,
                                    f"{type(e).__name__}: {e}")
            raise
        await asyncio.to_thread(self.store.subscription_delivered, payload["subscription"], True)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
