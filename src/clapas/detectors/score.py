"""`clapas score`: run a simulated city through the real pipeline and the detectors, and score them against the
ground truth of the incidents injected.

The scenario: a synthetic city (`clapas.simulator`) with many water incidents (`scoring_incidents`: leaks, bursts,
backflows, overconsumptions, network leaks, and legitimate pool fillings and garden waterings that must stay
silent). The loi Warsmann compares a dwelling with the same period of the previous three years, so the water
meters' equivalent periods of those years are fed first, through the same pipeline (as a CSV backfill of a city's
history would be), with the households' recurring legitimate uses (the garden is watered every summer). Then the
scored period itself. Everything goes simulator → ChirpStack events → `Pipeline` → DuckDB (a temporary directory)
→ `on_commit` → detectors → `MemorySink`.

Matching: an alert (an `open` transition in the scored period) is a true positive when an incident that should
raise it is on the alert's device (or zone, for district rules) and the alert opened between the incident's start
and its end plus the rule's tolerance; every other alert is a false positive, including any alert on a legitimate
use. An incident is detected when an alert of the rule on its subject opened during it (up to the tolerance) or was
already open when it started (one open alert per rule and subject); its time to detect is from the incident's start
to the alert's opening (0 when already open).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clapas.config import WaterSettings
from clapas.detectors.base import OPEN, Detection, DetectorRunner, MemorySink, Registry
from clapas.detectors.water import WaterDetector
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import City, build_city
from clapas.simulator.incidents import Incident, scoring_incidents
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


@dataclass(frozen=True)
class RuleSpec:
    """What a rule is scored against."""

    targets: frozenset[str]  # incident kinds it must find (recall)
    explains: frozenset[str]  # incident kinds whose alerts are right (precision); includes targets
    zone: bool  # subject is a zone (district rules) rather than a device
    tolerance_s: float  # how long after the incident's end an alert still counts


RULES: dict[str, RuleSpec] = {
    "water.continuous_flow": RuleSpec(frozenset({"leak"}), frozenset({"leak"}), False, 2 * HOUR),
    # a burst running through the night is water drawn in every night hour too
    "water.night_flow": RuleSpec(frozenset({"leak"}), frozenset({"leak", "burst"}), False, DAY),
    "water.burst": RuleSpec(frozenset({"burst"}), frozenset({"burst"}), False, 2 * HOUR),
    "water.backflow": RuleSpec(frozenset({"backflow"}), frozenset({"backflow"}), False, 2 * HOUR),
    # a leak or a burst pipe inside a dwelling is exactly what the loi Warsmann notice is for
    "water.overconsumption": RuleSpec(frozenset({"overconsumption"}), frozenset({"overconsumption", "leak", "burst"}),
                                      False, 2 * DAY),
    # a customer's burst or leak does raise its district's night flow
    "water.district_night_flow": RuleSpec(frozenset({"mains_leak"}), frozenset({"mains_leak", "burst", "leak"}),
                                          True, DAY),
}


@dataclass
class ScenarioRun:
    city: City
    incidents: list[Incident]
    start: datetime
    end: datetime
    sink: MemorySink
    detector: WaterDetector
    uplinks: int
    messages: int
    elapsed_s: float


def water_city(city: City) -> City:
    """The same city's water meters and district meters only (same households), for the history runs."""
    devices = [dataclasses.replace(d, index=i)
               for i, d in enumerate(d for d in city.devices if d.kind in ("water_meter", "district_meter"))]
    return City(seed=city.seed, zones=city.zones, devices=devices, gateways=city.gateways,
                applications=city.applications, tenant_id=city.tenant_id)


def run_scenario(devices: int = DEFAULT_DEVICES, days: float = DEFAULT_DAYS, seed: int = 0,
                 start: datetime = DEFAULT_START, history_years: int = HISTORY_YEARS,
                 settings: WaterSettings | None = None, timezone: str = "Europe/Paris",
                 workdir: str | Path | None = None) -> ScenarioRun:
    settings = settings or WaterSettings()
    city = build_city(seed, devices)
    end = start + timedelta(days=days)
    incidents = scoring_incidents(city, start, end, seed)
    wall0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clapas-score-", dir=workdir) as tmp:
        store = open_store(f"duckdb:///{Path(tmp) / 'score.duckdb'}", timezone=timezone)
        try:
            store.upsert_zones(city.zones)
            store.upsert_devices(city.registry_devices())
            sink = MemorySink()
            detector = WaterDetector(settings, timezone)
            runner = DetectorRunner([detector], sink, Registry(store))
            pipeline = Pipeline(store, on_commit=runner.on_commit)
            n = 0
            history = water_city(city)
            recurring = [i for i in incidents if i.kind == "garden_watering"]
            for k in range(history_years, 0, -1):
                shift = timedelta(days=k * settings.year_shift_days)
                h_start = start - shift - timedelta(days=HISTORY_MARGIN_DAYS)
                h_end = end - shift + timedelta(days=HISTORY_MARGIN_DAYS)
                h_incidents = [msgspec_replace(i, start=i.start - shift, end=i.end - shift) for i in recurring]
                sim = Simulation(history, h_start, h_end, seed + HISTORY_SEED_OFFSET * k, h_incidents, joins=False)
                n += feed(pipeline, sim.messages())
            n += feed(pipeline, Simulation(city, start, end, seed, incidents).messages())
            pipeline.close()
            runner.finish(end.timestamp() + settings.lateness_s + DAY)
        finally:
            store.close()
    return ScenarioRun(city, incidents, start, end, sink, detector, runner.uplinks, n, time.monotonic() - wall0)


def msgspec_replace(inc: Incident, **changes: Any) -> Incident:
    import msgspec

    return msgspec.structs.replace(inc, **changes)


def _subject_matches(spec: RuleSpec, d: Detection, inc: Incident) -> bool:
    return d.subject == inc.zone if spec.zone else d.subject in inc.devices


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


def score(run: ScenarioRun) -> dict[str, Any]:
    """Per rule: precision, recall, median and worst time to detect, incidents injected, alerts raised."""
    t0, t1 = run.start.timestamp(), run.end.timestamp()
    opened = [d for d in run.sink.transitions if d.state == OPEN and t0 <= d.at.timestamp() <= t1]
    out: dict[str, Any] = {}
    for rule, spec in RULES.items():
        alerts = [d for d in opened if d.rule == rule]
        right = 0
        for d in alerts:
            at = d.at.timestamp()
            if any(inc.expected_alert and inc.kind in spec.explains and _subject_matches(spec, d, inc)
                   and inc.t0 <= at <= inc.t1 + spec.tolerance_s for inc in run.incidents):
                right += 1
        targets = [i for i in run.incidents if i.expected_alert and i.kind in spec.targets]
        spans = _open_spans(run.sink.transitions, rule)
        delays: list[float] = []
        for inc in targets:
            # an alert that opens during the incident, or one already open when it starts (one open alert per
            # subject: a district already in alert for a customer's burst does not open a second one)
            hits = [max(0.0, a - inc.t0) for subject, a, b in spans
                    if (subject == inc.zone if spec.zone else subject in inc.devices)
                    and a <= inc.t1 + spec.tolerance_s and b > inc.t0]
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
        description="Run a simulated city with many injected water incidents through the real pipeline (DuckDB in a "
                    "temporary directory) and the water detectors, and print per detector precision, recall and "
                    "time to detect.")
    p.add_argument("--devices", type=int, default=DEFAULT_DEVICES, metavar="N",
                   help=f"devices in the city (default {DEFAULT_DEVICES})")
    p.add_argument("--days", type=float, default=DEFAULT_DAYS, metavar="D",
                   help=f"length of the scored period (default {DEFAULT_DAYS})")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="city and incidents seed (default 0)")
    p.add_argument("--history-years", type=int, default=HISTORY_YEARS, metavar="Y",
                   help=f"previous years fed first, for the loi Warsmann reference (default {HISTORY_YEARS})")
    p.add_argument("--json", action="store_true", help="print only the JSON scores")
    p.set_defaults(func=run)


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v / 3600:.1f} h" if v >= 3600 else f"{v / 60:.0f} min"


def run(args: argparse.Namespace) -> int:
    if args.devices < 30 or args.days < 7:
        print("clapas score: needs at least 30 devices and 7 days (rules need days of baseline)", file=sys.stderr)
        return 2
    result = run_scenario(args.devices, args.days, args.seed, history_years=args.history_years)
    scores = score(result)
    if args.json:
        print(json.dumps(scores))
        return 0
    print(f"{result.messages:,} messages, {result.uplinks:,} water uplinks through the detectors in "
          f"{result.elapsed_s:.1f} s; {len(result.incidents)} incidents injected")
    print(f"{'detector':28} {'precision':>9} {'recall':>7} {'median':>8} {'worst':>8} {'injected':>8} {'alerts':>6}")
    for name, s in scores["detectors"].items():
        prec = "—" if s["precision"] is None else f"{s['precision']:.2f}"
        rec = "—" if s["recall"] is None else f"{s['recall']:.2f}"
        print(f"{name:28} {prec:>9} {rec:>7} {_fmt_s(s['median_detect_s']):>8} {_fmt_s(s['max_detect_s']):>8} "
              f"{s['injected']:>8} {s['alerts']:>6}")
    return 0
