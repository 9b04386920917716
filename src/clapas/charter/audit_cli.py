"""`clapas audit verify|export|prune`: the audit log's hash chain, its export, its retention (§8.4)."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

from clapas.charter.keys_cli import _open, operator, when
from clapas.cli import add_config_argument

EXPORT_COLS = ("id", "time", "event", "actor", "via", "role", "key_id", "client", "method", "route", "data_class",
               "row_count", "subjects", "status", "request_id", "detail", "prev_hash", "hash")


def months_before(now: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the last day of a shorter month)."""
    import calendar

    y, m = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(y, m + 1)[1])
    return now.replace(year=y, month=m + 1, day=day)


def cmd_verify(args: argparse.Namespace) -> int:
    _settings, store = _open(args)
    try:
        v, anchor = store.verify_audit(), store.audit_anchor()
    finally:
        store.close()
    since = f" (after the pruned entries up to {anchor[0]})" if anchor else ""
    if v.ok:
        print(f"audit log: {v.checked} entries, the hash chain holds{since}")
        return 0
    print(f"audit log: BROKEN at entry {v.first_broken}: {v.reason} ({v.checked} entries before it hold)")
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    from clapas.charter.audit import AUDIT_EXPORTED, AuditEntry, public

    _settings, store = _open(args)
    since = when(args.from_, datetime.now(UTC)) if args.from_ else None
    until = when(args.to, datetime.now(UTC)) if args.to else None
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: SIM115
    n = 0
    try:
        writer = csv.writer(out) if args.format == "csv" else None
        if writer:
            writer.writerow(EXPORT_COLS)
        enc = msgspec.json.Encoder()
        for chunk in store.iter_audit(since=since, until=until):
            for r in chunk:
                row: dict[str, Any] = {**public(r), "prev_hash": r["prev_hash"], "hash": r["hash"]}
                if writer:
                    writer.writerow([enc.encode(row[c]).decode() if isinstance(row[c], list | dict)
                                     else row[c].isoformat() if isinstance(row[c], datetime)
                                     else "" if row[c] is None else row[c] for c in EXPORT_COLS])
                else:
                    out.write(enc.encode(row).decode() + "\n")
                n += 1
        store.append_audit([AuditEntry(AUDIT_EXPORTED, operator(), "local", "admin", row_count=n, detail={
            "format": args.format, "from": since.isoformat() if since else None,
            "to": until.isoformat() if until else None})])
    finally:
        if args.output:
            out.close()
        store.close()
    print(f"audit log: {n} entries exported", file=sys.stderr)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    settings, store = _open(args)
    before = months_before(datetime.now(UTC), settings.audit.retention_months)
    try:
        if args.dry_run:
            n = sum(1 for chunk in store.iter_audit(until=before) for _ in chunk)
            print(f"audit log: {n} entries older than {before.date()} would be deleted "
                  f"(retention {settings.audit.retention_months} months)")
            return 0
        n = store.prune_audit(before)
    finally:
        store.close()
    print(f"audit log: {n} entries older than {before.date()} deleted; the chain verifies from its anchor")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="the audit log: verify its hash chain, export it, prune it",
                       description="Every read of restricted or personal data, every write, every refused or "
                       "rate-limited call and every key operation, hash-chained (never an observation value).")
    au = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = au.add_parser("verify", help="check the hash chain; exit 1 and name the first broken entry if it breaks")
    add_config_argument(v)
    v.set_defaults(func=cmd_verify)
    e = au.add_parser("export", help="entries as JSON lines or CSV, oldest first, with their hashes")
    add_config_argument(e)
    e.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    e.add_argument("--from", dest="from_", help="at or after (ISO date)")
    e.add_argument("--to", help="before (ISO date)")
    e.add_argument("--output", "-o", help="a file (default: standard output)")
    e.set_defaults(func=cmd_export)
    r = au.add_parser("prune", help="delete entries older than [audit] retention_months (default 12, CNIL "
                                    "2021-122); the chain keeps verifying from its anchor")
    add_config_argument(r)
    r.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    r.set_defaults(func=cmd_prune)
