"""Webhook: POST the event as JSON, signed so that the receiver knows it came from this clapas.

`X-Clapas-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes with [alerts.webhook] secret>` (the GitHub
convention, which Node-RED and most webhook receivers know how to check). Any answer but 2xx is a failure; the
outbox worker retries with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx

from clapas import __version__
from clapas.alerts.notifiers import body
from clapas.config import WebhookSettings


def signature(secret: str, data: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


class WebhookNotifier:
    name = "webhook"

    def __init__(self, s: WebhookSettings) -> None:
        self.s = s
        self.timeout_s = s.timeout_s
        self._client: httpx.AsyncClient | None = None

    async def send(self, row: dict[str, Any]) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.s.timeout_s, follow_redirects=False)
        data = body(row)
        headers = {"Content-Type": "application/json", "User-Agent": f"clapas/{__version__}",
                   "X-Clapas-Event": row["event"], "X-Clapas-Delivery": str(row["id"])}
        if self.s.secret:
            headers["X-Clapas-Signature"] = signature(self.s.secret, data)
        r = await self._client.post(self.s.url, content=data, headers=headers)
        if not 200 <= r.status_code < 300:
            raise RuntimeError(f"webhook answered {r.status_code}: {r.text[:200]}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
