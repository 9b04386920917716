"""`clapas score` on a small city: every water detector finds the injected incidents and raises nothing else.

The scenario is the real chain: simulator → ChirpStack JSON → Pipeline → DuckDB → on_commit → detectors, with
three previous years of the meters' history for the loi Warsmann reference, noise, lost uplinks, and legitimate
pool fillings and garden waterings that must stay silent.
"""

from __future__ import annotations

import json

import pytest

from clapas.cli import main
from clapas.detectors.score import WATER_RULES, run_scenario, score

MIN_PRECISION = MIN_RECALL = 0.95


@pytest.fixture(scope="module")
def scored():
    run = run_scenario(devices=150, days=10, seed=4)
    return run, score(run)


@pytest.mark.parametrize("rule", sorted(WATER_RULES))
def test_precision_and_recall(scored, rule):
    _, result = scored
    s = result["detectors"][rule]
    assert s["injected"] >= 3, s
    assert s["recall"] >= MIN_RECALL, s
    assert s["precision"] >= MIN_PRECISION, s


def test_detection_times(scored):
    """The bars documented in the README. A leak is an open alert within the hour after its 24-hour window (plus
    the radio module's transmit jitter; one more hour when that uplink is lost); a burst (two hourly readings above
    the threshold) and a backflow within hours; an overconsumption within four days (two abnormal days out of
    three, days close at local midnight); a network leak by the morning after its first night."""
    _, result = scored
    d = result["detectors"]
    jitter = 60
    assert d["water.continuous_flow"]["median_detect_s"] <= 25 * 3600 + jitter
    assert d["water.continuous_flow"]["max_detect_s"] <= 26 * 3600 + jitter
    assert d["water.burst"]["max_detect_s"] <= 4 * 3600
    assert d["water.backflow"]["max_detect_s"] <= 2 * 3600
    assert d["water.overconsumption"]["max_detect_s"] <= 4 * 86400
    assert d["water.district_night_flow"]["max_detect_s"] <= 86400


def test_legitimate_uses_stay_silent(scored):
    run, _ = scored
    legit = {e for i in run.incidents if not i.expected_alert for e in i.devices}
    assert legit
    rules = set(WATER_RULES)
    assert not [d for d in run.sink.opened() if d.rule in rules and d.subject in legit
                and run.start <= d.at <= run.end]


def test_score_json_shape(capsys):
    with pytest.raises(SystemExit) as e:
        main(["score", "--uses", "water", "--devices", "60", "--days", "7", "--history-years", "1", "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"detectors"}
    assert set(out["detectors"]) == set(WATER_RULES)
    for s in out["detectors"].values():
        assert set(s) == {"precision", "recall", "median_detect_s", "max_detect_s", "injected", "alerts"}


def test_the_progress_of_several_periods_is_one_share_and_one_count():
    """The water run feeds its history years, then the scored period: one share of all their simulated time."""
    from datetime import UTC, datetime, timedelta

    from clapas.detectors.score import _Legs

    told: list[tuple[float, int]] = []
    a = datetime(2025, 1, 1, tzinfo=UTC)
    b, c = a + timedelta(days=1), a + timedelta(days=10)
    legs = _Legs(lambda share, n: told.append((share, n)), [(a, b), (c, c + timedelta(days=3))])
    first = legs.leg(a, b, 0)
    first((a + timedelta(hours=12)).timestamp(), 100)
    second = legs.leg(c, c + timedelta(days=3), 200)
    second((c + timedelta(days=1)).timestamp(), 50)
    second((c + timedelta(days=3)).timestamp(), 90)
    assert told == [(0.125, 100), (0.5, 250), (1.0, 290)]
    assert _Legs(None, [(a, b)]).leg(a, b, 0) is None
