"""MQTT: publish each alert event (JSON) to a topic built from the alert, for Node-RED flows and the like.

paho-mqtt because it confirms a QoS 1 publication (the broker's PUBACK, `wait_for_publish`): only then is the
notification delivered. One connection, opened at the first notification and kept (paho reconnects it in its
own thread); a publication that the broker does not acknowledge within `timeout_s` is retried by the outbox.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import paho.mqtt.client as mqtt

from clapas.alerts.notifiers import body
from clapas.config import AlertMqttSettings
from clapas.connectors.mqtt import MqttUrl


def topic_for(template: str, payload: dict[str, Any]) -> str:
    """The configured topic with {rule}, {subject}, {event}, {severity}, {zone}; wildcards in values removed."""
    a = payload.get("alert", {})
    values = {"rule": a.get("rule", ""), "subject": a.get("subject", ""), "event": payload.get("event", ""),
              "severity": a.get("severity", ""), "zone": a.get("zone", "")}
    clean = {k: (str(v).replace("+", "_").replace("#", "_") or "-") for k, v in values.items()}
    return template.format(**clean)


class MqttNotifier:
    name = "mqtt"

    def __init__(self, s: AlertMqttSettings) -> None:
        self.s = s
        self.url = MqttUrl(s.url)
        self.timeout_s = s.timeout_s
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._lock = threading.Lock()

    def _connect(self) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.s.client_id)
        if self.url.username:
            c.username_pw_set(self.url.username, self.url.password)
        if self.url.tls:
            c.tls_set()
        c.on_connect = lambda *a: self._connected.set()
        c.on_disconnect = lambda *a: self._connected.clear()
        c.connect_timeout = self.s.timeout_s
        c.reconnect_delay_set(1, 30)
        c.connect(self.url.host, self.url.port, keepalive=60)
        c.loop_start()
        if not self._connected.wait(self.s.timeout_s):
            c.loop_stop()
            c.disconnect()
            raise TimeoutError(f"no CONNACK from {self.url} within {self.s.timeout_s} s")
        return c

    def _publish(self, topic: str, data: bytes) -> None:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            elif not self._connected.wait(self.s.timeout_s):
                raise ConnectionError(f"not connected to {self.url}")
            info = self._client.publish(topic, data, qos=self.s.qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"publish to {self.url} failed: {mqtt.error_string(info.rc)}")
            info.wait_for_publish(self.s.timeout_s)
            if not info.is_published():
                raise TimeoutError(f"{self.url} did not acknowledge the publication within {self.s.timeout_s} s")

    async def send(self, row: dict[str, Any]) -> None:
        await asyncio.to_thread(self._publish, topic_for(self.s.topic, row["payload"]), body(row))

    def _close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None

    async def close(self) -> None:
        await asyncio.to_thread(self._close)
