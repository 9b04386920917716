"""Each notifier against a real receiver, through the outbox worker: signed webhook with retries and a dead
letter, MQTT publication confirmed by the broker, email through an SMTP server."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as email_policy

import pytest

from clapas.alerts.notifiers import build_notifiers
from clapas.alerts.outbox import OutboxWorker
from clapas.alerts.routing import Router
from clapas.alerts.sink import PersistentAlerts
from clapas.config import AlertMqttSettings, AlertSettings, EmailSettings, WebhookSettings
from clapas.detectors.base import Detection, Registry
from clapas.i18n import T
from clapas.store.alerts import AlertChange
from clapas.store.duckdb import DuckDBStore

SECRET = "s3cret-for-tests"
T0 = datetime(2026, 6, 3, 4, tzinfo=UTC)
LEAK = AlertChange("water.continuous_flow", "e4403dac812d9fc5", "open", T0, "major",
                   {"min_hourly_flow_lph": 18.3, "window_h": 24.0}, "No hour without flow for 24 h", "device",
                   "dma-01")


@pytest.fixture
def store(tmp_path):
    s = DuckDBStore(f"duckdb:///{tmp_path}/alerts.duckdb")
    yield s
    s.close()


def settings(**sections) -> AlertSettings:
    return AlertSettings(retry_base_s=0.05, retry_max_s=0.2, max_attempts=4, poll_interval_s=0.05, **sections)


async def drain(worker: OutboxWorker, store, timeout: float = 15) -> None:
    """Rounds until nothing is pending (retries included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while store.notifications(status="pending") and loop.time() < deadline:
        if not await worker.run_once():
            await asyncio.sleep(0.02)


def worker_for(store, a: AlertSettings, language: str = "en") -> OutboxWorker:
    store.apply_alert_changes([LEAK], Router.from_settings(a))
    return OutboxWorker(store, build_notifiers(a, language), a)


async def test_webhook_signed_and_delivered_after_two_failures(store, hook) -> None:
    hook.fail_first = 2
    a = settings(webhook=WebhookSettings(url=hook.url, secret=SECRET, timeout_s=5))
    worker = worker_for(store, a)
    await drain(worker, store)
    await worker.close()
    [n] = store.notifications()
    assert (n["notifier"], n["status"], n["attempts"]) == ("webhook", "delivered", 3)
    assert len(hook.requests) == 3
    headers, body = hook.requests[-1]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Clapas-Signature"] == expected
    assert headers["X-Clapas-Event"] == "opened" and headers["Content-Type"] == "application/json"
    assert headers["X-Clapas-Delivery"] == str(n["id"])
    doc = json.loads(body)
    assert doc["notification_id"] == n["id"] and doc["event"] == "opened"
    assert doc["alert"]["rule"] == "water.continuous_flow" and doc["alert"]["state"] == "open"
    assert doc["alert"]["evidence"]["min_hourly_flow_lph"] == 18.3
    assert doc["alert"]["opened_at"] == "2026-06-03T04:00:00Z"
    # every attempt sent the same bytes, so a receiver can drop the repeats
    assert {b for _, b in hook.requests} == {body}


async def test_one_alerts_events_are_delivered_in_order(store, hook) -> None:
    # opened and resolved are both due in the same round; the receiver is slow to take "opened"
    hook.slow = {"opened": 0.3}
    a = settings(webhook=WebhookSettings(url=hook.url, secret=SECRET, timeout_s=5))
    worker = worker_for(store, a)
    store.apply_alert_changes([dataclasses.replace(LEAK, state="clear", at=T0 + timedelta(hours=3))],
                              Router.from_settings(a))
    assert await worker.run_once() == 1  # "resolved" waits for "opened"
    assert await worker.run_once() == 1
    await worker.close()
    assert [json.loads(b)["event"] for _, b in hook.requests] == ["opened", "resolved"]


async def test_a_failed_event_holds_the_later_ones_of_its_alert(store, hook) -> None:
    hook.fail_first = 1  # "opened" fails once
    a = settings(webhook=WebhookSettings(url=hook.url, secret=SECRET, timeout_s=5))
    worker = worker_for(store, a)
    store.apply_alert_changes([dataclasses.replace(LEAK, state="clear", at=T0 + timedelta(hours=3))],
                              Router.from_settings(a))
    assert await worker.run_once() == 1
    assert [json.loads(b)["event"] for _, b in hook.requests] == ["opened"]  # failed; "resolved" not sent
    await drain(worker, store)
    await worker.close()
    assert [json.loads(b)["event"] for b in hook.answered_ok] == ["opened", "resolved"]
    assert {(n["event"], n["status"], n["attempts"]) for n in store.notifications()} == {
        ("opened", "delivered", 2), ("resolved", "delivered", 1)}  # waiting cost "resolved" no attempt


async def test_webhook_always_failing_ends_dead_and_kept(store, hook) -> None:
    hook.fail_first = -1
    a = settings(webhook=WebhookSettings(url=hook.url, secret=SECRET, timeout_s=5))
    worker = worker_for(store, a)
    await drain(worker, store)
    await worker.close()
    [n] = store.notifications(status="dead")
    assert n["attempts"] == a.max_attempts == len(hook.requests)
    assert "500" in n["last_error"] and n["payload"]["alert"]["subject"] == LEAK.subject


async def test_webhook_unreachable_is_retried_not_raised(store) -> None:
    a = settings(webhook=WebhookSettings(url="http://127.0.0.1:9/nothing-listens", timeout_s=1))
    worker = worker_for(store, a)
    assert await worker.run_once() == 1
    [n] = store.notifications()
    assert n["status"] == "pending" and n["attempts"] == 1 and "ConnectError" in n["last_error"]
    await worker.close()


async def test_mqtt_publishes_to_the_configured_topic(store, subscriber, mqtt_url) -> None:
    a = settings(mqtt=AlertMqttSettings(url=mqtt_url, topic=subscriber.prefix + "/{event}/{rule}/{subject}",
                                        client_id=f"clapas-alerts-{subscriber.prefix[-10:]}"))
    worker = worker_for(store, a)
    await drain(worker, store)
    await worker.close()
    [n] = store.notifications()
    assert n["status"] == "delivered" and n["attempts"] == 1  # the broker acknowledged it (QoS 1)
    [(topic, payload)] = subscriber.wait(1)
    assert topic == f"{subscriber.prefix}/opened/water.continuous_flow/{LEAK.subject}"
    doc = json.loads(payload)
    assert doc["alert"]["severity"] == "major" and doc["notification_id"] == n["id"]


async def test_mqtt_broker_down_is_retried(store) -> None:
    a = settings(mqtt=AlertMqttSettings(url="mqtt://127.0.0.1:9", timeout_s=1))
    worker = worker_for(store, a)
    await worker.run_once()
    [n] = store.notifications()
    assert n["status"] == "pending" and n["last_error"]
    await worker.close()


async def test_email_through_a_local_smtp_server(store, smtp) -> None:
    a = settings(email=EmailSettings(host=smtp.host, port=smtp.port, starttls=False, from_="clapas@city.example",
                                     to="eau@city.example, astreinte@city.example"),
                 public_url="http://clapas.city.example/")
    worker = worker_for(store, a)
    await drain(worker, store)
    await worker.close()
    [n] = store.notifications()
    assert n["status"] == "delivered"
    [(sender, rcpts, raw)] = smtp.messages
    assert sender == "clapas@city.example" and rcpts == ["eau@city.example", "astreinte@city.example"]
    msg = message_from_bytes(raw)
    assert msg["Subject"] == f"[clapas] opened: water.continuous_flow on {LEAK.subject} (major)"
    text = msg.get_payload(decode=True).decode()
    assert "No hour without flow for 24 h" in text and '"min_hourly_flow_lph": 18.3' in text
    assert "http://clapas.city.example/#/alert/1" in text and msg["Content-Language"] == "en"


async def test_email_in_the_city_s_language(store, smtp) -> None:
    """A French city: the detector's text written in French (loi Warsmann notice), the e-mail's words too."""
    a = settings(email=EmailSettings(host=smtp.host, port=smtp.port, starttls=False, to="eau@city.example"),
                 public_url="http://clapas.city.example/")
    registry = Registry(devices=[{"eui": LEAK.subject, "kind": "water_meter", "zone": "dma-01"}])
    PersistentAlerts(store, Router.from_settings(a), registry, "fr").handle([Detection(
        "water.overconsumption", LEAK.subject, "open", T0, "major", {"median_ratio": 2.6},
        T("water.overconsumption.opened", volume=3.25, days=3, ratio=2.6, subscriber="AB-0042",
          respond_by="2026-07-03"))])
    worker = OutboxWorker(store, build_notifiers(a, "fr"), a)
    await drain(worker, store)
    await worker.close()
    [(_, _, raw)] = smtp.messages
    msg = message_from_bytes(raw, policy=email_policy)  # the subject is RFC 2047-encoded (non-ASCII)
    assert msg["Subject"].strip() == f"[clapas] ouverte : water.overconsumption sur {LEAK.subject} (majeure)"
    assert msg["Content-Language"] == "fr"
    text = msg.get_content()
    assert ("Augmentation anormale du volume d'eau consommé (loi Warsmann) : 3,25 m³ sur les 3 derniers jours, "
            "2,6 fois la référence ; informer sans délai l'abonné AB-0042") in text
    assert "jusqu'au 03/07/2026" in text
    assert f"Alerte 1 : water.overconsumption sur le capteur {LEAK.subject} (zone dma-01)" in text
    assert "Événement : ouverte le 03/06/2026 04:00 UTC" in text and "État : ouverte · gravité majeure" in text
    assert "Éléments :" in text and "La voir dans le tableau de bord :" in text


def test_rules_and_events_route_notifications() -> None:
    a = AlertSettings(events="opened,resolved", webhook=WebhookSettings(url="http://x", rules="water.*"),
                      mqtt=AlertMqttSettings(url="mqtt://x", rules=["water.burst", "air.*"]))
    r = Router.from_settings(a)
    assert r("water.continuous_flow", "opened") == ["webhook"]
    assert r("water.burst", "resolved") == ["webhook", "mqtt"]
    assert r("water.burst", "acknowledged") == []  # not a notified event
    assert r("air.alert", "opened") == ["mqtt"]
    assert Router.from_settings(AlertSettings())("water.burst", "opened") == []  # nothing configured


def test_alert_settings_from_the_example_file_and_the_environment() -> None:
    from clapas.config import load_settings
    from tests.conftest import ROOT

    s = load_settings(ROOT / "city.example.toml", env={
        "CLAPAS_ALERTS_WEBHOOK_URL": "https://nodered.city.local/hook", "CLAPAS_ALERTS_WEBHOOK_SECRET": "k",
        "CLAPAS_ALERTS_EMAIL_HOST": "smtp.city.local", "CLAPAS_ALERTS_EMAIL_FROM": "alertes@city.example",
        "CLAPAS_ALERTS_EMAIL_TO": "eau@city.example", "CLAPAS_ALERTS_MAX_ATTEMPTS": "3"})
    a = s.alerts
    assert (a.webhook.url, a.webhook.secret, a.max_attempts) == ("https://nodered.city.local/hook", "k", 3)
    assert (a.email.host, a.email.from_, a.email.to, a.email.rules) == (
        "smtp.city.local", "alertes@city.example", "eau@city.example", "water.*")
    assert set(build_notifiers(a)) == {"webhook", "email"}
