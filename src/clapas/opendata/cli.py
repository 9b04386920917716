"""`clapas export DATASET --format … --zone … --since … --until … -o FILE`: an export to a file, as the API streams it.

The export is made as a caller of one of the charter's roles, `public` by default: what a city puts on an open-data
portal must hold only open rows, whatever the operator running the command may read. `--role operator-water` (a
role with `export:bulk`) exports more; every export of restricted or personal data is written to the audit log.
A progress bar on a terminal, plain log lines every few seconds otherwise (cron, CI logs): `clapas.progress`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clapas.cli import add_config_argument
from clapas.progress import progress as track


def _caller(settings: Any, role: str) -> Any:
    from clapas.charter import Caller
    from clapas.charter.keys_cli import operator
    from clapas.charter.roles import effective_roles

    roles = effective_roles(settings.charter.roles)
    if role not in roles:
        raise SystemExit(f"clapas: unknown role {role!r}; known: {', '.join(sorted(roles))}")
    return Caller(actor=operator(), via="local", role=role, scopes=frozenset(roles[role].scopes))


def run(args: argparse.Namespace) -> int:
    from clapas.api.errors import ApiError
    from clapas.charter import OPEN
    from clapas.charter.audit import READ, AuditEntry
    from clapas.charter.classes import Classifier
    from clapas.charter.keys_cli import _open, when
    from clapas.opendata import formats
    from clapas.opendata.datasets import UnknownDataset, resolve
    from clapas.opendata.source import UnknownZone, export, period

    settings, store = _open(args)
    try:
        fmt = formats.get(args.format)
        kinds = {d.get("kind") for d in store.devices(limit=1_000_000)} - {None, ""}
        ds = resolve(args.dataset, settings.open_data, kinds)
        now = datetime.now(UTC)
        start, end = period(when(args.since, now) if args.since else None,
                            when(args.until, now) if args.until else None, settings.open_data.default_days)
        if start >= end:
            raise SystemExit("clapas: --since must be before --until")
        caller = _caller(settings, args.role)
        ex = export(store, caller, Classifier(settings.charter), ds, start=start, end=end, zone=args.zone,
                    settings=settings, chunk_rows=settings.open_data.chunk_rows)
        out = Path(args.output).open("wb") if args.output != "-" else sys.stdout.buffer  # noqa: SIM115
        try:
            # the share done is of the period walked; the rate is of the rows written
            with track(f"export {ds.id}", 1.0, unit="rows", quiet=args.quiet) as bar:
                for piece in formats.encode(fmt.id, ex.columns, ex.chunks()):
                    out.write(piece)
                    bar.update(ex.progress, ex.rows)
                bar.update(1.0, ex.rows)
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        view = ex.view
        if view.served_class != OPEN:
            store.append_audit([AuditEntry(READ, caller.actor, "local", caller.role, route="clapas export",
                                           data_class=view.served_class, row_count=ex.rows,
                                           subjects=sorted(view.subjects), detail={"dataset": ds.id})])
        print(f"{ds.id}: {ex.rows} rows ({fmt.id}) from {start.isoformat()} to {end.isoformat()}"
              + (f"; {view.withheld} devices withheld (not readable by the role {caller.role!r})"
                 if view.withheld else ""), file=sys.stderr)
        return 0
    except (UnknownDataset, UnknownZone, formats.UnknownFormat) as e:
        print(f"clapas: {e}", file=sys.stderr)
        return 2
    except ApiError as e:
        print(f"clapas: {e.message} (try --role with a role that may read it)", file=sys.stderr)
        return 1
    finally:
        store.close()


def add_parser(sub: argparse._SubParsersAction) -> None:
    from clapas.opendata.formats import FORMATS

    p = sub.add_parser("export", help="export a dataset (CSV, French CSV, GeoJSON, Parquet) to a file",
                       description="A dataset (weather, air-quality, river-levels, bike-counts, devices, zones, "
                       "water-consumption… or a device kind) over a period, streamed from the store; as the role "
                       "`public` unless --role says otherwise.")
    add_config_argument(p)
    p.add_argument("dataset", metavar="DATASET")
    p.add_argument("--format", "-f", choices=list(FORMATS), default="csv")
    p.add_argument("--zone", help="only this zone and the zones under it")
    p.add_argument("--since", help="ISO 8601 date or time, inclusive (default: [open_data] default_days before "
                                   "--until)")
    p.add_argument("--until", help="ISO 8601 date or time, exclusive (default: now)")
    p.add_argument("--role", default="public", help="export what this charter role may export (default: public)")
    p.add_argument("--output", "-o", required=True, help="the file to write (- for standard output)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar on a terminal")
    p.set_defaults(func=run)
