"""`clapas museum report`: the monthly conformity report per room (`clapas.reports.museum`) as CSV or JSON, on
standard output or in a file, for the curators and the city's open-data portal."""

from __future__ import annotations

import argparse
import sys

from clapas.cli import add_config_argument
from clapas.config import load_settings
from clapas.reports.museum import ReportError, monthly_report, parse_month, to_csv, to_json
from clapas.store.base import open_store


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("museum", help="museum rooms' climate: the monthly conformity report",
                       description="Museum climate (domain-rules §5): each room against its class (ASHRAE or "
                                   "Bizot, [museum] settings), breaches, 24-hour fluctuations, mould risk, EN 15757.")
    msub = p.add_subparsers(dest="museum_command", metavar="ACTION", required=True)
    r = msub.add_parser("report", help="a month's conformity report per room (CSV or JSON)",
                        description="One row (CSV) or object (JSON) per room for a local month.")
    add_config_argument(r)
    r.add_argument("--month", required=True, help="the month, YYYY-MM (the city's local month)")
    r.add_argument("--room", action="append", metavar="ID", help="only this room (zone id); repeatable")
    r.add_argument("--format", choices=["csv", "json"], default="csv", help="output format (default csv)")
    r.add_argument("--output", "-o", metavar="FILE", help="write to FILE (default standard output)")
    r.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    store = open_store(settings.store, timezone=settings.timezone)
    try:
        reports = monthly_report(store, args.month, args.room, settings.museum, settings.timezone)
    except ReportError as e:
        print(f"clapas museum report: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    text = to_json(reports).decode() + "\n" if args.format == "json" else to_csv(reports)
    if args.output and args.output != "-":
        try:
            with open(args.output, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        except OSError as e:
            print(f"clapas museum report: {e}", file=sys.stderr)
            return 1
        print(f"{len(reports)} room(s) for {parse_month(args.month):%Y-%m} written to {args.output}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
