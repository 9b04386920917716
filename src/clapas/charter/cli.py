"""`clapas retention apply [--dry-run]` and `clapas erase --device EUI | --subscriber ID [--before DATE] --request
REF [--dry-run]`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

from clapas.cli import add_config_argument
from clapas.config import load_settings


def _utc(text: str) -> datetime:
    """An ISO 8601 date or time; without an offset, UTC."""
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    from clapas.store.base import open_store

    settings = load_settings(args.config)
    return settings, open_store(settings.store, timezone=settings.timezone)


def _table(counts: dict[str, int]) -> str:
    if not counts:
        return "  nothing"
    width = max(len(t) for t in counts)
    return "\n".join(f"  {t:<{width}}  {n:>10,}" for t, n in sorted(counts.items()))


def cmd_retention(args: argparse.Namespace) -> int:
    from clapas.charter.jobs import retention_plan
    from clapas.progress import progress as track

    settings, store = _open(args)
    try:
        plan = retention_plan(store, settings, args.now)
        total = sum(len(g.ids) for g in plan.groups)
        with track("retention" + (" (dry run)" if args.dry_run else ""), total or None, unit="devices",
                   quiet=args.json) as bar:
            counts = store.apply_retention(plan, dry_run=args.dry_run, progress=bar.advance)
    finally:
        store.close()
    if args.json:
        print(msgspec.json.encode({"dry_run": args.dry_run, "now": plan.now, "deleted": counts}).decode())
        return 0
    rules = ", ".join(f"{g.rule} ({len(g.ids)} devices)" for g in plan.groups) or "no device has a limit"
    print(f"retention {'(dry run: nothing deleted) ' if args.dry_run else ''}at {plan.now.isoformat()}: {rules}")
    print(("rows that would be deleted" if args.dry_run else "rows deleted") + " per table:")
    print(_table(counts))
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from clapas.charter.jobs import run_erasure
    from clapas.model import normalize_eui

    try:
        eui = normalize_eui(args.device) if args.device else None
    except ValueError as e:
        print(f"clapas erase: {e}", file=sys.stderr)
        return 2
    _, store = _open(args)
    try:
        report = run_erasure(store, request=args.request, eui=eui, subscriber=args.subscriber,
                             before=args.before, dry_run=args.dry_run)
    except ValueError as e:
        print(f"clapas erase: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if not report.targets:
        print("clapas erase: no device matches (nothing erased)", file=sys.stderr)
        return 1
    if args.json:
        print(msgspec.json.encode({"request": report.request, "dry_run": report.dry_run, "deleted": report.deleted,
                                   "devices": len(report.targets), "readers": report.readers}).decode())
        return 0
    what = f"device {eui}" if eui else f"subscriber {args.subscriber} ({len(report.targets)} period(s))"
    until = f" before {args.before.isoformat()}" if args.before else ""
    print(f"erasure {report.request}: {what}{until}{' (dry run: nothing deleted)' if args.dry_run else ''}")
    print(("rows that would be deleted" if args.dry_run else "rows deleted") + " per table:")
    print(_table(report.deleted))
    if report.readers:
        print("API keys that read it (tell them, GDPR art. 19):")
        for r in report.readers:
            print(f"  {r['key_id'] or '-':24} {r['actor']:24} {r['reads']:>6} reads  {r['first']:%Y-%m-%d} → "
                  f"{r['last']:%Y-%m-%d}  ({r['device']})")
    else:
        print("no API key read it (audit log)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("retention", help="delete what is past its retention (per class and quantity)",
                       description="Apply [charter.retention]: personal sub-daily readings and their frames after "
                       "24 months, personal daily volumes after 36, the audit log after [audit] retention_months; "
                       "open and restricted data are kept unless configured. Reports rows per table.")
    add_config_argument(r)
    r.add_argument("action", choices=["apply"])
    r.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")
    r.add_argument("--now", type=_utc, default=None, metavar="ISO", help="apply as at this time (default: now)")
    r.add_argument("--json", action="store_true", help="one JSON object")
    r.set_defaults(func=cmd_retention)

    e = sub.add_parser("erase", help="erase a device's or a subscriber's data everywhere (GDPR art. 17)",
                       description="Remove in one transaction the observations, rollups, journal frames and "
                       "quarantine rows (so that `clapas replay` cannot bring them back), dedupe keys, alerts and "
                       "notifications, and the personal registry fields; a whole device (no --before) leaves the "
                       "registry. Recorded in the audit log without values; lists the API keys that read it.")
    add_config_argument(e)
    who = e.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", metavar="EUI", help="one device, its whole history (or before --before)")
    who.add_argument("--subscriber", metavar="ID", help="a subscriber's periods on every device they occupied")
    e.add_argument("--before", type=_utc, metavar="DATE", help="only data before this date (ISO 8601; UTC if bare)")
    e.add_argument("--request", required=True, metavar="REF", help="the reference of the erasure request")
    e.add_argument("--dry-run", action="store_true", help="report what would be erased, erase nothing")
    e.add_argument("--json", action="store_true", help="one JSON object")
    e.set_defaults(func=cmd_erase)
