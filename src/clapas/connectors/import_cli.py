"""`clapas import ngsi FILE|URL` and `clapas import counts FILE.csv`: counter files through the pipeline, with a
report of what was found (documents glued or repeated, duplicates, conflicts, out-of-order periods, gaps)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from clapas.cli import add_config_argument
from clapas.config import load_settings
from clapas.connectors import counts
from clapas.pipeline.ingest import Pipeline
from clapas.progress import LOG_EVERY_S
from clapas.progress import progress as track
from clapas.store.base import open_store

MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024  # a city archive of every counter and day is a few tens of MB
IMPORT_CHUNK = 10_000  # messages handed to the pipeline at once: a few of its batches, a progress step


def _read(where: str) -> str:
    if where.startswith(("http://", "https://")):
        import httpx

        try:
            with httpx.stream("GET", where, follow_redirects=True, timeout=60) as r:
                r.raise_for_status()
                chunks, size = [], 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise ValueError(f"{where}: more than {MAX_DOWNLOAD_BYTES} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as e:  # refused, timed out, 4xx/5xx: said, never a traceback
            raise ValueError(f"{type(e).__name__}: {e}") from None
        return b"".join(chunks).decode("utf-8-sig")
    return Path(where).read_text(encoding="utf-8-sig")


def import_text(store, text: str, fmt: str, timezone: str, default_step_s: int, *, quiet: bool = False,
                terminal: bool | None = None, every_s: float = LOG_EVERY_S) -> dict:
    """Parse, report and store one file's counts; returns the report. The messages go to the pipeline
    `IMPORT_CHUNK` at a time, with a progress bar on a terminal and log lines otherwise."""
    tz = ZoneInfo(timezone)
    report = counts.Report()
    if fmt == "ngsi":
        records = []
        for doc in counts.split_documents(text, report):
            try:
                records.append(counts.ngsi_record(doc, tz, default_step_s))
            except (ValueError, TypeError) as e:
                report.invalid.append(str(e)[:200])
    else:
        records = counts.csv_records(text, tz, report, default_step_s)
    messages = counts.to_messages(records, report, datetime.now(UTC))
    pipeline = Pipeline(store)
    before = store.counts()
    try:
        with track(f"import {fmt}", len(messages) or None, unit="messages", quiet=quiet, terminal=terminal,
                   every_s=every_s) as bar:
            for i in range(0, len(messages), IMPORT_CHUNK):
                chunk = messages[i:i + IMPORT_CHUNK]
                pipeline.submit_many(chunk)
                bar.advance(len(chunk))
    finally:
        pipeline.close()
    after = store.counts()
    out = report.as_dict()
    out["stored"] = after.get("stored", 0) - before.get("stored", 0)
    out["already_stored"] = after.get("duplicate", 0) - before.get("duplicate", 0)
    return out


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    try:
        text = _read(args.source)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        print(f"clapas import {args.format}: cannot read {args.source}: {e}", file=sys.stderr)
        return 2
    store = open_store(settings.store, timezone=settings.timezone)
    try:
        store.migrate()
        report = import_text(store, text, args.format, settings.timezone, settings.counters.time_step_s,
                             quiet=args.quiet)
    except ValueError as e:
        print(f"clapas import {args.format}: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import counter files (NGSI TrafficFlowObserved, national-schema CSV)",
                       description="Read a counter file and store its counts through the pipeline (journaled, "
                       "deduplicated): `ngsi` for Eco-Counter-style TrafficFlowObserved documents (a city archive "
                       "of concatenated JSON objects, arrays, key-values or normalized), `counts` for CSV measures "
                       "of the national counting schema. Prints a report: documents, glued documents, duplicates, "
                       "conflicting repeats, out-of-order periods, gaps per counter.")
    p.add_argument("format", choices=["ngsi", "counts"])
    p.add_argument("source", help="a file, or an http(s) URL of the city's open-data portal")
    p.add_argument("--json", action="store_true", help="one-line JSON report")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar (progress lines still go to the log)")
    add_config_argument(p)
    p.set_defaults(func=run)
