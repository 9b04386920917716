"""`clapas worker`: one of several processes sharing a city's partitions (partitioned mode, issue 15).

A worker leases partitions in PostgreSQL (`store.leases`), reads them from the broker from their committed
positions on, and hands each batch of events to the ordinary pipeline with a hook that commits, in the batch's own
transaction, the partitions' new positions under the lease epochs it holds. Journal rows, observations, detector
state, alert changes, outbox rows and positions therefore commit together or not at all: after a crash (or a
takeover) reading resumes exactly after the last committed event, and nothing is applied twice.

Ownership changes (a partition taken over, another worker joining or leaving) are handled crash-only and
simply: the worker stops reading, lets the pipeline commit what it holds, gives back or takes partitions, and
starts a new pipeline whose detectors load their state from the store (the state the previous owner committed).
A worker that finds it lost a lease (it was frozen past it, or cut from PostgreSQL) exits at once with status
75 (EX_TEMPFAIL) — its pending batches cannot commit anyway — and its supervisor (systemd) starts it again.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

from clapas.alerts.notifiers import build_notifiers
from clapas.alerts.outbox import OutboxWorker
from clapas.cli import add_config_argument
from clapas.config import Settings, load_settings
from clapas.connectors import chirpstack, chirpstack_gateway
from clapas.connectors.broker import ORIGINAL, Affinity, BrokerError, Consumer, Delivery, gateway_of, open_broker
from clapas.pipeline.ingest import Pipeline
from clapas.pipeline.partition_detectors import PartitionDetectors, Tick
from clapas.store.base import Store, StoreError, open_store
from clapas.store.leases import LeaseLost, Leases, fence

log = logging.getLogger("clapas.worker")

EXIT_LEASE_LOST = 75  # EX_TEMPFAIL: start me again
RENEW_FRACTION = 1 / 3  # leases are renewed three times per lease period


class Worker:
    def __init__(self, settings: Settings, worker_id: str | None = None, store: Store | None = None,
                 exit_on_lost: bool = True) -> None:
        """`exit_on_lost`: end the process at once when a lease is lost (what `clapas worker` does); else only
        stop (tests running a worker in a thread)."""
        if not settings.store.startswith(("postgresql://", "postgres://")):
            raise StoreError("clapas worker needs a PostgreSQL store (several processes write it)")
        p = settings.partitioned
        self.settings = settings
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.store = store or open_store(settings.store, timezone=settings.timezone)
        self.leases = Leases(settings.store, self.id, p.partitions, p.lease_s)
        self.broker = open_broker(p.broker_url, p.partitions, p.prefix, p.stream_max_age)
        self.held: dict[int, int] = {}  # partition → epoch
        self.live = 1
        self.stop = threading.Event()
        self.lost = threading.Event()  # set by the renewer or the commit hook: exit
        self.pipeline: Pipeline | None = None
        self.detectors: PartitionDetectors | None = None
        self.consumer: Consumer | None = None
        self.generations = 0
        self._lock = threading.Lock()  # `held` between the loop and the renewer
        self.exit_on_lost = exit_on_lost

    # leases -----------------------------------------------------------------------------------------------
    def _renew_loop(self) -> None:
        """Heartbeat and lease renewal on their own connection, whatever the pipeline is doing."""
        period = self.settings.partitioned.lease_s * RENEW_FRACTION
        while not self.stop.wait(period):
            try:
                self.live = self.leases.heartbeat()
                with self._lock:
                    held = dict(self.held)
                kept = self.leases.renew(held)
            except Exception:
                log.exception("renewing the leases failed; retrying")
                continue
            with self._lock:
                gone = (set(held) & set(self.held)) - kept  # not those given back meanwhile
            if gone:
                self._lose(f"partitions {sorted(gone)} were taken over")
                return

    def _lose(self, why: str) -> None:
        """This worker no longer owns what it holds: nothing more of it may commit."""
        self.lost.set()
        log.error("worker %s: %s; exiting without committing more", self.id, why)
        if self.exit_on_lost:
            logging.shutdown()
            os._exit(EXIT_LEASE_LOST)  # the writer may be retrying a batch that can never commit: do not wait

    def _fence(self, partition: int, epoch: int, position: int) -> _Fence:
        return _Fence(self, partition, epoch, position)

    # generations ------------------------------------------------------------------------------------------
    def _start_generation(self) -> None:
        """A pipeline and detectors loaded from the store, reading the held partitions from their positions."""
        s = self.settings
        held = sorted(self.held)
        affinity = Affinity.from_devices(s.partitioned.partitions, self.store.devices(limit=10_000_000))
        self.detectors = PartitionDetectors(s, self.store, held, affinity) if s.alerts.enabled else None
        self.pipeline = Pipeline(self.store, s.pipeline, s.profiles, detectors=self.detectors)
        committed = self.leases.positions()
        self.consumer = self.broker.consume({p: committed[p] for p in self.held})
        self.generations += 1
        log.info("worker %s: partitions %s (%d live workers)", self.id, sorted(self.held), self.live)

    def _end_generation(self) -> bool:
        """Stop reading and commit what the pipeline holds; False if that could not be done (exit)."""
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        if self.pipeline is not None:
            ok = self.pipeline.drain(self.settings.pipeline.stop_timeout_s)
            if not ok or self.lost.is_set():
                return False
            self.pipeline.close()
            self.pipeline = None
        return True

    def _rebalance(self) -> bool:
        """Take free partitions up to this worker's share, give back those above it; True if ownership changed."""
        share = self.leases.share(self.live)
        with self._lock:
            extra = len(self.held) - share
        if extra > 0:
            if not self._end_generation():
                return True
            with self._lock:
                give = dict(sorted(self.held.items())[-extra:])
                for p in give:
                    del self.held[p]
            self.leases.release(give)
            log.info("worker %s: gave back %s (share %d)", self.id, sorted(give), share)
            return True
        got = self.leases.acquire(share - len(self.held))
        if not got:
            return False
        if not self._end_generation():
            self.leases.release({p: e for p, (e, _) in got.items()})
            return True
        with self._lock:
            self.held.update({p: e for p, (e, _) in got.items()})
        return True

    # the loop ---------------------------------------------------------------------------------------------
    def run(self) -> int:
        p = self.settings.partitioned
        self._declare()
        self.leases.heartbeat()
        # workers started together see each other before taking their shares (less moving at start)
        self.stop.wait(p.lease_s * RENEW_FRACTION)
        self.live = self.leases.heartbeat()
        renewer = threading.Thread(target=self._renew_loop, name="clapas-leases", daemon=True)
        renewer.start()
        outbox = self._start_outbox()
        next_balance = 0.0
        try:
            while not self.stop.is_set():
                if self.lost.is_set():
                    return EXIT_LEASE_LOST
                if time.monotonic() >= next_balance:
                    next_balance = time.monotonic() + p.lease_s * RENEW_FRACTION
                    if self._rebalance() or self.pipeline is None:
                        if self.lost.is_set():
                            continue
                        self._start_generation()
                assert self.consumer is not None and self.pipeline is not None
                deliveries = self.consumer.poll(p.batch_size, p.poll_s) if self.held else []
                if not deliveries:
                    if not self.held:
                        self.stop.wait(p.poll_s)
                    continue
                self._submit(deliveries)
            if not self._end_generation():
                return EXIT_LEASE_LOST
            with self._lock:
                held, self.held = self.held, {}
            self.leases.release(held)
            self.leases.leave()
            return 0
        finally:
            self.stop.set()
            if outbox is not None:
                outbox.join(10)

    def _declare(self) -> None:
        """The partitions exist (declared idempotently); waits for a broker that is restarting."""
        delay = 0.5
        while not self.stop.is_set():
            try:
                self.broker.declare()
                return
            except BrokerError as e:
                log.warning("%s; again in %.1f s", e, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 5.0)

    def _submit(self, deliveries: list[Delivery]) -> None:
        """One batch per partition (each partition has its own detectors), with its position and lease epoch; the
        gateway copies and ticks go to its detectors only (a batch of ticks alone commits its position too)."""
        assert self.pipeline is not None
        by_partition: dict[int, list[Delivery]] = {}
        for d in deliveries:
            by_partition.setdefault(d.partition, []).append(d)
        for part, ds in sorted(by_partition.items()):
            messages = []
            fence = self._fence(part, self.held[part], ds[-1].position)
            for d in ds:
                e = d.event
                if e.role != ORIGINAL:
                    fence.tick.add(e)
                else:
                    kind = chirpstack_gateway if gateway_of(e.topic) is not None else chirpstack
                    messages.append(kind.message(e.body, e.received_at, topic=e.topic))
            self.pipeline.submit_batch(messages, fence)

    def _start_outbox(self) -> threading.Thread | None:
        """The outbox worker (notifications); any number of workers run it (rows are claimed FOR UPDATE SKIP
        LOCKED: one delivery per event)."""
        if not self.settings.alerts.enabled:
            return None
        worker = OutboxWorker(self.store, build_notifiers(self.settings.alerts, self.settings.web.language),
                              self.settings.alerts)

        async def run() -> None:
            stop = asyncio.Event()

            async def watch() -> None:
                while not self.stop.is_set():
                    await asyncio.sleep(0.2)
                stop.set()
            await asyncio.gather(worker.run(stop), watch())

        t = threading.Thread(target=lambda: asyncio.run(run()), name="clapas-outbox", daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self.broker.close()
        self.leases.close()
        self.store.close()


class _Fence:
    """A batch's `in_transaction` hook: commit its partition's position under the lease epoch, or roll back."""

    def __init__(self, worker: Worker, partition: int, epoch: int, position: int) -> None:
        self.worker, self.partition, self.epoch, self.position = worker, partition, epoch, position
        self.tick = Tick()  # the batch's gateway copies and stream time, for the partition's detectors

    def __call__(self, cur: Any) -> None:
        w = self.worker
        try:
            fence(cur, w.id, {self.partition: (self.epoch, self.position)}, w.settings.partitioned.lease_s)
        except LeaseLost as e:
            w._lose(str(e))
            raise


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    logging.getLogger().setLevel(settings.log_level.upper())
    w = Worker(settings, args.id)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: w.stop.set())
    code = w.run()
    w.close()
    return code


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker", help="partitioned mode: process a share of the city's partitions (several can run)",
        description="Lease partitions in PostgreSQL, read them from RabbitMQ streams and store, detect and alert "
        "exactly once. Needs CLAPAS_STORE=postgresql://… and [partitioned] settings (CLAPAS_PARTITIONED_*). "
        f"Exits {EXIT_LEASE_LOST} if it lost a lease (run it under a supervisor that restarts it).")
    add_config_argument(p)
    p.add_argument("--id", default=None, help="worker name (default host-pid-random)")
    p.set_defaults(func=cmd_worker)
