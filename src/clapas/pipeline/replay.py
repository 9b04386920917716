"""`clapas replay`: decode journaled messages again, e.g. after a decoder fix or a registry change.

Each replayed message keeps its journal row (status and error updated) and its observations are replaced, never
added twice: observations of an uplink are those of its device at its time. Stored join/ack/txack/log/location
events have nothing to decode and are skipped.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from clapas.cli import add_config_argument
from clapas.config import Settings, load_settings
from clapas.pipeline.ingest import Pipeline
from clapas.progress import LOG_EVERY_S
from clapas.progress import progress as track
from clapas.store.base import DECODED_EVENTS, QUARANTINED, STORED, Store, open_store


def replay(store: Store, settings: Settings, *, statuses: tuple[str, ...] = (STORED, QUARANTINED),
           dev_eui: str | None = None, since: datetime | None = None, until: datetime | None = None,
           progress: bool = False, terminal: bool | None = None, every_s: float = LOG_EVERY_S) -> dict[str, int]:
    """Re-decode the journal; returns the journal status counts before and after. `progress`: a bar on a
    terminal (`terminal` forces it either way); progress lines go to the log every `every_s` seconds otherwise.
    The total is the journal's count of the statuses replayed (a bound when a device or period is chosen)."""
    before = store.counts()
    pipeline = Pipeline(store, settings.pipeline, settings.profiles)
    done = 0
    total = sum(before.get(s, 0) for s in statuses)
    try:
        with track("replay", total or None, unit="messages", quiet=not progress, terminal=terminal,
                   every_s=every_s) as bar:
            for rows in store.iter_journal(statuses=statuses, dev_eui=dev_eui, since=since, until=until,
                                           batch_size=settings.pipeline.batch_size):
                for r in rows:
                    if r.status == STORED and r.event not in DECODED_EVENTS:
                        continue
                    pipeline.resubmit(r.message(), r.id)
                done += len(rows)
                bar.advance(len(rows))
    finally:
        pipeline.close()
    after = store.counts()
    return {"replayed": done, **{f"{k}_before": before[k] for k in before}, **{f"{k}_after": after[k] for k in after}}


def cmd_replay(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    store = open_store(settings.store, timezone=settings.timezone, postgres=settings.postgres)
    statuses = (QUARANTINED,) if args.quarantined else (STORED, QUARANTINED)
    try:
        result = replay(store, settings, statuses=statuses, dev_eui=args.device,
                        since=args.since, until=args.until, progress=not args.quiet)
    finally:
        store.close()
    print(f"replayed {result['replayed']:,} messages: stored {result['stored_before']:,} → {result['stored_after']:,}, "
          f"quarantined {result['quarantined_before']:,} → {result['quarantined_after']:,}, "
          f"observations {result['observations_before']:,} → {result['observations_after']:,}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="decode the journal again (after a decoder fix) without duplicating data",
                       description="Re-decode journaled messages with today's decoders and registry. "
                       "Observations of each replayed uplink are replaced, never duplicated.")
    add_config_argument(p)
    p.add_argument("--quarantined", action="store_true", help="only the quarantined messages")
    p.add_argument("--device", metavar="EUI", help="only this device")
    p.add_argument("--since", type=datetime.fromisoformat, metavar="ISO", help="received at or after")
    p.add_argument("--until", type=datetime.fromisoformat, metavar="ISO", help="received before")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar (progress lines still go to the log)")
    p.set_defaults(func=cmd_replay)
