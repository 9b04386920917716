"""`clapas score --uses mobility`: every mobility rule at ≥ 0.95 precision and recall on a short scenario (the
command's default is two weeks, 30 stations, 10 counters)."""

import itertools

from clapas.detectors.score import MOBILITY_RULES, parse_uses, run_mobility, score


def test_every_mobility_rule_scores_at_least_0_95():
    told: list[tuple[float, int]] = []
    run = run_mobility(days=10, seed=4, stations=12, counters=4, progress=lambda share, n: told.append((share, n)))
    # the progress of the run: the share of its simulated time fed, and the messages fed so far
    assert told and [n for _, n in told] == list(range(10_000, 10_000 * len(told) + 1, 10_000))
    assert all(0 < a <= b <= 1 for (a, _), (b, _) in itertools.pairwise(told))
    assert told[-1][1] <= run.messages
    assert any(not i.expected_alert for i in run.incidents)  # near misses that must stay silent
    scores = score(run, MOBILITY_RULES)["detectors"]
    assert set(scores) == set(MOBILITY_RULES)
    for rule, s in scores.items():
        assert s["injected"] > 0, rule
        assert s["precision"] >= 0.95 and s["recall"] >= 0.95, (rule, s)


def test_mobility_is_a_use():
    assert parse_uses("mobility") == ["mobility"]
