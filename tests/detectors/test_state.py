"""Detector state in the store (issue 9): a restart at any batch boundary gives the alerts of an uninterrupted run.

Everything goes through `clapas run`'s chain (`tests/detectors/state_chain.py`): a simulated city of 60 devices over
8 days with a leak, a backflow, a heatwave, a storm and the other default incidents, ChirpStack JSON → Pipeline →
DuckDB or PostgreSQL → detectors (state committed with each batch) → PersistentAlerts.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clapas.alerts.wiring import build_alerting
from clapas.config import Settings
from clapas.detectors.rebuild import rebuild
from clapas.detectors.state import StateIncompatible
from clapas.store.base import open_store
from tests.detectors.state_chain import CHUNK, alert_history, cut_at, run_chain, scenario
from tests.helpers import progress_lines


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s)


# restarts while each of these is open (checked): a leak and a backflow, a heatwave, a flood
MID = {"2026-07-04T05:15+00:00": ("water.continuous_flow", "water.backflow"),
       "2026-07-06T12:00+00:00": ("heat.heatwave",),
       "2026-07-07T20:00+00:00": ("flood.warning", "flood.river_level")}
CUTS = {cut_at(_t(k)): rules for k, rules in MID.items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[tuple]:
    return run_chain(f"duckdb:///{tmp_path_factory.mktemp('ref')}/ref.duckdb")


@pytest.fixture(params=["duckdb", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/city.duckdb"
    return request.getfixturevalue("pg_url")


def _open_at_stop(seen: dict[int, set[str]]):
    def on_stop(store, i: int) -> None:
        seen[i] = {a["rule"] for a in store.alerts(states=("open", "acknowledged"), limit=10_000)}
    return on_stop


def test_the_scenario_has_every_incident_open_and_cleared(uninterrupted) -> None:
    rules = {(r[0], r[2]) for r in uninterrupted}
    for rule in ("water.continuous_flow", "water.backflow", "heat.heatwave", "flood.warning", "flood.river_level"):
        assert (rule, "resolved") in rules, rule


def test_restart_mid_leak_backflow_heatwave_and_flood_gives_the_uninterrupted_alerts(url, uninterrupted) -> None:
    seen: dict[int, set[str]] = {}
    history = run_chain(url, list(CUTS), on_stop=_open_at_stop(seen))
    for cut, rules in CUTS.items():  # each restart happened while its incidents' alerts were open…
        assert set(rules) <= seen[cut], (cut, rules, seen[cut])
    assert history == uninterrupted  # …and they cleared after it exactly as without a restart


def test_without_the_saved_state_the_leak_alert_never_clears(tmp_path, uninterrupted) -> None:
    """The failure the issue measured, reproduced by forgetting the saved state at the restart: the test above
    would see it."""
    def forget(store, i: int) -> None:
        with store._alert_tx() as cur:
            cur.execute("DELETE FROM detector_state")

    cut = cut_at(_t("2026-07-04T05:15+00:00"))
    history = run_chain(f"duckdb:///{tmp_path}/blind.duckdb", [cut], on_stop=forget)
    still_open = {(r[0], r[2]) for r in history}
    assert ("water.continuous_flow", "open") in still_open  # the leak ended, the alert never cleared
    assert history != uninterrupted


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=1, max_value=len(scenario()[1]) // CHUNK), min_size=1, max_size=3))
def test_restart_at_any_batch_boundaries_gives_the_alerts_of_a_run_from_scratch(tmp_path_factory, uninterrupted,
                                                                                 cuts) -> None:
    url = f"duckdb:///{tmp_path_factory.mktemp('cut')}/city.duckdb"
    assert run_chain(url, [c * CHUNK for c in cuts]) == uninterrupted


def test_a_failed_transaction_puts_the_detectors_back_and_the_retry_applies_the_batch_once(
        url, uninterrupted, monkeypatch) -> None:
    from clapas.store.detector_state import StateTables

    calls = {"n": 0}
    original = StateTables._put_state

    def flaky(self, cur, rows, seq):  # the 20th batch's transaction fails once, after its journal rows were written
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("store went away")
        return original(self, cur, rows, seq)

    monkeypatch.setattr(StateTables, "_put_state", flaky)
    assert run_chain(url) == uninterrupted
    assert calls["n"] > 20


def test_an_incompatible_state_is_refused_and_rebuilt_from_the_journal(tmp_path, uninterrupted, capsys,
                                                                        monkeypatch) -> None:
    from clapas.cli import main

    url = f"duckdb:///{tmp_path}/city.duckdb"
    cut = cut_at(_t("2026-07-04T05:15+00:00"))

    def stale(store, i: int) -> None:  # as if saved by another layout of the water detector
        if i == cut:
            with store._alert_tx() as cur:
                cur.execute("UPDATE detector_state SET version = '0.old' WHERE detector = 'water'")
            with pytest.raises(StateIncompatible, match="clapas state rebuild"):
                build_alerting(Settings(), store)
            store.close()
            monkeypatch.setenv("CLAPAS_STORE", url)
            with pytest.raises(SystemExit) as run:  # `clapas run` says what to do, and does not start
                main(["run"])
            assert run.value.code == 2
            assert "clapas state rebuild" in capsys.readouterr().err
            with pytest.raises(SystemExit) as done:
                main(["state", "rebuild", "--quiet"])
            assert done.value.code == 0
            assert "detector state rebuilt" in capsys.readouterr().out
            store.__init__(url)  # the chain goes on with the same (reopened) store

    assert run_chain(url, [cut], on_stop=stale) == uninterrupted


def test_rebuild_from_the_journal_agrees_with_the_alert_table(tmp_path, uninterrupted, caplog) -> None:
    """Rebuilding a state that was fine changes nothing: same state, no alert opened or resolved. Without a
    terminal, its progress goes to the log (a line per journal batch with an interval of 0), counting every
    stored message of the journal."""
    import logging

    url = f"duckdb:///{tmp_path}/city.duckdb"
    run_chain(url)
    store = open_store(url)
    try:
        before = {(d, s): b for d, s, _, b in store.detector_state()}
        stored = store.counts()["stored"]
        with caplog.at_level(logging.INFO, logger="clapas.progress"):
            result = rebuild(store, Settings(), progress=True, terminal=False, every_s=0.0)
        lines = progress_lines(caplog)
        assert len(lines) > 2 and lines[-2].startswith(f"state rebuild: {stored:,} messages, 100 % done")
        assert lines[-1].startswith(f"state rebuild: {stored:,} messages in ")
        after = {(d, s): b for d, s, _, b in store.detector_state()}
        assert result["alerts_opened"] == result["alerts_resolved"] == 0
        assert after.keys() == before.keys()
        assert alert_history(store) == uninterrupted
    finally:
        store.close()


def test_rebuild_uses_the_departments_stored_overrides(tmp_path) -> None:
    """`clapas state rebuild` runs with the settings the service runs with: the environment department's override
    (heat stress must now last 1,000 h) is stored, so the rebuilt detectors no longer hold the heat stress open at
    the end of the scenario, and the rebuild resolves it; nothing else changes."""
    from clapas.selfservice.holder import SettingsHolder

    url = f"duckdb:///{tmp_path}/city.duckdb"
    run_chain(url)
    store = open_store(url)
    try:
        def active() -> set[tuple[str, str]]:
            return {(a["rule"], a["subject"]) for a in store.alerts(states=("open", "acknowledged"), limit=10_000)}

        before = active()
        stress = {k for k in before if k[0] == "heat.heat_stress"}
        assert stress
        SettingsHolder(Settings(), store).change("heat.stress_sustain_h", 1000.0, actor="test", via="local",
                                                 role="admin")
        result = rebuild(store, Settings(), progress=False)
        assert result["alerts_resolved"] == len(stress) and result["alerts_opened"] == 0
        assert active() == before - stress
    finally:
        store.close()
