"""Detectors per partition (partitioned mode): what makes a worker's alerts those of a single process.

Each partition a worker holds gets its own `DetectorRunner`, with its own watermark, fed only with that
partition's events, in the partition's order. A zone's devices share a partition (`connectors.broker.Affinity`),
so every rule over a zone or a device sees exactly what a single process would, and the period rules close on the
partition's own stream time — never early because another partition, read ahead during a backlog, has moved on.

Saved state: the subjects (device EUIs, zone ids) are the partition's own; the rows without a subject (each
detector's scalars and the runner's watermark, `state.GLOBAL`) are saved under the partition's tag instead, so
that partitions never overwrite each other's. On takeover a runner loads only its partition's rows.

Not yet in partitioned mode: the device and network health rules (issue 13). Gateway events carry no device to
route by, and silence is judged on each partition's own stream time, which made a 3-worker run open 101 silent
alerts where one process opens 22; `partition_settings` turns them off until both are designed for partitions.
What that needs: (1) gateway events are keyed by their whole topic (`broker.device_key`), so a gateway's stats and
conn events land on two unrelated partitions, and its orphans (devices heard only by it) live on others: route
them by gateway id to every partition (each judges its own devices) with one partition owning the gateway's
subject, the same one `Affinity.of_subject` gives its saved state; (2) `never_seen` walks the whole registry, so
every partition opens it for every other partition's devices: each runner needs its partition's registry;
(3) a partition whose devices all fall silent (a zone's gateway down: a zone is one partition) gets no events, so
its watermark stops and silence never opens: the router must send stream-time ticks into every partition.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from clapas.alerts.wiring import Alerting, build_alerting
from clapas.config import Settings
from clapas.connectors.broker import Affinity
from clapas.detectors.base import DetectorRunner
from clapas.detectors.state import GLOBAL, StateKeeper
from clapas.registry.live import Registry
from clapas.store.base import Batch, Store

TAG_PREFIX = "@partition-"
log = logging.getLogger("clapas.worker")


def partition_settings(settings: Settings) -> Settings:
    """The settings a worker's detectors run with: the health rules off (see the module docstring)."""
    if not settings.health.enabled:
        return settings
    log.warning("partitioned mode: the device and network health rules ([health]) do not run in workers yet")
    return msgspec.structs.replace(settings, health=msgspec.structs.replace(settings.health, enabled=False))


def tag(partition: int) -> str:
    return f"{TAG_PREFIX}{partition:03d}"


class PartitionDetectors:
    """The `Pipeline(detectors=…)` of a worker. Each batch holds one partition's events; its `in_transaction` hook
    says which (`partition` attribute)."""

    def __init__(self, settings: Settings, store: Store, partitions: list[int], affinity: Affinity) -> None:
        from clapas.selfservice.holder import SettingsHolder

        # the departments' run-time settings (issue 16) over the file's, as `clapas run` applies them: one holder
        # for the worker's partitions, followed by each runner from its next batch
        self.holder = SettingsHolder(partition_settings(settings), store)
        rows = store.detector_state()
        top = int(store.sql("SELECT coalesce(max(seq), 0) AS s FROM detector_state")[0]["s"])
        self.alerting: dict[int, Alerting] = {}
        self.registry = Registry(store)  # one for every partition's runner and the worker's pipeline (issue 14)
        self.affinity = affinity
        self._saved: dict[int, list[Any]] = {}  # id(batch) → the rows as the runner's keeper knows them
        for p in partitions:
            a = self.alerting[p] = build_alerting(self.holder.current, store, load=False, holder=self.holder,
                                                  registry=self.registry)
            _load(a.runner, rows, p, affinity)
            # state is a log ordered by batch number: this runner's rows come after any other's (the old owner's)
            a.runner.seq = max(a.runner.seq, top)

    def _runner(self, batch: Batch) -> DetectorRunner:
        return self.alerting[batch.in_transaction.partition].runner  # type: ignore[union-attr]

    def prepare(self, batch: Batch) -> None:
        self._runner(batch).prepare(batch)
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
