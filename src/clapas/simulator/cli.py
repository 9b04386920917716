"""`clapas simulate`: a synthetic city sending real ChirpStack events to a broker, a file, or nowhere (a benchmark)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import UTC, datetime, timedelta

from clapas.simulator.city import DEFAULT_DEVICES, build_city
from clapas.simulator.incidents import ENV_KINDS, KINDS, NEAR_MISS_KINDS, select, write_truth
from clapas.simulator.run import DEFAULT_DAYS, FileSink, MqttSink, Progress, paced
from clapas.simulator.simulation import Simulation

EPILOG = f"""\
examples:
  clapas simulate --speed max --out week.jsonl --truth truth.jsonl
  clapas simulate --mqtt mqtt://localhost:1883 --speed 3600 --format protobuf
  clapas simulate --devices 20000 --days 1 --speed max          # a generation benchmark
  clapas simulate --export-registry registry/                  # zones.geojson + devices.csv only

incidents (--incidents): default, none, scoring (many water incidents), environment (four weeks of heatwaves,
storms, pollution episodes and HVAC failures with near misses), or a comma-separated list of kinds:
  {', '.join(KINDS)}
  near misses that must not alert: {', '.join(NEAR_MISS_KINDS)}
  from the environmental set: {', '.join(ENV_KINDS)}
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="run a synthetic city that sends ChirpStack v4 events",
        description="Generate a deterministic synthetic city (water meters, DMAs, weather, air quality, rivers, "
                    "museum rooms, traffic and bike counters) and send its uplinks as ChirpStack v4 integration "
                    "events, with injected incidents and their ground truth.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=DEFAULT_DEVICES, metavar="N",
                   help=f"number of devices (default {DEFAULT_DEVICES}); kinds keep their proportions")
    p.add_argument("--seed", type=int, default=0, help="same seed, same city and same messages (default 0)")
    p.add_argument("--start", metavar="ISO", help="simulated start (default: --days before --end)")
    end = p.add_mutually_exclusive_group()
    end.add_argument("--end", metavar="ISO", help="simulated end (default: now)")
    end.add_argument("--days", type=float, help=f"length of the run in days (default {DEFAULT_DAYS})")
    p.add_argument("--speed", default="max", metavar="X|max",
                   help="simulated seconds per wall second: 1 real time, 3600 an hour per second, max as fast as "
                        "possible (default)")
    p.add_argument("--follow", action="store_true",
                   help="after --end, keep going in real time (never ahead of the clock) until interrupted")
    p.add_argument("--mqtt", metavar="URL", help="publish to this broker (mqtt://host:port), QoS 0, on "
                   "application/{app_id}/device/{dev_eui}/event/{event}")
    p.add_argument("--format", choices=("json", "protobuf"), default="json",
                   help="ChirpStack integration marshaler (default json)")
    p.add_argument("--out", metavar="FILE", help="write the messages as JSON lines (time, topic, payload)")
    p.add_argument("--truth", metavar="FILE", help="write the injected incidents (ground truth) as JSON lines")
    p.add_argument("--incidents", default="default", metavar="default|none|scoring|environment|LIST",
                   help="incidents to inject: the default set, none, a scoring set, or a comma-separated list of "
                        "kinds (see below)")
    p.add_argument("--export-registry", metavar="DIR",
                   help="write zones.geojson and devices.csv for `clapas zones/devices import`; with no sink "
                        "and no --truth, only export")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def _time(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _speed(text: str) -> float:
    if text.strip().lower() in ("max", "inf", "0"):
        return math.inf
    v = float(text)
    if v <= 0:
        raise ValueError("--speed must be positive or max")
    return v


def period(args: argparse.Namespace) -> tuple[datetime, datetime]:
    days = args.days if args.days is not None else DEFAULT_DAYS
    end = _time(args.end) if args.end else datetime.now(UTC).replace(microsecond=0)
    start = _time(args.start) if args.start else end - timedelta(days=days)
    if args.start and args.days is not None and not args.end:
        end = start + timedelta(days=days)
    if end <= start:
        raise ValueError("the end must come after the start")
    return start, end


def requested_kinds(spec: str) -> list[str]:
    """The kinds a comma-separated --incidents list names (none for the named sets)."""
    spec = (spec or "").strip()
    return [] if spec in ("", "default", "none", "scoring", "environment") else [
        k.strip() for k in spec.split(",") if k.strip()]


def run(args: argparse.Namespace) -> int:
    try:
        start, end = period(args)
        speed = _speed(args.speed)
        city = build_city(args.seed, args.devices)
        incidents = select(args.incidents, city, start, end, args.seed)
    except ValueError as e:
        print(f"clapas simulate: {e}", file=sys.stderr)
        return 2
    missing = sorted(set(requested_kinds(args.incidents)) - {i.kind for i in incidents})
    if missing:  # kinds placed at fixed days of a longer scenario, or needing devices this city lacks
        print(f"clapas simulate: no {', '.join(missing)} in this period and city (the environmental kinds are "
              f"placed over the first four weeks; try --days 28)", file=sys.stderr)
    if args.export_registry:
        zones, devices = city.export_registry(args.export_registry)
        print(f"wrote {zones} ({len(city.zones)} zones) and {devices} ({len(city.devices)} devices)",
              file=sys.stderr)
    if args.truth:
        write_truth(args.truth, incidents)
        print(f"wrote {len(incidents)} incidents to {args.truth}", file=sys.stderr)
    if args.export_registry and not (args.mqtt or args.out or args.truth):
        return 0

    sim = Simulation(city, start, None if args.follow else end, args.seed, incidents, fmt=args.format)
    mqtt = MqttSink(args.mqtt) if args.mqtt else None
    out = FileSink(args.out) if args.out else None
    tty = sys.stderr.isatty()
    progress = None if args.quiet else Progress(start.timestamp(), end.timestamp(), every_s=0.5 if tty else 5.0)
    n, ts, wall0 = 0, start.timestamp(), time.monotonic()
    try:
        for ts, topic, raw in paced(sim.messages(), speed, not_after_now=args.follow):
            if mqtt is not None:
                mqtt.publish(topic, raw)
            if out is not None:
                out.write(ts, topic, raw)
            n += 1
            if progress is not None and not n & 0x3FF:
                progress(ts, n)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    finally:
        if mqtt is not None:
            mqtt.close()
        if out is not None:
            out.close()
    elapsed = time.monotonic() - wall0
    if progress is not None:
        progress(ts, n, force=True)
    print(f"{n:,} messages from {len(city.devices)} devices in {elapsed:.1f} s "
          f"({n / max(elapsed, 1e-9):,.0f} msg/s)", file=sys.stderr)
    return 0
