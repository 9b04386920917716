"""The issue's bar, end to end: a leak injected in a simulated city goes simulator → ChirpStack JSON → Pipeline →
DuckDB → on_commit → water detectors → persistent alerts → outbox → webhook and MQTT, with the outbox worker
running beside ingestion as in `clapas run`.

Bar: the leak is an open `water.continuous_flow` alert within one hour of simulated time after the rule's 24-hour
window is met (24 h after the leak began), and it is notified by webhook (signed) and MQTT. A webhook that always
fails ends in dead letters without holding ingestion back.

Measured here (hourly meter, leak from 20:00, readings at hh:08 ± a few seconds of radio jitter): the alert opens
at leak start + 24 h + 8 min, the first reading after the 24 h of hourly intervals wholly inside the leak.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta

from clapas.alerts.wiring import build_alerting
from clapas.config import AlertMqttSettings, AlertSettings, Settings, WebhookSettings
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import City, build_city
from clapas.simulator.incidents import LEAK_FLOW_LPH, Incident, default_incidents
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store.duckdb import DuckDBStore

SECRET = "e2e-secret"
START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 3
LEAK_START = START + timedelta(hours=20)
RULE = "water.continuous_flow"


def run_city(tmp_path, alerts: AlertSettings) -> tuple[DuckDBStore, object, str, int]:
    """The city with one leak, fed while the outbox worker runs in its own loop; returns what it left."""
    city = build_city(7, 40)
    home = next(d for d in city.by_kind("water_meter") if d.device.premises_use == "habitation")
    leak = Incident(kind="leak", start=LEAK_START, end=START + timedelta(days=DAYS), devices=[home.eui],
                    zone=home.group, params={"flow_lph": LEAK_FLOW_LPH})
    store, alerting, n = run_with_alerting(tmp_path, alerts, city, [leak], START, leak.end, 7)
    return store, alerting, home.eui, n


def run_with_alerting(tmp_path, alerts: AlertSettings, city: City, incidents: list[Incident], start: datetime,
                      end: datetime, seed: int) -> tuple[DuckDBStore, object, int]:
    """`clapas run`'s alerting (every use's detectors, persistent alerts, the outbox worker in its own loop) over
    a simulated city; returns the store, the alerting and the number of messages fed."""
    store = DuckDBStore(f"duckdb:///{tmp_path}/e2e.duckdb")
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    alerting = build_alerting(Settings(alerts=alerts), store)
    pipeline = Pipeline(store, on_commit=alerting.runner.on_commit)

    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    worker = threading.Thread(target=loop.run_until_complete, args=(alerting.worker.run(stop),), daemon=True)
    worker.start()
    try:
        n = feed(pipeline, Simulation(city, start, end, seed, incidents).messages())
        pipeline.close()
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while store.notifications(status="pending") and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    finally:
        loop.call_soon_threadsafe(stop.set)
        worker.join(10)
        loop.close()
    return store, alerting, n


def test_leak_is_an_open_alert_within_an_hour_of_its_window_notified_by_webhook_and_mqtt(
        tmp_path, hook, subscriber, mqtt_url) -> None:
    alerts = AlertSettings(
        retry_base_s=0.05, retry_max_s=0.2, poll_interval_s=0.05,
        webhook=WebhookSettings(url=hook.url, secret=SECRET, rules="water.*"),
        mqtt=AlertMqttSettings(url=mqtt_url, topic=subscriber.prefix + "/{rule}/{subject}",
                               client_id=f"clapas-e2e-{subscriber.prefix[-10:]}"))
    store, _, eui, messages = run_city(tmp_path, alerts)
    try:
        counts = store.counts()
        assert counts["stored"] + counts["quarantined"] + counts["duplicate"] == messages
        [leak] = store.alerts(rule=RULE, device=eui)
        assert leak["state"] == "open" and leak["subject_kind"] == "device" and leak["zone"]
        window_met = LEAK_START + timedelta(hours=24)
        delay = (leak["opened_at"] - window_met).total_seconds()
        print(f"\nleak alert opened {delay / 60:.0f} min of simulated time after its 24-hour window was met "
              f"(evidence: {leak['evidence']})")
        assert 0 <= delay <= 3600  # the bar: within one hour of simulated time after the 24-hour window
        assert leak["evidence"]["min_hourly_flow_lph"] >= 12.5
        # no other leak alert in the city (legitimate use stays silent in this small run)
        assert [a["subject"] for a in store.alerts(rule=RULE)] == [eui]

        sent = {n["notifier"]: n for n in store.notifications(alert_id=leak["id"])}
        assert {k: v["status"] for k, v in sent.items()} == {"webhook": "delivered", "mqtt": "delivered"}
        bodies = [json.loads(b) for _, b in hook.requests]
        hooked = [b for b in bodies if b["alert"]["id"] == leak["id"]]
        assert len(hooked) == 1 and hooked[0]["event"] == "opened"
        headers, raw = next((h, b) for h, b in hook.requests if json.loads(b)["alert"]["id"] == leak["id"])
        assert headers["X-Clapas-Signature"] == "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        published = [(t, json.loads(p)) for t, p in subscriber.wait(len(store.notifications(status="delivered"))
                                                                    - len(hook.requests))]
        assert (f"{subscriber.prefix}/{RULE}/{eui}", leak["id"]) in [(t, p["alert"]["id"]) for t, p in published]
    finally:
        store.close()


def test_a_failing_webhook_never_blocks_ingestion_and_ends_dead(tmp_path, hook) -> None:
    hook.fail_first = -1
    alerts = AlertSettings(retry_base_s=0.05, retry_max_s=0.1, max_attempts=3, poll_interval_s=0.05,
                           webhook=WebhookSettings(url=hook.url, secret=SECRET, timeout_s=2))
    store, alerting, eui, messages = run_city(tmp_path, alerts)
    try:
        counts = store.counts()
        assert counts["stored"] + counts["quarantined"] + counts["duplicate"] == messages
        assert alerting.sink.pending == 0  # every transition is in the store
        [leak] = store.alerts(rule=RULE, device=eui)
        [n] = store.notifications(alert_id=leak["id"])
        assert (n["status"], n["attempts"]) == ("dead", 3) and "500" in n["last_error"]
    finally:
        store.close()


def test_a_storm_is_a_flood_warning_on_its_catchment_notified_then_lifted(tmp_path, hook) -> None:
    """The other uses go through the same lifecycle and notifiers: the simulator's storm over the Lez."""
    full = build_city(0, 300)
    city = full.only("water_level", "rain_gauge")
    start = datetime(2026, 9, 1, tzinfo=UTC)
    end = start + timedelta(days=10)
    (storm,) = [i for i in default_incidents(full, start, end, 0) if i.kind == "flood"]
    alerts = AlertSettings(retry_base_s=0.05, retry_max_s=0.2, poll_interval_s=0.05,
                           webhook=WebhookSettings(url=hook.url, secret=SECRET, rules="flood.warning"))
    store, _, _ = run_with_alerting(tmp_path, alerts, city, [storm], start, end, 0)
    try:
        [warning] = store.alerts(rule="flood.warning")
        assert (warning["subject"], warning["subject_kind"], warning["state"]) == (storm.zone, "zone", "resolved")
        assert storm.start <= warning["opened_at"] <= warning["resolved_at"] <= storm.end
        assert {a["rule"] for a in store.alerts()} >= {"flood.rain", "flood.river_level", "flood.river_rise"}
        # only the rule routed to the webhook; both events delivered (in no promised order: the outbox delivers
        # what is due, at least once)
        delivered = sorted((json.loads(b)["alert"]["id"], json.loads(b)["event"]) for _, b in hook.requests)
        assert delivered == [(warning["id"], "opened"), (warning["id"], "resolved")]
    finally:
        store.close()
