"""An MQTT subscription that survives broker restarts: reconnect with exponential backoff, subscriptions restored.

Built on gmqtt (asyncio), the fastest Python subscriber measured here (DESIGN.md). Each message is handed to a
synchronous `sink(topic, payload)`; the sink must be quick (it appends to the spool). With QoS 1 the session is
persistent (clean_session false), so the broker keeps messages while clapas is away, and a message is acknowledged
only once it is safe: the sink returns an awaitable (the spool's fsync of its group) and the PUBACK is sent when it
is done — gmqtt's `optimistic_acknowledgement=False`, which sends the PUBACK when the async on_message handler
returns. A process killed before that gets the message again from the broker (the dedupe keys drop it if it had
been stored after all).

One connection per subscriber: we reconnect ourselves, with backoff, and gmqtt's own reconnection is switched off.
(gmqtt treats `reconnect_retries = 0` as "one more try" — `failed_connections <= retries` — so a client we had
given up on came back after its `reconnect_delay` of 6 s with the same client id, and the broker, which keeps one
session per id, dropped our new connection for it: the subscriber flapped every 6 s.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlparse

import gmqtt

log = logging.getLogger("clapas.mqtt")

# Reconnection backoff: first retry after BACKOFF_MIN_S, doubling up to BACKOFF_MAX_S, with ±20 % jitter so that
# many clients do not all come back at the same instant.
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0


class MqttUrl:
    """mqtt://user:password@host:port or mqtts://… (TLS)."""

    def __init__(self, url: str) -> None:
        u = urlparse(url)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ValueError(f"not an MQTT URL (mqtt://host:port): {url!r}")
        self.tls = u.scheme == "mqtts"
        self.host = u.hostname
        self.port = u.port or (8883 if self.tls else 1883)
        self.username = unquote(u.username) if u.username else None
        self.password = unquote(u.password) if u.password else None

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class _Client(gmqtt.Client):
    """A gmqtt client that never reconnects by itself (`MqttSubscriber.run` does, with a new client)."""

    async def reconnect(self, delay: bool = False) -> None:
        return None


class MqttSubscriber:
    def __init__(self, url: str, topics: list[str], sink: Callable[[str, bytes], Awaitable[None] | None], *,
                 client_id: str, qos: int = 0, name: str = "mqtt") -> None:
        self.url = MqttUrl(url)
        self.topics = topics
        self.sink = sink
        self.client_id = client_id
        self.qos = qos
        self.name = name
        self.connected = asyncio.Event()
        self.connections = 0  # successful connections so far (1 + reconnections)
        self.received = 0
        self._lost: asyncio.Event | None = None
        self._client_now: gmqtt.Client | None = None
        self._paused = False

    def _client(self) -> gmqtt.Client:
        # At QoS 0 nothing is acknowledged: a plain function handler (no task per message). At QoS 1 the handler is
        # a coroutine and gmqtt sends the PUBACK when it returns. gmqtt forces optimistic acknowledgement for a
        # protocol below 5 only when the version is known at construction (it is not: connect() sets it), so the
        # deferred PUBACK holds with MQTT 3.1.1 too (tests/connectors/test_mqtt_ack.py shows it on a real broker).
        client = _Client(self.client_id, clean_session=self.qos == 0, optimistic_acknowledgement=self.qos == 0)
        if self.url.username:
            client.set_auth_credentials(self.url.username, self.url.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message if self.qos == 0 else self._on_message_acked
        self._client_now = client
        return client

    def _on_connect(self, client: gmqtt.Client, flags: int, rc: int, properties: dict) -> None:
        # subscribing here restores the subscriptions on every (re)connection
        for topic in self.topics:
            client.subscribe(topic, qos=self.qos)
        self.connections += 1
        self.connected.set()
        log.info("%s: connected to %s, subscribed to %s", self.name, self.url, ", ".join(self.topics))

    def _on_disconnect(self, client: gmqtt.Client, packet: bytes, exc: Exception | None = None) -> None:
        self.connected.clear()
        if self._lost is not None:
            self._lost.set()

    def _on_message(self, client: gmqtt.Client, topic: str, payload: bytes, qos: int, properties: dict) -> int:
        self.received += 1
        self.sink(topic, payload)
        return 0

    async def _on_message_acked(self, client: gmqtt.Client, topic: str, payload: bytes, qos: int,
                                properties: dict) -> int:
        self.received += 1
        safe = self.sink(topic, payload)
        if safe is not None:
            await safe  # the message is durable (spooled and fsync'd): only now is the PUBACK sent
        return 0  # PUBACK: success

    def pause(self) -> None:
        """Stop reading from the broker (the spool is full, or clapas is stopping): TCP backpressure, the broker
        keeps the messages (QoS 1 in the session; QoS 0 up to its own queue limits)."""
        self._set_reading(False)

    def resume(self) -> None:
        self._set_reading(True)

    def _set_reading(self, on: bool) -> None:
        self._paused = not on
        connection = getattr(self._client_now, "_connection", None)
        transport = getattr(connection, "_transport", None)  # gmqtt has no public pause: its asyncio transport
        if transport is not None and not transport.is_closing():
            (transport.resume_reading if on else transport.pause_reading)()

    async def run(self, stop: asyncio.Event) -> None:
        """Stay subscribed until `stop` is set, reconnecting after any failure."""
        delay = BACKOFF_MIN_S
        while not stop.is_set():
            client = self._client()
            self._lost = asyncio.Event()
            try:
                await client.connect(self.url.host, self.url.port, ssl=self.url.tls, keepalive=30, version=4)
            except Exception as e:  # refused, unreachable, DNS…: wait and try again
                log.warning("%s: cannot connect to %s (%s); retrying in %.1f s", self.name, self.url, e, delay)
                await _sleep_or_stop(stop, delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            delay = BACKOFF_MIN_S
            if self._paused:
                self._set_reading(False)
            lost = asyncio.ensure_future(self._lost.wait())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
            lost.cancel()
            stopped.cancel()
            if stop.is_set():
                await _quiet_disconnect(client)
                return
            log.warning("%s: connection to %s lost; reconnecting", self.name, self.url)
            await _quiet_disconnect(client)
            await _sleep_or_stop(stop, BACKOFF_MIN_S * random.uniform(0.8, 1.2))


async def _quiet_disconnect(client: gmqtt.Client) -> None:
    with contextlib.suppress(Exception):  # already gone
        await asyncio.wait_for(client.disconnect(), timeout=2)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
