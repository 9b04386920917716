"""Outages around clapas: PostgreSQL through a relay (unreachable, restarted), the DuckDB file's disk full, a
webhook receiver down for a (scaled) hour."""

from __future__ import annotations

import pytest

from tests.faults.scenarios import Sizes, can_mount, full_disk, healthz_blackholed, notifier_down, pg_outage

pytestmark = pytest.mark.faults

# 9 s: clapas says degraded once a write has hung 5 s (a blackhole gives no error), so the outage must outlast that
QUICK = Sizes(uplinks=3000, rate=300, outage_s=9)


@pytest.mark.postgres
@pytest.mark.mqtt
@pytest.mark.parametrize("mode", ["unreachable", "restart"])
@pytest.mark.parametrize("qos", [1, 0])
def test_postgres_outage_loses_nothing_and_healthz_answers(pg_url: str, mode: str, qos: int) -> None:
    o = pg_outage(pg_url, qos, QUICK, mode=mode)
    if mode == "unreachable" and not o.extra["healthz_said_degraded"]:
        # nothing lost, but a hung connection (no reset, no error) is not noticed: /healthz said "ok" throughout
        pytest.xfail("issue 9, for 'ingest': /healthz says ok while every write hangs on an unreachable database")
    assert o.extra["process_up_during"] and o.extra["healthz_unanswered"] == 0, o.as_dict()
    # the target is 100 ms; on the shared 2-core test machine (pytest, clapas, the broker and PostgreSQL
    # on it) 1 s, so that only a blocked loop fails; bench/faults.py reports the slowest answer measured
    assert o.extra["healthz_slowest_s"] < 1.0, o.as_dict()
    assert (o.lost, o.doubled, o.observations_doubled) == (0, 0, 0), o.as_dict()
    assert o.extra["mqtt_connections"] == 1, o.as_dict()  # the broker session was kept
    assert o.extra["healthz_said_degraded"], o.as_dict()


@pytest.mark.mqtt
@pytest.mark.skipif(not can_mount(), reason="needs root to mount a size-limited tmpfs")
def test_full_disk_clear_error_file_intact_nothing_lost() -> None:
    o = full_disk(Sizes(uplinks=20000, rate=1500), size_mb=16)
    assert o.extra["filled"] and "No space left" in o.extra["error"], o.as_dict()
    assert o.extra["file_checks"] == "ok" and o.extra["process_up_while_full"], o.as_dict()
    assert o.lost == 0 and o.doubled == 0, o.as_dict()


def test_notifier_down_an_hour_delivered_in_order_when_attempts_cover_it() -> None:
    o = notifier_down()  # the default 10 attempts span ≈ 85 min of the default schedule
    assert (o.extra["delivered"], o.extra["dead"], o.lost) == (o.published, 0, 0), o.as_dict()
    assert o.extra["in_order"] and o.doubled == 0


def test_notifier_down_longer_than_its_attempts_dead_letters_only_after_them() -> None:
    # 8 attempts span ≈ 21 min: an hour outage exhausts them. On a loaded machine the scaled hour (6 s) may end
    # before the 8th attempt, so the receiver stays down until the attempts are spent: every one dead, none early
    o = notifier_down(max_attempts=8, until_exhausted=True)
    assert o.extra["dead"] == o.published > 0 and o.extra["dead_before_max_attempts"] == 0, o.as_dict()
    assert o.lost == 0 and o.extra["in_order"]


@pytest.mark.postgres
@pytest.mark.mqtt
def test_healthz_answers_within_100_ms_while_postgres_is_blackholed_under_load(pg_url: str) -> None:
    r = healthz_blackholed(pg_url, Sizes(uplinks=20000, rate=500), calls=50)
    assert r["degraded"] == r["calls"], r  # every answer says why: the write hangs
    # 100 ms is the target, for 95 % of the calls; the client, clapas, the broker and PostgreSQL share the
    # loaded test machine, so the bar is also met at twice what the same calls take with the database answering.
    # A loop that waits on the store or the writer takes seconds (1.16 s measured before issue 9's fixes)
    assert r["p95_s"] < max(0.1, 2 * r["healthy_p95_s"]) and r["max_s"] < 1.0, r
