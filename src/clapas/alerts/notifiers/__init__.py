"""Notifiers: how an alert event leaves clapas. Each takes an outbox row and raises if it was not delivered.

A notifier is built only when its section is configured (`[alerts.webhook] url`, `[alerts.mqtt] url`,
`[alerts.email] host`); the names here are the names in the outbox rows and in `Router`.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from clapas.config import AlertSettings, WebSettings


class Notifier(Protocol):
    name: str
    timeout_s: float

    async def send(self, row: dict[str, Any]) -> None:
        """Deliver one outbox row (its `payload`); raise on any failure, so that the worker retries."""

    async def close(self) -> None: ...


class Undeliverable(Exception):
    """A notification that no retry can deliver (its subscriber's key was revoked…): the outbox makes it a dead
    letter at once, with this message."""


def body(row: dict[str, Any]) -> bytes:
    """The JSON every notifier sends: the stored payload and the notification id (to drop repeated deliveries)."""
    return msgspec.json.encode({"notification_id": row["id"], **row["payload"]})


def build_notifiers(a: AlertSettings, language: str = WebSettings().language) -> dict[str, Notifier]:
    """`language`: the city's (`[web] language`), that of the e-mails' words."""
    out: dict[str, Notifier] = {}
    if a.webhook.url:
        from clapas.alerts.notifiers.webhook import WebhookNotifier

        out["webhook"] = WebhookNotifier(a.webhook)
    if a.mqtt.url:
        from clapas.alerts.notifiers.mqtt import MqttNotifier

        out["mqtt"] = MqttNotifier(a.mqtt)
    if a.email.host:
        from clapas.alerts.notifiers.email import EmailNotifier

        out["email"] = EmailNotifier(a.email, a.public_url, language)
    return out
