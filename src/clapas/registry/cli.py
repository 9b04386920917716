"""`clapas devices import|export|list|reassign` and `clapas zones import|export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from clapas.cli import add_config_argument
from clapas.config import load_settings
from clapas.progress import LOG_EVERY_S
from clapas.progress import progress as track
from clapas.registry.devices_csv import RegistryError, read_devices, write_devices
from clapas.registry.zones import read_zones, zones_to_geojson
from clapas.store.base import open_store

REGISTRY_CHUNK = 5_000  # devices upserted at once: one statement each, a progress step for a city of 80,000


def import_devices(store, devices: list, *, quiet: bool = False, terminal: bool | None = None,
                   every_s: float = LOG_EVERY_S) -> int:
    """Upsert the devices `REGISTRY_CHUNK` at a time, with a progress bar (log lines without a terminal)."""
    n = 0
    with track("devices import", len(devices) or None, unit="devices", quiet=quiet, terminal=terminal,
               every_s=every_s) as bar:
        for i in range(0, len(devices), REGISTRY_CHUNK):
            chunk = devices[i:i + REGISTRY_CHUNK]
            n += store.upsert_devices(chunk)
            bar.advance(len(chunk))
    return n


def _store(args: argparse.Namespace):
    settings = load_settings(args.config)
    return open_store(settings.store, timezone=settings.timezone)


def _need_file(args: argparse.Namespace, what: str) -> bool:
    if args.action == "import" and not args.file:
        print(f"clapas {what} import: name the file to import", file=sys.stderr)
        return False
    return True


def cmd_devices(args: argparse.Namespace) -> int:
    if args.action == "reassign":
        return _reassign(args)
    if not _need_file(args, "devices"):
        return 2
    store = _store(args)
    try:
        if args.action == "import":
            with open(args.file, newline="", encoding="utf-8") as f:
                devices = read_devices(f)
            print(f"imported {import_devices(store, devices, quiet=args.quiet)} devices from {args.file}")
        elif args.action == "export":
            rows = store.devices(limit=10_000_000)
            if args.file and args.file != "-":
                with open(args.file, "w", newline="", encoding="utf-8") as f:
                    n = write_devices(rows, f)
                print(f"exported {n} devices to {args.file}", file=sys.stderr)
            else:
                write_devices(rows, sys.stdout)
        else:
            for d in store.devices(kind=args.kind, zone=args.zone, limit=args.limit):
                seen = d["last_seen"].isoformat(timespec="seconds") if d["last_seen"] else "never"
                print(f"{d['eui']}  {d['kind'] or '-':16} {d['zone'] or '-':14} {seen:25} {d['name']}")
    except (RegistryError, OSError) as e:
        print(f"clapas devices {args.action}: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _reassign(args: argparse.Namespace) -> int:
    """A change of occupant: the new subscriber's period starts at --from; the previous one's history stays
    theirs (never served with the new occupant's, erasable with `clapas erase --subscriber`)."""
    from datetime import UTC, datetime

    from clapas.model import normalize_eui
    from clapas.store.charter import OccupancyError

    if not args.file or not args.subscriber or not args.from_:
        print("clapas devices reassign EUI --subscriber NEW --from DATE", file=sys.stderr)
        return 2
    try:
        eui = normalize_eui(args.file)
        since = datetime.fromisoformat(args.from_)
    except ValueError as e:
        print(f"clapas devices reassign: {e}", file=sys.stderr)
        return 2
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    store = _store(args)
    try:
        done = store.reassign(eui, args.subscriber, since)
    except OccupancyError as e:
        print(f"clapas devices reassign: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"device {eui}: occupant {done['previous'] or '(none)'} until {since.isoformat()}, "
          f"{done['subscriber']} from then on")
    return 0


def cmd_zones(args: argparse.Namespace) -> int:
    if not _need_file(args, "zones"):
        return 2
    store = _store(args)
    try:
        if args.action == "import":
            zones = read_zones(Path(args.file).read_bytes())
            print(f"imported {store.upsert_zones(zones)} zones from {args.file}")
        else:
            text = msgspec.json.format(msgspec.json.encode(zones_to_geojson(store.zones()))).decode()
            if args.file and args.file != "-":
                Path(args.file).write_text(text + "\n", encoding="utf-8")
            else:
                print(text)
    except (RegistryError, OSError) as e:
        print(f"clapas zones {args.action}: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("devices", help="import, export or list the device registry (CSV)",
                       description="The device registry as CSV: columns eui,name,kind,decoder,profile,zone,lat,lon,"
                       "data_class,expected_interval_s,subscriber,premises_use,tags (tags as key=value;key=value).")
    add_config_argument(d)
    d.add_argument("action", choices=["import", "export", "list", "reassign"])
    d.add_argument("file", nargs="?", help="CSV file (import: required; export: default standard output); "
                   "reassign: the device EUI")
    d.add_argument("--subscriber", help="reassign: the new occupant's subscriber reference")
    d.add_argument("--from", dest="from_", metavar="DATE", help="reassign: when the new occupant's period starts "
                   "(ISO 8601; UTC if bare)")
    d.add_argument("--kind", help="list: only this kind")
    d.add_argument("--zone", help="list: only this zone")
    d.add_argument("--limit", type=int, default=1000, help="list: at most this many")
    d.add_argument("--quiet", "-q", action="store_true", help="import: no progress bar (progress lines still go "
                   "to the log)")
    d.set_defaults(func=cmd_devices)

    z = sub.add_parser("zones", help="import or export the city's zones (GeoJSON)",
                       description="Zones as a GeoJSON FeatureCollection; each feature needs properties.id, "
                       "and may have name, kind (district, dma, park, museum_room, catchment…) and parent.")
    add_config_argument(z)
    z.add_argument("action", choices=["import", "export"])
    z.add_argument("file", nargs="?", help="GeoJSON file (import: required; export: default standard output)")
    z.set_defaults(func=cmd_zones)
