"""Detectors per partition (partitioned mode): what makes a worker's alerts those of a single process.

Each partition a worker holds gets its own `DetectorRunner`, with its own watermark, fed only with that
partition's events, in the partition's order. A zone's devices share a partition (`connectors.broker.Affinity`),
so every rule over a zone or a device sees exactly what a single process would, and the period rules close on the
partition's own stream time — never early because another partition, read ahead during a backlog, has moved on.

Saved state: the subjects (device EUIs, zone ids) are the partition's own; the rows without a subject (each
detector's scalars and the runner's watermark, `state.GLOBAL`) are saved under the partition's tag instead, so
that partitions never overwrite each other's. On takeover a runner loads only its partition's rows.

The device and network health rules (`detectors.health`): a gateway's events reach every partition (the owner of
its subject journals them, the others get copies, `connectors.broker`), so each partition judges the orphaning of
its own devices, and only the owner opens the gateway's incident and saves its state (`HealthDetector.owns`); the
never-seen silences are opened by each device's own partition; and the ticks the router sends every partition
carry the stream time (`Tick`), so that a partition whose devices all fell silent (a zone's gateway down: a zone is
one partition) still advances and opens their silence. The incident's evidence lists the owner's orphans only.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

from clapas.alerts.wiring import Alerting, build_alerting
from clapas.config import Settings
from clapas.connectors import ParseError, chirpstack_gateway
from clapas.connectors.broker import Affinity, Event
from clapas.detectors.base import DetectorRunner
from clapas.detectors.health import HealthDetector
from clapas.detectors.state import GLOBAL, StateKeeper
from clapas.registry.live import Registry
from clapas.store.base import Batch, Store

TAG_PREFIX = "@partition-"


@dataclass
class Tick:
    """What a partition's batch brings besides its journaled events: the copies of other partitions' gateway
    events (as `Batch.gw_events` rows), and the newest tick's stream time and the stream's start (epoch s)."""

    gw_events: list[tuple[float, str, str, bool]] = field(default_factory=list)
    stream_time: float = -math.inf
    stream_start: float = math.inf
    merged: bool = False  # the copies were added to the batch (a retried batch is prepared again)

    def add(self, e: Event) -> None:
        """A COPY or a TICK delivery."""
        if e.topic:  # a gateway event's copy
            try:
                ev = chirpstack_gateway.parse_gateway(chirpstack_gateway.message(e.body, e.received_at, topic=e.topic))
            except ParseError:
                return  # its owner journals it quarantined
            self.gw_events.append((ev.time.timestamp(), ev.gateway_id, ev.kind, ev.online))
            return
        self.stream_time = max(self.stream_time, e.received_at.timestamp())
        with contextlib.suppress(ValueError):
            self.stream_start = min(self.stream_start, float(e.body))


def tag(partition: int) -> str:
    return f"{TAG_PREFIX}{partition:03d}"


class PartitionDetectors:
    """The `Pipeline(detectors=…)` of a worker. Each batch holds one partition's events; its `in_transaction` hook
    says which (`partition` attribute)."""

    def __init__(self, settings: Settings, store: Store, partitions: list[int], affinity: Affinity) -> None:
        from clapas.selfservice.holder import SettingsHolder

        # the departments' run-time settings (issue 16) over the file's, as `clapas run` applies them: one holder
        # for the worker's partitions, followed by each runner from its next batch
        self.holder = SettingsHolder(settings, store)
        rows = store.detector_state()
        top = int(store.sql("SELECT coalesce(max(seq), 0) AS s FROM detector_state")[0]["s"])
        self.alerting: dict[int, Alerting] = {}
        self.registry = Registry(store)  # one for every partition's runner and the worker's pipeline (issue 14)
        self.affinity = affinity
        self._saved: dict[int, list[Any]] = {}  # id(batch) → the rows as the runner's keeper knows them
        for p in partitions:
            a = self.alerting[p] = build_alerting(self.holder.current, store, load=False, holder=self.holder,
                                                  registry=self.registry)
            for det in a.runner.detectors:
                if isinstance(det, HealthDetector):
                    det.owns = _owner(affinity, p)
            _load(a.runner, rows, p, affinity)
            # state is a log ordered by batch number: this runner's rows come after any other's (the old owner's)
            a.runner.seq = max(a.runner.seq, top)

    def _runner(self, batch: Batch) -> DetectorRunner:
        return self.alerting[batch.in_transaction.partition].runner  # type: ignore[union-attr]

    def prepare(self, batch: Batch) -> None:
        runner = self._runner(batch)
        tick: Tick | None = getattr(batch.in_transaction, "tick", None)
        if tick is not None:
            if not tick.merged:
                batch.gw_events.extend(tick.gw_events)
                tick.merged = True
            runner.watermark = max(runner.watermark, tick.stream_time)  # the link readers advance to it
            if math.isfinite(tick.stream_start):
                for det in runner.detectors:
                    if isinstance(det, HealthDetector):
                        det.stream_began(tick.stream_start)
        runner.prepare(batch)
        w = batch.detector_state
        if w is not None:
            part = batch.in_transaction.partition  # type: ignore[union-attr]
            t, of = tag(part), self.affinity.of_subject
            self._saved[id(batch)] = w.rows
            # only the partition's own subjects: a detector may hold others (the air detector makes a zone for
            # every registered sensor's zone, empty here), whose rows, newer than their owner's, would replace the
            # owner's state at its next load (the air-zone gap of the fault run: a day's readings lost on takeover)
            w.rows = [(n, t if s == GLOBAL else s, v, d) for n, s, v, d in w.rows if s == GLOBAL or of(s) == part]

    def _restore(self, batch: Batch) -> None:
        w = batch.detector_state
        if w is not None:
            w.rows = self._saved.pop(id(batch), w.rows)

    def committed(self, batch: Batch) -> None:
        self._restore(batch)
        self._runner(batch).committed(batch)

    def rolled_back(self, batch: Batch) -> None:
        self._restore(batch)
        self._runner(batch).rolled_back(batch)


def _owner(affinity: Affinity, partition: int) -> Any:
    return lambda subject: affinity.of_subject(subject) == partition


def _load(runner: DetectorRunner, rows: list[tuple[str, str, str, bytes]], partition: int,
          affinity: Affinity) -> None:
    """The partition's saved rows into `runner`: its subjects, and its tagged scalars as the scalars."""
    t = tag(partition)
    mine = [(n, GLOBAL if s == t else s, v, d) for n, s, v, d in rows
            if s == t or (s != GLOBAL and not s.startswith(TAG_PREFIX) and affinity.of_subject(s) == partition)]
    runner.keeper = StateKeeper(runner.detectors)
    saved = runner.keeper.load(mine)
    if saved is not None:
        runner.watermark, runner.uplinks, runner.seq = saved
        runner.restored()
