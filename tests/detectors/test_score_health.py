"""`clapas score --uses health` on a small city: every health rule finds its incidents and nothing else (the CLI's
default run, 300 devices and 10 days, is in the README)."""

from __future__ import annotations

import pytest

from clapas.detectors.score import HEALTH_RULES, run_health, score


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # gateway stats every 5 min instead of 30 s (the rules are told): the same outages, ten times fewer messages
    run = run_health(devices=60, days=7, workdir=tmp_path_factory.mktemp("health-score"), stats_interval_s=300)
    return score(run, HEALTH_RULES)["detectors"]


@pytest.mark.parametrize("rule", sorted(HEALTH_RULES))
def test_every_health_rule_at_095(scores: dict, rule: str) -> None:
    s = scores[rule]
    assert s["injected"] > 0, f"{rule}: nothing injected to find"
    assert s["recall"] >= 0.95, s
    assert s["precision"] >= 0.95, s
