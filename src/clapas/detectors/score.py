"""`clapas score`: run a simulated city through the real pipeline and the detectors, and score them against the
ground truth of the incidents injected. Two scenarios, run separately: water, and the environmental uses (heat,
flood, air, museum); `--uses` picks among them, and one `detectors` dict holds every rule scored.

The water scenario: a synthetic city (`clapas.simulator`) with many water incidents (`scoring_incidents`: leaks, bursts,
backflows, overconsumptions, network leaks, and legitimate pool fillings and garden waterings that must stay
silent). The loi Warsmann compares a dwelling with the same period of the previous three years, so the water
meters' equivalent periods of those years are fed first, through the same pipeline (as a CSV backfill of a city's
history would be), with the households' recurring legitimate uses (the garden is watered every summer). Then the
scored period itself. Everything goes simulator → ChirpStack events → `Pipeline` → DuckDB (a temporary directory)
→ `on_commit` → detectors → `MemorySink`.

The environmental scenario: the same city reduced to its environmental sensors (weather stations, air quality,
river levels, rain gauges, museum rooms), no history, over four weeks of late summer with `environment_incidents`:
heatwaves, storms on each catchment (each a `flood`), PM10 episodes on some districts and a Saharan dust intrusion
over the alert level, ozone episodes downwind on the hottest days, NO2 and SO2 plumes over single districts (over
the alert thresholds, or peaks over the information threshold only), HVAC failures on different rooms, damp rooms
over a week above 75 %RH (and damp spells shorter than mould needs), and near misses that must stay silent (heat
peaks, heavy showers, mild pollution, HVAC blips), plus data gaps. Every environmental rule has incidents to find.
All four environmental detectors run on it, through the same pipeline.

Matching: an alert (an `open` transition in the scored period) is a true positive when an incident that should
raise it matches its subject and the alert opened between the incident's start and its end plus the rule's
tolerance; every other alert is a false positive, including any alert on a legitimate use or a near miss, unless
the rule lists that near miss as explaining it (a heat peak is heat stress, not a heatwave). A rule's
subject matches an incident by device (the alert's subject is one of the incident's devices: a meter, a gauge, a
station), by zone (the subject is the incident's zone: a district, a catchment, an air-quality district, a museum
room) or city-wide (any subject: the heatwave is the city's, whatever reference zone reports it; the ozone of a hot
spell rises in every district, its 240 alert only in an ozone episode's). Pollution episodes and plumes are
zone-specific (one incident per district, several for a regional episode): the air rules' subject is a zone, and a
district left out of an episode must stay silent.
An incident is detected when an alert of the rule on its subject opened during it (up to the tolerance) or was
already open when it started (one open alert per rule and subject); its time to detect is from the incident's start
to the alert's opening (0 when already open).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clapas.config import WaterSettings
from clapas.detectors.base import OPEN, Detection, Detector, DetectorRunner, MemorySink, Registry
from clapas.detectors.water import WaterDetector
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import City, build_city
from clapas.simulator.incidents import (
    ENV_DEVICE_KINDS,
    Incident,
    environment_incidents,
    health_incidents,
    scoring_incidents,
)
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store.base import open_store

HOUR = 3600.0
DAY = 86400.0
DEFAULT_DEVICES = 300
DEFAULT_DAYS = 14
DEFAULT_START = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday in early summer: gardens are watered
HISTORY_YEARS = 3  # the loi Warsmann's "trois années précédentes"
HISTORY_MARGIN_DAYS = 1  # history windows start a day early so that their first local day is complete
HISTORY_SEED_OFFSET = 1000  # history runs draw their own radio ids (never duplicates of the scored period)
# The environmental scenario: four weeks from a local midnight in mid-August (heatwaves, then the first
# Mediterranean storms of late summer; see `environment_incidents`).
ENV_DEFAULT_DAYS = 28
ENV_DEFAULT_START = datetime(2026, 8, 9, 22, tzinfo=UTC)  # Monday 10 August 2026, 00:00 in Montpellier
ENV_FINISH_S = 2 * DAY  # after the run, let period rules (days, 24-h windows) close
USES = ("water", "heat", "flood", "air", "museum", "mobility", "health")
ENV_USES = ("heat", "flood", "air", "museum")
# The mobility scenario (issue 12): bike stations polled through their GBFS feed every 5 min and LoRaWAN counters,
# two weeks from a local midnight (counter rules need a week of same-weekday reference)
MOB_DEFAULT_DAYS = 14
MOB_DEFAULT_START = datetime(2026, 5, 31, 22, tzinfo=UTC)  # Monday 1 June 2026, 00:00 in Montpellier
# The health scenario (issue 13): ten days of the whole city with its gateways' events, from a Monday in spring
HEALTH_DEFAULT_DAYS = 10
HEALTH_DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)

# How a rule's alert subject is matched with an incident (see the module docstring).
DEVICE, ZONE, CITY = "device", "zone", "city"


@dataclass(frozen=True)
class RuleSpec:
    """What a rule is scored against."""

    targets: frozenset[str]  # incident kinds it must find (recall)
    # incident kinds whose alerts are right (precision); includes targets, may include near misses
    explains: frozenset[str]
    match: str  # DEVICE, ZONE or CITY: how the alert's subject is matched with an incident
    tolerance_s: float  # how long after the incident's end an alert still counts


def _spec(targets: set[str], explains: set[str], match: str, tolerance_s: float) -> RuleSpec:
    return RuleSpec(frozenset(targets), frozenset(targets | explains), match, tolerance_s)


WATER_RULES: dict[str, RuleSpec] = {
    "water.continuous_flow": _spec({"leak"}, set(), DEVICE, 2 * HOUR),
    # a burst running through the night is water drawn in every night hour too
    "water.night_flow": _spec({"leak"}, {"burst"}, DEVICE, DAY),
    "water.burst": _spec({"burst"}, set(), DEVICE, 2 * HOUR),
    "water.backflow": _spec({"backflow"}, set(), DEVICE, 2 * HOUR),
    # a leak or a burst pipe inside a dwelling is exactly what the loi Warsmann notice is for
    "water.overconsumption": _spec({"overconsumption"}, {"leak", "burst"}, DEVICE, 2 * DAY),
    # a customer's burst or leak does raise its district's night flow
    "water.district_night_flow": _spec({"mains_leak"}, {"burst", "leak"}, ZONE, DAY),
}
HOT = {"heatwave", "heat_peak"}
ENV_RULES: dict[str, RuleSpec] = {
    # the third hot day closes at local midnight (+ lateness); a heatwave whose first night was mild meets the
    # 3-day means a day later, and they stay met a day after the heat (trailing means)
    "heat.heatwave": _spec({"heatwave"}, set(), CITY, 2 * DAY),
    # a heat peak is as hot as a heatwave's days: the same stress, rightly reported
    "heat.heat_stress": _spec({"heatwave"}, {"heat_peak"}, DEVICE, 12 * HOUR),
    # a flood incident runs the storm and its 24-hour aftermath
    "flood.river_level": _spec({"flood"}, set(), DEVICE, 6 * HOUR),
    "flood.river_rise": _spec({"flood"}, set(), DEVICE, 6 * HOUR),
    # heavy showers stay under the default rain depths (FloodSettings: 30 mm in 1 h, 45 mm in 3 h…)
    "flood.rain": _spec({"flood"}, set(), DEVICE, 6 * HOUR),
    "flood.warning": _spec({"flood"}, set(), ZONE, 6 * HOUR),
    # PM10 thresholds are daily means: a day is decided at its local midnight, half a day after an episode's end;
    # ordinary episodes stay under the alert level, Saharan dust goes over it
    "air.pm10.information": _spec({"pollution", "dust_episode"}, set(), ZONE, DAY),
    "air.pm10.alert": _spec({"dust_episode"}, set(), ZONE, DAY),
    # hourly thresholds: an hour is decided once it has ended (+ lateness); a peak stays under the alert
    "air.no2.information": _spec({"no2_episode", "no2_peak"}, {"pollution"}, ZONE, 2 * HOUR),
    "air.no2.alert": _spec({"no2_episode"}, set(), ZONE, 2 * HOUR),
    # summer ozone follows the heat in every district (photochemistry; a heat peak is as hot); the 240 alert only
    # where the city's plume is carried (an ozone episode, on its districts)
    "air.o3.information": _spec({"heatwave", "ozone_episode"}, {"heat_peak"}, CITY, DAY),
    "air.o3.alert": _spec({"ozone_episode"}, set(), ZONE, 2 * HOUR),
    "air.so2.information": _spec({"so2_plume", "so2_puff"}, set(), ZONE, 2 * HOUR),
    "air.so2.alert": _spec({"so2_plume"}, set(), ZONE, 2 * HOUR),
    # a damp room is out of its class's band too, and wets within hours: a 24-hour swing
    "museum.climate": _spec({"hvac_failure", "damp_room", "damp_spell"}, set(), ZONE, 6 * HOUR),
    # a failure's RH drift (+25–31 %RH in hours) is a 24-hour swing beyond the Bizot class's 20 %RH range; a damp
    # room's wetting and its drying out are two, days apart
    "museum.fluctuation": _spec({"hvac_failure", "damp_room", "damp_spell"}, set(), ZONE, DAY),
    # over a week above 75 %RH; the hours of a failure near 78 %RH and the days of a damp spell are not the weeks
    # mould needs
    "museum.mould_risk": _spec({"damp_room"}, set(), ZONE, DAY),
}
MOBILITY_RULES: dict[str, RuleSpec] = {
    # the contract's hour from the first poll in (5-min polls): a brief empty (a near miss) stays silent
    "mobility.station_empty": _spec({"station_empty"}, set(), DEVICE, HOUR),
    "mobility.station_full": _spec({"station_full"}, set(), DEVICE, HOUR),
    "mobility.feed_stale": _spec({"feed_outage", "feed_frozen"}, set(), DEVICE, HOUR),
    # a zero day is decided at the local midnight after it (+ lateness)
    "mobility.counter_zero": _spec({"counter_zero"}, set(), DEVICE, DAY),
    "mobility.counter_reset": _spec({"counter_reset"}, set(), DEVICE, HOUR),
}
HEALTH_RULES: dict[str, RuleSpec] = {
    # silent opens at 3·T (T ≤ 1 h here) after the last uplink: within the silence, which lasts 8 h or more
    "health.silent": _spec({"silent"}, set(), DEVICE, HOUR),
    # offline 60 s after the last stats, plus two checks of 30 s; a flap is shorter and must stay silent
    "health.gateway_offline": _spec({"gateway_outage"}, set(), DEVICE, 10 * 60),
    # DevStatus arrives once a day: a drain may be reported a day after it crossed 20 %
    "health.battery_low": _spec({"battery_drain"}, set(), DEVICE, 1.5 * DAY),
    # judged on daily medians: the 7-day median turns days after the antenna did
    "health.radio": _spec({"antenna_degradation", "weak_link"}, {"marginal_link"}, DEVICE, DAY),
    "health.stuck_sensor": _spec({"stuck_sensor"}, set(), DEVICE, HOUR),
}
RULES: dict[str, RuleSpec] = {**WATER_RULES, **ENV_RULES, **MOBILITY_RULES, **HEALTH_RULES}


def rules_of(uses: tuple[str, ...] | list[str]) -> dict[str, RuleSpec]:
    """The rules of the chosen uses (prefix = use), in the order of RULES."""
    return {name: spec for name, spec in RULES.items() if name.split(".", 1)[0] in uses}


@dataclass
class ScenarioRun:
    city: City
    incidents: list[Incident]
    start: datetime
    end: datetime
    sink: MemorySink
    detectors: list[Detector]
    uplinks: int
    messages: int
    elapsed_s: float


@contextlib.contextmanager
def detection_chain(city: City, detectors: list[Detector], timezone: str = "Europe/Paris",
                    workdir: str | Path | None = None) -> Iterator[tuple[Pipeline, DetectorRunner, MemorySink]]:
    """The real chain for a simulated city: a DuckDB store in a temporary directory holding the city's registry, a
    `Pipeline` whose commits feed `detectors`, and the `MemorySink` of their transitions. Everything fed inside the
    block is committed (and detected) when it ends; `runner.finish` may then close the last periods."""
    with tempfile.TemporaryDirectory(prefix="clapas-score-", dir=workdir) as tmp:
        store = open_store(f"duckdb:///{Path(tmp) / 'score.duckdb'}", timezone=timezone)
        try:
            store.upsert_zones(city.zones)
            store.upsert_devices(city.registry_devices())
            sink = MemorySink()
            runner = DetectorRunner(detectors, sink, Registry(store))
            pipeline = Pipeline(store, on_commit=runner.on_commit, registry=runner.registry)
            yield pipeline, runner, sink
            pipeline.close()
        finally:
            store.close()


Progress = Callable[[float, int], None]  # (share of the run's simulated time fed, messages fed so far)


class _Legs:
    """The simulated periods a run feeds one after the other, told to `progress` as one share and one count."""

    def __init__(self, progress: Progress | None, spans: list[tuple[datetime, datetime]]) -> None:
        self.progress = progress
        self.total = sum((b - a).total_seconds() for a, b in spans) or 1.0
        self.before = 0.0
        self.span = 0.0

    def leg(self, start: datetime, end: datetime, n_before: int) -> Callable[[float, int], None] | None:
        """The `feed` callback of the next period, fed after `n_before` messages."""
        self.before += self.span
        self.span = (end - start).total_seconds()
        if self.progress is None:
            return None
        t0, before, report = start.timestamp(), self.before, self.progress
        return lambda ts, k: report(min((before + ts - t0) / self.total, 1.0), n_before + k)


def water_city(city: City) -> City:
    """The same city's water meters and district meters only (same households), for the history runs."""
    return city.only("water_meter", "district_meter")


def run_scenario(devices: int = DEFAULT_DEVICES, days: float = DEFAULT_DAYS, seed: int = 0,
                 start: datetime = DEFAULT_START, history_years: int = HISTORY_YEARS,
                 settings: WaterSettings | None = None, timezone: str = "Europe/Paris",
                 workdir: str | Path | None = None, progress: Progress | None = None) -> ScenarioRun:
    settings = settings or WaterSettings()
    city = build_city(seed, devices)
    end = start + timedelta(days=days)
    incidents = scoring_incidents(city, start, end, seed)
    wall0 = time.monotonic()
    detector = WaterDetector(settings, timezone)
    with detection_chain(city, [detector], timezone, workdir) as (pipeline, runner, sink):
        n = 0
        history = water_city(city)
        recurring = [i for i in incidents if i.kind == "garden_watering"]
        margin = timedelta(days=HISTORY_MARGIN_DAYS)
        shifts = [timedelta(days=k * settings.year_shift_days) for k in range(history_years, 0, -1)]
        legs = _Legs(progress, [*((start - s - margin, end - s + margin) for s in shifts), (start, end)])
        for k, shift in zip(range(history_years, 0, -1), shifts, strict=True):
            h_start, h_end = start - shift - margin, end - shift + margin
            h_incidents = [msgspec_replace(i, start=i.start - shift, end=i.end - shift) for i in recurring]
            sim = Simulation(history, h_start, h_end, seed + HISTORY_SEED_OFFSET * k, h_incidents, joins=False)
            n += feed(pipeline, sim.messages(), progress=legs.leg(h_start, h_end, n))
        n += feed(pipeline, Simulation(city, start, end, seed, incidents).messages(),
                  progress=legs.leg(start, end, n))
    runner.finish(end.timestamp() + settings.lateness_s + DAY)
    return ScenarioRun(city, incidents, start, end, sink, [detector], runner.uplinks, n, time.monotonic() - wall0)


def environment_city(city: City) -> City:
    """The same city's environmental sensors only (weather, air quality, river levels, rain, museum rooms)."""
    return city.only(*ENV_DEVICE_KINDS)


def environment_detectors(uses: tuple[str, ...] | list[str] = ENV_USES,
                          timezone: str = "Europe/Paris") -> list[Detector]:
    """The detectors of the chosen environmental uses, with their default settings."""
    from clapas.detectors.air import AirDetector
    from clapas.detectors.flood import FloodDetector
    from clapas.detectors.heat import HeatDetector
    from clapas.detectors.museum import MuseumDetector

    factories = {"heat": HeatDetector, "flood": FloodDetector, "air": AirDetector, "museum": MuseumDetector}
    return [factories[u](None, timezone) for u in ENV_USES if u in uses]


def run_environment(devices: int = DEFAULT_DEVICES, days: float = ENV_DEFAULT_DAYS, seed: int = 0,
                    start: datetime = ENV_DEFAULT_START, uses: tuple[str, ...] | list[str] = ENV_USES,
                    timezone: str = "Europe/Paris", workdir: str | Path | None = None,
                    progress: Progress | None = None) -> ScenarioRun:
    """The environmental scenario through the real pipeline: simulator → ChirpStack JSON → Pipeline → DuckDB →
    on_commit → the environmental detectors → MemorySink."""
    city = environment_city(build_city(seed, devices))
    end = start + timedelta(days=days)
    incidents = environment_incidents(city, start, end, seed)
    wall0 = time.monotonic()
    detectors = environment_detectors(uses, timezone)
    with detection_chain(city, detectors, timezone, workdir) as (pipeline, runner, sink):
        n = feed(pipeline, Simulation(city, start, end, seed, incidents).messages(),
                 progress=_Legs(progress, [(start, end)]).leg(start, end, 0))
    runner.finish(end.timestamp() + ENV_FINISH_S)
    return ScenarioRun(city, incidents, start, end, sink, detectors, runner.uplinks, n, time.monotonic() - wall0)


def run_mobility(days: float = MOB_DEFAULT_DAYS, seed: int = 0, start: datetime = MOB_DEFAULT_START,
                 stations: int = 30, counters: int = 10, timezone: str = "Europe/Paris",
                 workdir: str | Path | None = None, progress: Progress | None = None) -> ScenarioRun:
    """The mobility scenario through the real pipeline: simulated GBFS polls (the poller's normalisation) and
    ChirpStack counter uplinks → Pipeline → DuckDB → on_commit → MobilityDetector → MemorySink."""
    from clapas.detectors.mobility import MobilityDetector
    from clapas.simulator.mobility import build_mobility, mobility_incidents, scenario_messages

    city = build_mobility(seed, stations, counters)
    end = start + timedelta(days=days)
    incidents = mobility_incidents(city, start, end, seed)
    wall0 = time.monotonic()
    detectors: list[Detector] = [MobilityDetector(timezone=timezone)]
    with detection_chain(city, detectors, timezone, workdir) as (pipeline, runner, sink):  # type: ignore[arg-type]
        n, batch = 0, []
        report = _Legs(progress, [(start, end)]).leg(start, end, 0)
        for m in scenario_messages(city, incidents, start, end):
            batch.append(m)
            if len(batch) >= 10_000:
                pipeline.submit_many(batch)
                n += len(batch)
                batch = []
                if report is not None:
                    report(m.received_at.timestamp(), n)
        pipeline.submit_many(batch)
        n += len(batch)
    runner.finish(end.timestamp() + DAY)
    return ScenarioRun(city, incidents, start, end, sink, detectors, runner.uplinks, n,  # type: ignore[arg-type]
                       time.monotonic() - wall0)
def run_health(devices: int = DEFAULT_DEVICES, days: float = HEALTH_DEFAULT_DAYS, seed: int = 0,
               start: datetime = HEALTH_DEFAULT_START, timezone: str = "Europe/Paris",
               workdir: str | Path | None = None, stats_interval_s: float = 30.0,
               progress: Progress | None = None) -> ScenarioRun:
    """The health scenario through the real pipeline: the whole city and its gateways' events (simulator →
    ChirpStack and Gateway Bridge JSON → Pipeline → DuckDB → on_commit → the health rules → MemorySink).
    `stats_interval_s`: the gateways' stats interval (the Bridge's 30 s by default; the rules are told)."""
    from clapas.config import HealthSettings
    from clapas.detectors.health import HealthDetector

    city = build_city(seed, devices)
    end = start + timedelta(days=days)
    incidents = health_incidents(city, start, end, seed)
    wall0 = time.monotonic()
    settings = HealthSettings(stats_interval_s=stats_interval_s, gateway_check_s=stats_interval_s)
    detectors: list[Detector] = [HealthDetector(settings, timezone)]
    with detection_chain(city, detectors, timezone, workdir) as (pipeline, runner, sink):
        sim = Simulation(city, start, end, seed, incidents, gateway_events=True, gateway_stats_s=stats_interval_s)
        n = feed(pipeline, sim.messages(), progress=_Legs(progress, [(start, end)]).leg(start, end, 0))
    # no `finish`: the health rules have no period to close, and past the end every device would look silent
    return ScenarioRun(city, incidents, start, end, sink, detectors, runner.uplinks, n, time.monotonic() - wall0)


def msgspec_replace(inc: Incident, **changes: Any) -> Incident:
    import msgspec

    return msgspec.structs.replace(inc, **changes)


def subject_matches(spec: RuleSpec, subject: str, inc: Incident) -> bool:
    """Whether an alert's subject is about this incident, by the rule's matching mode."""
    if spec.match == CITY:
        return True
    if spec.match == ZONE:
        return subject == inc.zone
    return subject in inc.devices


def _open_spans(transitions: list[Detection], rule: str) -> list[tuple[str, float, float]]:
    """(subject, opened, cleared or +inf) of every alert of a rule."""
    opened: dict[str, float] = {}
    spans: list[tuple[str, float, float]] = []
    for d in transitions:
        if d.rule != rule:
            continue
        if d.state == OPEN:
            opened[d.subject] = d.at.timestamp()
        elif d.subject in opened:
            spans.append((d.subject, opened.pop(d.subject), d.at.timestamp()))
    spans += [(subject, a, float("inf")) for subject, a in opened.items()]
    return spans


def score(run: ScenarioRun, rules: dict[str, RuleSpec] | None = None) -> dict[str, Any]:
    """Per rule: precision, recall, median and worst time to detect, incidents injected, alerts raised. A rule the
    detectors of an environmental use raised that `rules` does not know is scored too, with nothing to explain it."""
    t0, t1 = run.start.timestamp(), run.end.timestamp()
    rules = dict(WATER_RULES if rules is None else rules)
    opened = [d for d in run.sink.transitions if d.state == OPEN and t0 <= d.at.timestamp() <= t1]
    # water: its six rules, as before
    prefixes = {name.split(".", 1)[0] for name in rules} & {*ENV_USES, "health"}
    for d in opened:
        if d.rule not in rules and d.rule.split(".", 1)[0] in prefixes:
            rules[d.rule] = RuleSpec(frozenset(), frozenset(), DEVICE, 0.0)
    out: dict[str, Any] = {}
    for rule, spec in rules.items():
        alerts = [d for d in opened if d.rule == rule]
        right = 0
        for d in alerts:
            at = d.at.timestamp()
            if any(inc.kind in spec.explains and subject_matches(spec, d.subject, inc)
                   and inc.t0 <= at <= inc.t1 + spec.tolerance_s for inc in run.incidents):
                right += 1
        targets = [i for i in run.incidents if i.expected_alert and i.kind in spec.targets]
        spans = _open_spans(run.sink.transitions, rule)
        delays: list[float] = []
        for inc in targets:
            # an alert that opens during the incident, or one already open when it starts (one open alert per
            # subject: a district already in alert for a customer's burst does not open a second one)
            hits = [max(0.0, a - inc.t0) for subject, a, b in spans
                    if subject_matches(spec, subject, inc) and a <= inc.t1 + spec.tolerance_s and b > inc.t0]
            if hits:
                delays.append(min(hits))
        out[rule] = {
            "precision": round(right / len(alerts), 4) if alerts else None,
            "recall": round(len(delays) / len(targets), 4) if targets else None,
            "median_detect_s": round(statistics.median(delays)) if delays else None,
            "max_detect_s": round(max(delays)) if delays else None,
            "injected": len(targets),
            "alerts": len(alerts),
        }
    return {"detectors": out}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score", help="score the detectors against a simulated city's ground truth",
        description="Run simulated cities with injected incidents through the real pipeline (DuckDB in a temporary "
                    "directory) and the detectors, and print per rule precision, recall and time to detect: the "
                    "water scenario (many water incidents, previous years' history) and the environmental one "
                    "(heatwaves, storms, pollution episodes, HVAC failures and their near misses), run separately.")
    p.add_argument("--devices", type=int, default=DEFAULT_DEVICES, metavar="N",
                   help=f"devices in the city (default {DEFAULT_DEVICES}); the environmental scenario keeps the "
                        "city's environmental sensors only")
    p.add_argument("--days", type=float, default=DEFAULT_DAYS, metavar="D",
                   help=f"length of the water scenario's scored period (default {DEFAULT_DAYS})")
    p.add_argument("--env-days", type=float, default=ENV_DEFAULT_DAYS, metavar="D",
                   help=f"length of the environmental scenario (default {ENV_DEFAULT_DAYS}, from "
                        f"{ENV_DEFAULT_START:%Y-%m-%d})")
    p.add_argument("--mobility-days", type=float, default=MOB_DEFAULT_DAYS, metavar="D",
                   help=f"length of the mobility scenario (default {MOB_DEFAULT_DAYS}, at least 10: counter rules "
                        "compare with the same weekday a week before)")
    p.add_argument("--health-days", type=float, default=HEALTH_DEFAULT_DAYS, metavar="D",
                   help=f"length of the health scenario (default {HEALTH_DEFAULT_DAYS}, from "
                        f"{HEALTH_DEFAULT_START:%Y-%m-%d}: gateways, silences, batteries, antennas, stuck sensors)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="city and incidents seed (default 0)")
    p.add_argument("--history-years", type=int, default=HISTORY_YEARS, metavar="Y",
                   help=f"previous years fed first, for the loi Warsmann reference (default {HISTORY_YEARS})")
    p.add_argument("--uses", default=",".join(USES), metavar="LIST",
                   help=f"uses to score, comma-separated (default all: {','.join(USES)})")
    p.add_argument("--json", action="store_true", help="print only the JSON scores")
    p.set_defaults(func=run)


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v / 3600:.1f} h" if v >= 3600 else f"{v / 60:.0f} min"


def parse_uses(spec: str) -> list[str]:
    uses = [u.strip() for u in spec.split(",") if u.strip()]
    unknown = [u for u in uses if u not in USES]
    if unknown or not uses:
        raise ValueError(f"unknown use(s): {', '.join(unknown) or '(none)'} (known: {', '.join(USES)})")
    return [u for u in USES if u in uses]


def run(args: argparse.Namespace) -> int:
    try:
        uses = parse_uses(args.uses)
    except ValueError as e:
        print(f"clapas score: {e}", file=sys.stderr)
        return 2
    env = [u for u in uses if u in ENV_USES]
    if args.devices < 30 or ("water" in uses and args.days < 7) or (env and args.env_days < 7) or (
            "mobility" in uses and args.mobility_days < 10) or ("health" in uses and args.health_days < 7):
        print("clapas score: needs at least 30 devices and 7 days (rules need days of baseline)", file=sys.stderr)
        return 2
    from clapas.progress import progress as track

    def tracked(label: str, fn: Callable[..., ScenarioRun], *a: Any, **kw: Any) -> ScenarioRun:
        """One scenario with its progress: the share of its simulated time fed, its messages and their rate."""
        with track(f"score {label}", 1.0, unit="messages", quiet=args.json) as bar:
            result = fn(*a, progress=lambda share, n: bar.update(share, n), **kw)
            bar.update(1.0, result.messages)  # the last batch, short of a progress step
            return result

    runs: list[tuple[str, ScenarioRun]] = []
    scores: dict[str, Any] = {}
    if "water" in uses:
        result = tracked("water", run_scenario, args.devices, args.days, args.seed, history_years=args.history_years)
        runs.append(("water", result))
        scores.update(score(result, WATER_RULES)["detectors"])
    if env:
        result = tracked("environmental", run_environment, args.devices, args.env_days, args.seed, uses=env)
        runs.append(("environmental", result))
        scores.update(score(result, rules_of(env))["detectors"])
    if "mobility" in uses:
        result = tracked("mobility", run_mobility, args.mobility_days, args.seed)
        runs.append(("mobility", result))
        scores.update(score(result, MOBILITY_RULES)["detectors"])
    if "health" in uses:
        result = tracked("health", run_health, args.devices, args.health_days, args.seed)
        runs.append(("health", result))
        scores.update(score(result, HEALTH_RULES)["detectors"])
    if args.json:
        print(json.dumps({"detectors": scores}))
        return 0
    for name, r in runs:
        print(f"{name}: {r.messages:,} messages, {r.uplinks:,} uplinks through the detectors in {r.elapsed_s:.1f} s; "
              f"{len(r.incidents)} incidents injected ({sum(not i.expected_alert for i in r.incidents)} that must "
              "stay silent)")
    print(f"{'detector':28} {'precision':>9} {'recall':>7} {'median':>8} {'worst':>8} {'injected':>8} {'alerts':>6}")
    for name, s in scores.items():
        prec = "—" if s["precision"] is None else f"{s['precision']:.2f}"
        rec = "—" if s["recall"] is None else f"{s['recall']:.2f}"
        print(f"{name:28} {prec:>9} {rec:>7} {_fmt_s(s['median_detect_s']):>8} {_fmt_s(s['max_detect_s']):>8} "
              f"{s['injected']:>8} {s['alerts']:>6}")
    return 0
