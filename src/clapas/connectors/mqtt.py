"""An MQTT subscription that survives broker restarts: reconnect with exponential backoff, subscriptions restored.

Built on gmqtt (asyncio), the fastest Python subscriber measured here (DESIGN.md). Each message is handed to a
synchronous `sink(topic, payload)`; the sink must be quick (the pipeline only appends to a batch).
With QoS 1 the session is persistent (clean_session false), so the broker keeps messages while clapas is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
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


class MqttSubscriber:
    def __init__(self, url: str, topics: list[str], sink: Callable[[str, bytes], None], *, client_id: str,
                 qos: int = 0, name: str = "mqtt") -> None:
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

    def _client(self) -> gmqtt.Client:
        client = gmqtt.Client(self.client_id, clean_session=self.qos == 0)
        client.set_config({"reconnect_retries": 0})  # we reconnect ourselves, with backoff
        if self.url.username:
            client.set_auth_credentials(self.url.username, self.url.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
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
        return 0  # PUBACK: success

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
