"""clapas run killed, stopped and cut off from its broker mid-stream (a throwaway Mosquitto with persistence)."""

from __future__ import annotations

import pytest

from tests.faults.scenarios import Sizes, broker_restart, http_kill9, kill9, sigterm_burst

pytestmark = [pytest.mark.faults, pytest.mark.mqtt]

QUICK = Sizes(uplinks=3000, rate=500)


def test_kill9_qos1_loses_nothing() -> None:
    o = kill9(1, QUICK)
    assert o.published == QUICK.uplinks
    assert (o.lost, o.doubled, o.observations_lost, o.observations_doubled) == (0, 0, 0, 0), o.as_dict()
    assert o.stored == o.published


def test_kill9_qos0_loses_only_what_the_broker_dropped_while_down() -> None:
    o = kill9(0, QUICK)
    assert o.extra["lost_while_down"] > 0  # the fault happened: the broker dropped QoS 0 messages meanwhile
    assert o.extra["lost_before_kill"] == 0, o.as_dict()
    assert o.doubled == 0 and o.observations_doubled == 0


def test_sigterm_during_a_burst_writes_everything() -> None:
    o = sigterm_burst(QUICK)
    assert o.extra["exit_status"] == 0 and o.extra["log_says_written"], o.as_dict()
    assert not o.extra["wal_left"]
    assert o.lost == 0 and o.doubled == 0, o.as_dict()


def test_broker_restart_one_reconnection_nothing_lost() -> None:
    o = broker_restart(QUICK)
    assert o.extra["connections"] == 2, o.as_dict()
    assert o.lost == 0 and o.doubled == 0 and o.stored == o.published, o.as_dict()


@pytest.mark.postgres
def test_http_ingest_answered_then_killed_before_the_commit_loses_nothing(pg_url: str) -> None:
    o = http_kill9(pg_url, uplinks=200)
    assert o.extra["posted"] == o.published == 200, o.as_dict()  # every event answered 200 ("spooled")
    assert o.extra["committed_at_kill"] == 0, o.as_dict()  # the kill fell between the answers and any commit
    assert (o.lost, o.doubled) == (0, 0) and o.stored == o.published, o.as_dict()
