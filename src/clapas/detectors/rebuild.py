"""`clapas state rebuild`: compute the detectors' saved state again from the journal, with the settings the running
service has (the config file's and the departments' stored overrides).

When: the saved state was written by another layout of the detectors (`clapas run` refuses to load it and says so),
or it was lost. How: every stored uplink of the journal is decoded again, in the order it was received, through the
same pipeline decoding and detectors as `clapas run` (nothing is written meanwhile); then, in one transaction, the
saved state is replaced and the alert table is reconciled with what the detectors now say: an active alert whose
condition no longer holds is resolved, a condition that holds without an active alert opens one. Stop `clapas run`
first (DuckDB refuses a second writer anyway).
"""

from __future__ import annotations

import argparse
from typing import Any

from clapas.cli import add_config_argument
from clapas.config import Settings, load_settings
from clapas.connectors.chirpstack_gateway import SOURCE as GATEWAY_SOURCE
from clapas.detectors.base import CLEAR, DetectorRunner, MemorySink, Registry, utc
from clapas.detectors.state import StateKeeper
from clapas.i18n import T
from clapas.progress import LOG_EVERY_S
from clapas.progress import progress as track
from clapas.store.base import DECODED_EVENTS, STORED, Batch, Store, open_store

REBUILT = T("alert.rebuilt")  # the clear of an alert the rebuilt state no longer holds open


class _Unwritten:
    """The store as the rebuild's pipeline sees it: read as usual, never written."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write(self, batch: Batch) -> None:
        pass

    def replace(self, batch: Batch) -> None:
        pass


def rebuild(store: Store, settings: Settings, progress: bool = False, terminal: bool | None = None,
            every_s: float = LOG_EVERY_S) -> dict[str, int]:
    """Rebuild and save; returns what was done. `progress`: a bar on a terminal; log lines otherwise."""
    from clapas.alerts.routing import Router
    from clapas.alerts.sink import PersistentAlerts
    from clapas.alerts.wiring import build_detectors
    from clapas.pipeline.ingest import Pipeline
    from clapas.selfservice.holder import SettingsHolder

    # the departments' stored overrides (issue 16) over the file's settings, as `clapas run` applies them: the state
    # rebuilt is the one the running service would have reached (rule switches included)
    holder = SettingsHolder(settings, store)
    settings = holder.current
    registry = Registry(store)
    sink = MemorySink()
    runner = DetectorRunner(build_detectors(settings), sink, registry)
    runner.holder = holder
    pipeline = Pipeline(_Unwritten(store), settings.pipeline, settings.profiles,  # type: ignore[arg-type]
                        on_commit=runner.on_commit, registry=registry)
    messages = 0
    try:
        with track("state rebuild", store.counts()[STORED] or None, unit="messages", quiet=not progress,
                   terminal=terminal, every_s=every_s) as bar:
            for rows in store.iter_journal(statuses=(STORED,), batch_size=settings.pipeline.batch_size):
                for r in rows:
                    if r.event in DECODED_EVENTS or r.source == GATEWAY_SOURCE:  # (the health rules read them)
                        pipeline.resubmit(r.message(), r.id)
                        messages += 1
                pipeline.drain()  # the bar follows what the detectors have seen
                bar.advance(len(rows))
    finally:
        pipeline.close()
    rows = StateKeeper(runner.detectors).snapshot(runner.watermark, runner.uplinks)
    router = Router.from_settings(settings.alerts)
    alerts = PersistentAlerts(store, router, registry, settings.web.language)
    active = {(a["rule"], a["subject"]) for a in store.alerts(states=("open", "acknowledged"), limit=10_000_000)}
    at = utc(runner.watermark) if runner.uplinks else None
    changes = [alerts.change(d) for k, d in sink.open.items() if k not in active]
    if at is not None:
        changes += [alerts.change(_clear(rule, subject, at)) for rule, subject in sorted(active - sink.open.keys())]
    store.replace_detector_state(rows, changes, router)
    return {"messages": messages, "uplinks": runner.uplinks, "state_rows": len(rows),
            "alerts_opened": sum(c.state != CLEAR for c in changes),
            "alerts_resolved": sum(c.state == CLEAR for c in changes)}


def _clear(rule: str, subject: str, at: Any) -> Any:
    from clapas.detectors.base import Detection

    return Detection(rule, subject, CLEAR, at, "info", {"how": "state rebuild"}, REBUILT)


def cmd_state_rebuild(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    store = open_store(settings.store, timezone=settings.timezone, postgres=settings.postgres)
    try:
        r = rebuild(store, settings, progress=not args.quiet)
    finally:
        store.close()
    print(f"detector state rebuilt from {r['messages']:,} journaled messages ({r['uplinks']:,} uplinks seen by the "
          f"detectors): {r['state_rows']:,} state rows; alerts opened {r['alerts_opened']}, "
          f"resolved {r['alerts_resolved']}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("state", help="the detectors' saved state", description="The detectors' saved state.")
    ss = p.add_subparsers(dest="state_command", metavar="ACTION", required=True)
    r = ss.add_parser("rebuild", help="compute the detectors' state again from the journal (stop clapas run first)",
                      description="Decode the journal again through the detectors, replace their saved state and "
                      "reconcile the alert table with it. Needed when clapas run says the saved state is "
                      "incompatible. Stop clapas run first.")
    add_config_argument(r)
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_state_rebuild)
