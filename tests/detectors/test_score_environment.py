"""`clapas score` for the environmental uses: four weeks of a small city's environmental sensors through the real
chain (simulator → ChirpStack JSON → Pipeline → DuckDB → on_commit → the heat, flood, air and museum detectors), with
heatwaves, storms, pollution episodes and dust, ozone, NO2 and SO2 plumes, HVAC failures and damp rooms to find, and
heat peaks, heavy showers, mild pollution and HVAC blips that must not raise the rules they come close to, nor
pollution, NO2 and SO2 peaks, damp spells and failures the level above them. Every rule has cases to find. Plus the
scorer's subject matching, on hand-made data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from clapas.cli import main
from clapas.detectors.base import CLEAR, OPEN, Detection, MemorySink
from clapas.detectors.score import (
    CITY,
    DEVICE,
    ENV_RULES,
    ZONE,
    RuleSpec,
    ScenarioRun,
    parse_uses,
    rules_of,
    run_environment,
    score,
    subject_matches,
)
from clapas.simulator.incidents import Incident

MIN_PRECISION = MIN_RECALL = 0.95
T0 = datetime(2026, 8, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def scored():
    run = run_environment(devices=200, days=28, seed=4)
    return run, score(run, ENV_RULES)


@pytest.mark.parametrize("rule", sorted(ENV_RULES))
def test_precision_and_recall(scored, rule):
    """Every rule is scored: it has at least three incidents to find, finds them, and its alerts are right."""
    _, result = scored
    s = result["detectors"][rule]
    assert ENV_RULES[rule].targets
    assert s["injected"] >= 3, s
    assert s["recall"] >= MIN_RECALL, s
    assert s["alerts"] > 0
    assert s["precision"] >= MIN_PRECISION, s


def test_only_known_rules_raised(scored):
    run, result = scored
    assert {d.rule for d in run.sink.transitions} <= set(ENV_RULES)
    assert set(result["detectors"]) == set(ENV_RULES)


# near miss → the rules it must stay under (the subject matched as the rule's spec says)
NEAR_MISSES = {
    "heat_peak": ("heat.heatwave",),
    "heavy_shower": ("flood.river_level", "flood.river_rise", "flood.rain", "flood.warning"),
    "mild_pollution": ("air.pm10.information", "air.pm10.alert", "air.no2.information"),
    "hvac_blip": ("museum.climate", "museum.fluctuation", "museum.mould_risk"),
}


# incidents that must raise some rules but stay under the level above (the subject matched as the rule's spec says)
UNDER = {
    "pollution": ("air.pm10.alert",),  # daily means 55–75 µg/m³: information, not alert
    "no2_peak": ("air.no2.alert",),
    "so2_puff": ("air.so2.alert",),
    "damp_spell": ("museum.mould_risk",),  # days above 75 %RH, not the week mould needs
    "hvac_failure": ("museum.mould_risk",),  # hours near 78 %RH
}


@pytest.mark.parametrize("kind", sorted(UNDER))
def test_incidents_stay_under_the_level_above(scored, kind):
    run, _ = scored
    incidents = [i for i in run.incidents if i.kind == kind]
    assert len(incidents) >= 2
    for rule in UNDER[kind]:
        spec = ENV_RULES[rule]
        assert kind not in spec.explains
        hits = [(inc.start, d.subject, d.at) for inc in incidents for d in run.sink.opened(rule)
                if subject_matches(spec, d.subject, inc) and inc.t0 <= d.at.timestamp() <= inc.t1 + spec.tolerance_s]
        assert not hits, (kind, rule, hits)


@pytest.mark.parametrize("kind", sorted(NEAR_MISSES))
def test_near_misses_stay_silent(scored, kind):
    """No alert of the rules a near miss comes close to opens on its subject from its start to its end plus the
    rule's tolerance, even where a real incident nearby would explain it. (An alert a real incident opened may
    still be lifting when a near miss begins: trailing 3-day means, a day's PM10 mean decided at midnight.)"""
    run, _ = scored
    near = [i for i in run.incidents if i.kind == kind]
    assert len(near) >= 2
    assert not any(i.expected_alert for i in near)
    for rule in NEAR_MISSES[kind]:
        spec = ENV_RULES[rule]
        hits = [(inc.start, d.subject, d.at) for inc in near for d in run.sink.opened(rule)
                if subject_matches(spec, d.subject, inc) and inc.t0 <= d.at.timestamp() <= inc.t1 + spec.tolerance_s]
        assert not hits, (kind, rule, hits)


def test_json_every_rule_of_the_chosen_uses(capsys):
    with pytest.raises(SystemExit) as e:
        main(["score", "--uses", "flood,museum", "--devices", "60", "--env-days", "7", "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"detectors"}
    assert set(out["detectors"]) == {r for r in ENV_RULES if r.startswith(("flood.", "museum."))}
    for s in out["detectors"].values():
        assert set(s) == {"precision", "recall", "median_detect_s", "max_detect_s", "injected", "alerts"}


def test_uses_option():
    assert parse_uses("museum, water,heat") == ["water", "heat", "museum"]  # in the canonical order
    with pytest.raises(ValueError):
        parse_uses("water,noise")
    assert set(rules_of(["air"])) == {r for r in ENV_RULES if r.startswith("air.")}
    assert main_code(["score", "--uses", "weather"]) == 2


def main_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


# --- matching modes, on hand-made incidents and alerts ----------------------------------------------------------

def _inc(kind: str, hours: tuple[int, int], zone: str = "", devices: tuple[str, ...] = (),
         expected: bool = True) -> Incident:
    return Incident(kind=kind, start=T0 + timedelta(hours=hours[0]), end=T0 + timedelta(hours=hours[1]), zone=zone,
                    devices=list(devices), expected_alert=expected)


def _run(incidents: list[Incident], detections: list[Detection]) -> ScenarioRun:
    sink = MemorySink()
    sink.handle(detections)
    return ScenarioRun(city=None, incidents=incidents, start=T0, end=T0 + timedelta(days=7),  # type: ignore[arg-type]
                       sink=sink, detectors=[], uplinks=0, messages=0, elapsed_s=0.0)


def _d(rule: str, subject: str, hour: float, state: str = OPEN) -> Detection:
    return Detection(rule, subject, state, T0 + timedelta(hours=hour))


def test_subject_matching_modes():
    inc = _inc("flood", (0, 10), zone="catchment-lez", devices=("g1", "g2"))
    by_device = RuleSpec(frozenset({"flood"}), frozenset({"flood"}), DEVICE, 0.0)
    by_zone = RuleSpec(frozenset({"flood"}), frozenset({"flood"}), ZONE, 0.0)
    city_wide = RuleSpec(frozenset({"flood"}), frozenset({"flood"}), CITY, 0.0)
    assert subject_matches(by_device, "g2", inc) and not subject_matches(by_device, "catchment-lez", inc)
    assert subject_matches(by_zone, "catchment-lez", inc) and not subject_matches(by_zone, "g1", inc)
    assert subject_matches(city_wide, "rural-reference", inc) and subject_matches(city_wide, "anything", inc)


def test_score_by_zone_city_and_explaining_near_misses():
    rules = {
        "air.pm10.information": RuleSpec(frozenset({"pollution"}), frozenset({"pollution"}), ZONE, 3600.0),
        "heat.heatwave": RuleSpec(frozenset({"heatwave"}), frozenset({"heatwave"}), CITY, 3600.0),
        "heat.heat_stress": RuleSpec(frozenset({"heatwave"}), frozenset({"heatwave", "heat_peak"}), DEVICE, 0.0),
    }
    incidents = [
        _inc("pollution", (0, 24), zone="dma-01", devices=("aq1",)),
        _inc("pollution", (0, 24), zone="dma-02", devices=("aq2",)),
        _inc("heatwave", (30, 100), zone="rural-reference", devices=("ws1", "ws2")),
        _inc("heat_peak", (120, 150), zone="rural-reference", devices=("ws1", "ws2"), expected=False),
    ]
    detections = [
        _d("air.pm10.information", "dma-01", 20),  # right zone: true positive
        _d("air.pm10.information", "dma-03", 20),  # a district left out of the episode: false positive
        _d("air.pm10.information", "dma-02", 24.5),  # within the tolerance after the end: detects dma-02's
        _d("heat.heatwave", "some-other-reference", 80),  # city-wide: any subject
        _d("heat.heat_stress", "ws1", 40), _d("heat.heat_stress", "ws1", 50, CLEAR),
        _d("heat.heat_stress", "ws2", 130),  # during the heat peak: explained
        _d("heat.heatwave", "rural-reference", 130),  # but no heatwave during a heat peak
        _d("water.leak", "x", 1),  # another use's rule: ignored
        _d("heat.tropical_night", "ws1", 60),  # a rule no spec knows: scored, nothing explains it
    ]
    out = score(_run(incidents, detections), rules)["detectors"]
    assert out["air.pm10.information"] | {} == {"precision": 0.6667, "recall": 1.0, "median_detect_s": 80100,
                                              "max_detect_s": 88200, "injected": 2, "alerts": 3}
    assert out["heat.heatwave"]["precision"] == 0.5 and out["heat.heatwave"]["recall"] == 1.0
    assert out["heat.heat_stress"]["precision"] == 1.0 and out["heat.heat_stress"]["recall"] == 1.0
    assert out["heat.heat_stress"]["median_detect_s"] == 36000
    assert out["heat.tropical_night"] == {"precision": 0.0, "recall": None, "median_detect_s": None,
                                          "max_detect_s": None, "injected": 0, "alerts": 1}
    assert "water.leak" not in out
