"""The alert lifecycle, its history and its outbox: one suite on both stores (fixtures of test_store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clapas.store.alerts import AlertChange, AlertNotFound, InvalidTransition
from clapas.store.base import Store
from tests.store import test_store as suite

# the store suite's fixtures, parametrized on both stores
make_store = suite.make_store
store = suite.store

RULE = "water.continuous_flow"
T0 = datetime(2026, 6, 3, 4, tzinfo=UTC)
NOW = datetime(2026, 6, 3, 9, tzinfo=UTC)


def route(rule: str, event: str) -> list[str]:
    return ["webhook", "mqtt"] if event in ("opened", "acknowledged", "resolved") else []


def opened(subject: str = "a1", at: datetime = T0, severity: str = "major", **evidence: float) -> AlertChange:
    return AlertChange(RULE, subject, "open", at, severity, evidence or {"min_hourly_flow_lph": 18.0},
                       "No hour without flow for 24 h", "device", "dma-1")


def cleared(subject: str = "a1", at: datetime = T0 + timedelta(hours=5)) -> AlertChange:
    return AlertChange(RULE, subject, "clear", at, "info", {"flow_free_since": "x"}, "stopped", "device", "dma-1")


def test_open_then_duplicate_opens_are_one_alert(store: Store) -> None:
    assert store.apply_alert_changes([opened()], route, NOW) == [(1, "opened")]
    assert store.apply_alert_changes([opened(), opened()], route, NOW) == []  # same evidence: nothing at all
    [a] = store.alerts()
    assert (a["rule"], a["subject"], a["subject_kind"], a["zone"], a["severity"], a["state"]) == (
        RULE, "a1", "device", "dma-1", "major", "open")
    assert a["opened_at"] == T0 and a["evidence"] == {"min_hourly_flow_lph": 18.0}
    assert [n["event"] for n in store.notifications()] == ["opened", "opened"]
    # the same condition seen with other values: kept as an update, the opening evidence stays
    store.apply_alert_changes([opened(at=T0 + timedelta(hours=1), severity="critical", min_hourly_flow_lph=60.0)],
                              route, NOW)
    a = store.alert(1)
    assert a["severity"] == "critical" and a["evidence"] == {"min_hourly_flow_lph": 18.0}
    assert a["last_evidence"] == {"min_hourly_flow_lph": 60.0}
    assert [e["kind"] for e in a["events"]] == ["opened", "updated"]
    assert len(store.alerts()) == 1 and len(store.notifications()) == 2  # updates are not notified


def test_clear_resolves_and_a_new_open_is_a_new_alert(store: Store) -> None:
    store.apply_alert_changes([opened(), cleared()], route, NOW)
    a = store.alert(1)
    assert a["state"] == "resolved" and a["resolved_at"] == T0 + timedelta(hours=5)
    assert a["last_evidence"] == {"flow_free_since": "x"}
    resolved = a["events"][-1]
    assert resolved["kind"] == "resolved" and resolved["data"]["how"] == "auto"
    assert resolved["time"] == T0 + timedelta(hours=5) and resolved["recorded_at"] == NOW
    assert store.apply_alert_changes([cleared()], route, NOW) == []  # nothing open: a clear is ignored
    assert store.apply_alert_changes([opened(at=T0 + timedelta(days=1))], route, NOW) == [(2, "opened")]
    assert [(x["id"], x["state"]) for x in store.alerts()] == [(2, "open"), (1, "resolved")]
    assert [(x["id"], x["state"]) for x in store.alerts(states=("resolved",))] == [(1, "resolved")]


def test_acknowledge_then_clear(store: Store) -> None:
    store.apply_alert_changes([opened()], route, NOW)
    a = store.acknowledge_alert(1, "ana", "technician sent", route, now=NOW + timedelta(minutes=5))
    assert a["state"] == "acknowledged" and a["acked_at"] == NOW + timedelta(minutes=5)
    with pytest.raises(InvalidTransition):
        store.acknowledge_alert(1, "ana")
    store.apply_alert_changes([opened()], route, NOW)  # still the same alert: no new one while acknowledged
    assert len(store.alerts()) == 1
    store.apply_alert_changes([cleared()], route, NOW)
    a = store.alert(1)
    assert a["state"] == "resolved" and a["acked_at"] is not None
    assert [(e["kind"], e["author"]) for e in a["events"]] == [
        ("opened", "clapas"), ("acknowledged", "ana"), ("resolved", "clapas")]
    assert a["events"][1]["text"] == "technician sent"
    assert [n["event"] for n in store.notifications()][::2] == ["resolved", "acknowledged", "opened"]


def test_manual_resolve_then_new_open_creates_a_new_alert(store: Store) -> None:
    store.apply_alert_changes([opened()], route, NOW)
    a = store.resolve_alert(1, "ana", "meter replaced", route, now=NOW)
    assert a["state"] == "resolved" and a["events"][-1]["data"] == {"how": "manual"}
    with pytest.raises(InvalidTransition):
        store.resolve_alert(1)
    with pytest.raises(InvalidTransition):
        store.acknowledge_alert(1)
    store.apply_alert_changes([cleared()], route, NOW)  # the detector's own clear, later: nothing to resolve
    assert store.alert(1)["events"][-1]["data"] == {"how": "manual"}
    store.apply_alert_changes([opened(at=T0 + timedelta(days=2))], route, NOW)
    assert [x["state"] for x in store.alerts()] == ["open", "resolved"]


def test_comments_are_kept_whatever_the_state_and_not_notified(store: Store) -> None:
    store.apply_alert_changes([opened(), cleared()], route, NOW)
    n = len(store.notifications())
    a = store.comment_alert(1, "ana", "leak under the sink, fixed by the plumber", now=NOW)
    assert a["events"][-1] == {**a["events"][-1], "kind": "commented", "author": "ana",
                               "text": "leak under the sink, fixed by the plumber"}
    assert len(store.notifications()) == n
    with pytest.raises(AlertNotFound):
        store.comment_alert(99, "ana", "x")
    assert store.alert(99) is None


def test_one_active_alert_per_rule_and_subject_and_filters(store: Store) -> None:
    zone = AlertChange("water.district_night_flow", "dma-2", "open", T0, "warning", {"rise_lph": 900.0}, "rise",
                       "zone", "dma-2")
    store.apply_alert_changes([opened("a1"), opened("b2", at=T0 + timedelta(hours=2)), zone], route, NOW)
    store.apply_alert_changes([AlertChange("water.burst", "a1", "open", T0, "critical", {}, "", "device", "dma-1")],
                              route, NOW)
    assert len(store.alerts()) == 4
    assert {a["subject"] for a in store.alerts(rule=RULE)} == {"a1", "b2"}
    assert {a["rule"] for a in store.alerts(device="a1")} == {RULE, "water.burst"}
    assert [a["subject"] for a in store.alerts(zone="dma-2")] == ["dma-2"]
    assert [a["subject"] for a in store.alerts(rule=RULE, start=T0 + timedelta(hours=1))] == ["b2"]
    assert [a["subject"] for a in store.alerts(rule=RULE, end=T0 + timedelta(hours=1))] == ["a1"]
    assert len(store.alerts(limit=2)) == 2 and len(store.alerts(limit=2, offset=3)) == 1


def test_outbox_claims_leases_retries_and_dead_letters(store: Store) -> None:
    store.apply_alert_changes([opened()], route, NOW)
    claimed = store.claim_notifications(limit=10, lease_s=60, now=NOW)
    assert [(c["notifier"], c["attempts"]) for c in claimed] == [("webhook", 1), ("mqtt", 1)]
    assert claimed[0]["payload"]["alert"]["rule"] == RULE and claimed[0]["payload"]["event"] == "opened"
    assert store.claim_notifications(now=NOW + timedelta(seconds=30)) == []  # leased
    web, mq = claimed
    store.notification_delivered(web["id"], now=NOW)
    store.notification_failed(mq["id"], "ConnectionError: down", NOW + timedelta(seconds=10))
    assert store.claim_notifications(now=NOW + timedelta(seconds=5)) == []
    again = store.claim_notifications(now=NOW + timedelta(seconds=11))
    assert [(c["id"], c["attempts"]) for c in again] == [(mq["id"], 2)]
    store.notification_failed(mq["id"], "ConnectionError: still down", None)
    dead = store.notifications(status="dead")
    assert [(d["id"], d["attempts"], d["last_error"]) for d in dead] == [(mq["id"], 2, "ConnectionError: still down")]
    assert [d["id"] for d in store.notifications(status="delivered")] == [web["id"]]
    assert store.notifications(status="delivered")[0]["delivered_at"] == NOW
    assert store.claim_notifications(now=NOW + timedelta(days=1)) == []


def test_outbox_gives_one_alerts_events_in_order_per_notifier(store: Store) -> None:
    store.apply_alert_changes([opened(), cleared()], route, NOW)
    first = store.claim_notifications(now=NOW)
    assert [(c["notifier"], c["event"]) for c in first] == [("webhook", "opened"), ("mqtt", "opened")]
    web, mq = first
    store.notification_delivered(web["id"], now=NOW)
    store.notification_failed(mq["id"], "ConnectionError: down", NOW)
    # the webhook may have "resolved" now; MQTT's waits while its "opened" is retried
    assert [(c["notifier"], c["event"]) for c in store.claim_notifications(now=NOW)] == [
        ("mqtt", "opened"), ("webhook", "resolved")]


def test_alerts_survive_a_restart(make_store) -> None:
    first = make_store()
    first.apply_alert_changes([opened()], route, NOW)
    first.close()
    again = make_store()
    assert again.alert(1)["state"] == "open"
    again.apply_alert_changes([opened()], route, NOW)  # a restarted detector opening it again: no duplicate
    assert len(again.alerts()) == 1


def test_stale_alerts_are_counted_while_their_device_is_silent(store: Store) -> None:
    silent = AlertChange("health.silent", "a1", "open", T0 + timedelta(hours=1), "warning", {}, "no uplink",
                         "device", "dma-1")
    store.apply_alert_changes([opened("a1"), opened("a2")], route, NOW)
    assert store.stale_alerts() == 0
    store.apply_alert_changes([silent], route, NOW)
    assert store.stale_alerts() == 1  # a1's flow alert; the silent alert itself is not stale
    speaks = AlertChange("health.silent", "a1", "clear", T0 + timedelta(hours=2), "info", {}, "back", "device",
                         "dma-1")
    store.apply_alert_changes([speaks], route, NOW)
    assert store.stale_alerts() == 0
