"""The health rules across restarts: a city with its gateways' events and a gateway outage, stopped and started
again mid-outage and mid-silence, gives the alerts (and stale marks) of an uninterrupted run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from clapas.config import HealthSettings, Settings
from clapas.detectors.rebuild import rebuild
from clapas.model import Message
from clapas.simulator.incidents import Incident
from clapas.simulator.run import message
from clapas.simulator.simulation import Simulation
from tests.detectors.state_chain import CHUNK, run_chain, scenario

START = datetime(2026, 7, 1, tzinfo=UTC)
STATS_S = 300.0  # fewer gateway messages than the Bridge's 30 s; the rules are told
SETTINGS = Settings(health=HealthSettings(stats_interval_s=STATS_S, gateway_check_s=STATS_S))


@cache
def messages() -> tuple[tuple[Message, ...], Incident]:
    city, _, incidents = scenario()
    gid = city.gateways[0].id
    outage = Incident(kind="gateway_outage", start=START + timedelta(days=1), end=START + timedelta(days=1, hours=8),
                      devices=[gid])
    sim = Simulation(city, START, START + timedelta(days=2), 3, [*incidents, outage], gateway_events=True,
                     gateway_stats_s=STATS_S)
    msgs = tuple(message(raw, datetime.fromtimestamp(ts, UTC), topic=topic) for ts, topic, raw in sim.messages())
    return msgs, outage


REBUILT: dict = {}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> list:
    msgs, _ = messages()

    def rebuild_at_the_end(store, i: int) -> None:  # the journal holds the gateway events: a rebuild agrees
        if i == len(msgs):
            REBUILT.update(rebuild(store, SETTINGS))

    return run_chain(f"duckdb:///{tmp_path_factory.mktemp('h') / 'a.duckdb'}", settings=SETTINGS, messages=msgs,
                     on_stop=rebuild_at_the_end)


def test_the_outage_is_one_incident(uninterrupted) -> None:
    _, outage = messages()
    gateway = [a for a in uninterrupted if a[0] == "health.gateway_offline"]
    assert [(a[1], a[2]) for a in gateway] == [(outage.devices[0], "resolved")]


def test_a_state_rebuild_from_the_journal_agrees_with_the_alert_table(uninterrupted) -> None:
    assert REBUILT["messages"] > 0 and REBUILT["alerts_opened"] == REBUILT["alerts_resolved"] == 0


def test_restart_mid_outage_gives_the_uninterrupted_alerts(tmp_path, uninterrupted) -> None:
    msgs, outage = messages()
    i = next(k for k, m in enumerate(msgs) if m.received_at >= outage.start + timedelta(hours=2))
    cuts = [-(-i // CHUNK) * CHUNK]
    assert run_chain(f"duckdb:///{tmp_path / 'b.duckdb'}", cuts, settings=SETTINGS, messages=msgs) == uninterrupted
