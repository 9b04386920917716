"""The flow from a received message to stored rows: journal, dedupe, decode, batch, write.

Every message is journaled raw, whatever becomes of it: stored (decoded), quarantined (with its reason) or
duplicate. Journal rows and the observations decoded from them are committed in the same transaction, so the
journal is never behind the data. Per message the work is a few microseconds of Python; the store is written by
one writer thread, a batch at a time (`batch_size` uplinks or `flush_interval_s`, whichever comes first), and
ingestion waits when `max_pending_batches` are queued (backpressure, nothing dropped).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from clapas.config import PipelineSettings, ProfileSettings
from clapas.connectors import ParseError, chirpstack_gateway, parser_for
from clapas.decoders import DecodeError
from clapas.model import Message, Uplink
from clapas.pipeline import metrics
from clapas.pipeline.decoding import DeviceContext, decode
from clapas.pipeline.dedupe import Deduplicator
from clapas.registry.live import Registry
from clapas.store.base import DUPLICATE, QUARANTINED, STORED, Batch, DeviceSeen, Store

log = logging.getLogger("clapas.pipeline")

# Messages above this size are journaled truncated (with the fact said in the error): no LoRaWAN event is near it.
MAX_MESSAGE_BYTES = 256 * 1024
_STOP = object()
# A batch write taking longer than this is reported (a batch of 10,000 normally commits well under a second).
WRITE_STALL_S = 5.0
# Batch journal columns, in the order `_add` builds each row
JOURNAL_FIELDS = ("j_id", "j_received", "j_time", "j_source", "j_event", "j_fmt", "j_topic", "j_eui", "j_fport",
                  "j_fcnt", "j_dedup", "j_status", "j_error", "j_rssi", "j_snr", "j_sf", "j_raw")


# the decoded attribute holding the device's own clock (epoch s or RFC 3339), for the clock-skew check
DEVICE_TIME_ATTRIBUTE = "device_time"
# what the pipeline adds beside it (domain-rules §7.2): device time − network time of that uplink (s), and the
# network time it was measured at, kept in the device's attributes for the health routes
CLOCK_SKEW_ATTRIBUTE, CLOCK_CHECKED_ATTRIBUTE = "clock_skew_s", "clock_checked_at"


def _epoch(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            return None
        return t.timestamp() if t.tzinfo else None
    return None


def _link(up: Uplink, device_time: float | None) -> tuple[Any, ...]:
    """What the health rules read of one uplink or status event (`Batch.links`)."""
    power = None
    if up.event == "status" and up.event_data is not None:
        power = ("external" if up.event_data.get("externalPowerSource") else
                 "unknown" if up.event_data.get("batteryLevelUnavailable") else "battery")
    return (up.time.timestamp(), up.dev_eui, up.event, up.f_cnt, up.sf, up.bw, up.rx, power, device_time)


class BatchDetectors(Protocol):
    """What the writer asks of detectors whose state is committed with each batch (`DetectorRunner`)."""

    def prepare(self, batch: Batch) -> None: ...
    def committed(self, batch: Batch) -> None: ...
    def rolled_back(self, batch: Batch) -> None: ...


class Pipeline:
    def __init__(self, store: Store, settings: PipelineSettings | None = None,
                 profiles: dict[str, ProfileSettings] | None = None,
                 on_commit: Callable[[Batch], None] | None = None, detectors: BatchDetectors | None = None,
                 registry: Registry | None = None) -> None:
        """`on_commit`: called with each batch after it is committed. `detectors` (a `DetectorRunner` of `clapas
        run`): run on each batch before its transaction, which commits their state and alert changes with it.
        `registry`: the process's one `Registry` (default: the detectors', else one read from the store), in which
        the pipeline looks devices up and registers those it hears first (issue 14: never a second copy)."""
        self.store = store
        self.settings = settings or PipelineSettings()
        self.profiles = profiles or {}
        self.on_commit = on_commit
        self.detectors = detectors
        self.dedupe = Deduplicator(self.settings.dedupe_window, self.settings.fcnt_window)
        self.dedupe.warm(store.recent_dedup_keys(self.settings.dedupe_window))
        self.registry: Registry = registry or getattr(detectors, "registry", None) or Registry(store)
        self._contexts: dict[str, DeviceContext] = {}
        self._batch = Batch()
        self._journal: list[tuple[Any, ...]] = []  # one row per message, in JOURNAL_FIELDS order
        self._pending_at_last_tick = 0
        self._seen: dict[str, tuple[Uplink, DeviceContext, dict[str, Any] | None]] = {}
        self._device_time: float | None = None  # of the uplink being decoded (see DEVICE_TIME_ATTRIBUTE)
        # what was last sent to the store of each device (context, attributes): unchanged devices are not resent
        self._reported: dict[str, tuple[DeviceContext | None, dict[str, Any] | None]] = {}
        self._batch_started = 0.0
        self._lock = threading.Lock()  # submit() may be called from several threads (HTTP, MQTT)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.settings.max_pending_batches)
        self._submitted = 0
        self._committed = 0
        self._done = threading.Condition()
        self.write_errors = 0
        # the writer's view of the store, for /healthz and /metrics (read without touching the store)
        self.store_error: str | None = None  # why the last write failed, while it has not succeeded since
        self.store_down_since: float | None = None  # time.time() of the first failure of the current outage
        self.writing_since: float | None = None  # time.time() the write in progress started (a hung network)
        self.counts = store.counts()  # the journal's accounting, kept up to date per batch (no scan per request)
        # spool (issue 9): `submit_many(…, mark=seq)` says every spooled message up to seq is submitted; once the
        # batch holding it is committed the writer calls `on_mark(seq)` (the spool releases it)
        self.on_mark: Callable[[int], None] | None = None
        self._mark: int | None = None
        self._writer = threading.Thread(target=self._write_loop, name="clapas-writer", daemon=True)
        self._writer.start()

    # ingestion -------------------------------------------------------------------------------------------
    def submit(self, m: Message) -> None:
        """Take one message. Never raises for bad input: what cannot be used is quarantined."""
        with self._lock:
            self._add(m)
            if len(self._journal) >= self.settings.batch_size:
                self._flush_locked()

    def submit_many(self, messages: list[Message], mark: int | None = None) -> None:
        with self._lock:
            for m in messages:
                self._add(m)
                if len(self._journal) >= self.settings.batch_size:
                    self._flush_locked()
            if mark is not None:
                self._mark = mark

    def submit_batch(self, messages: list[Message], in_transaction: Callable[[Any], None]) -> None:
        """Take `messages` as one batch of their own, whose transaction also runs `in_transaction(cursor)` after
        its rows (partitioned workers commit the consumed positions under their lease there; raising from it
        rolls the whole batch back, and the writer retries it)."""
        with self._lock:
            self._flush_locked()
            for m in messages:
                self._add(m)
            self._flush_locked(in_transaction)

    def submit_committed(self, m: Message, timeout: float) -> bool:
        """Take one message and wait until the batch holding it is committed (at most `timeout` s): for a caller
        that must not acknowledge before (the HTTP ingest without a spool). The batch is handed to the writer as
        soon as none waits for it (a group commit: what arrives meanwhile joins the next batch). False on timeout
        (the message is still on its way: a retry is dropped as a duplicate)."""
        with self._lock:
            self._add(m)
            ticket = self._submitted + len(self._journal)  # batches commit in order: committed ≥ ticket says it
            if len(self._journal) >= self.settings.batch_size:
                self._flush_locked()
        deadline = time.monotonic() + timeout
        while True:
            if self._submitted < ticket and self._queue.empty():
                self.flush()
            left = deadline - time.monotonic()
            with self._done:
                if self._done.wait_for(lambda: self._committed >= ticket,
                                       max(0.0, min(left, self.settings.flush_interval_s))):
                    return True
            if left <= 0:
                return False

    def _context(self, up: Uplink) -> DeviceContext:
        ctx = self._contexts.get(up.dev_eui)
        if ctx is None or (up.info is not None and not ctx.matches(up.info)):
            ctx = DeviceContext(up.info, self.registry.by_eui.get(up.dev_eui), self.profiles)
            self._contexts[up.dev_eui] = ctx
        return ctx

    def _add(self, m: Message, journal_id: int | None = None) -> None:
        b = self._batch
        if not self._journal:
            self._batch_started = time.monotonic()
        raw = m.raw
        error: str | None = None
        if len(raw) > MAX_MESSAGE_BYTES:
            error = f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}; journaled truncated"
            raw = raw[:MAX_MESSAGE_BYTES]
        if m.source == chirpstack_gateway.SOURCE:
            self._add_gateway(m, raw, error, journal_id)
            return
        up: Uplink | None = None
        status = QUARANTINED
        eui: str | None = None
        try:
            parse, eui_hint = parser_for(m.source)
        except ParseError as e:
            parse = eui_hint = None
            error = error or str(e)
        if error is None:
            try:
                up = parse(m)
                eui = up.dev_eui
            except ParseError as e:
                error = str(e)
            except Exception as e:  # a parser bug quarantines the message, never stops ingestion
                error = f"parser failed: {type(e).__name__}: {e}"
        if up is None and eui_hint is not None:
            eui = eui_hint(m)
        key: str | None = None
        if up is not None:
            # an event without a deduplication id (log, txack, a TTN uplink…) is keyed by its raw frame, journaled
            # as its dedupe key: the spool feeds again after a crash what it had not released, and whatever of it
            # was committed is then recognised (the keys are warmed from the journal), never stored twice
            key = up.dedup_key or raw_key(raw)
            if journal_id is None and ((not up.dedup_key and self.dedupe.seen(key, "", None, b""))
                                       or ((up.event == "up" or up.dedup_key) and self.dedupe.seen(
                                           up.dedup_key, up.dev_eui, up.f_cnt if up.event == "up" else None,
                                           up.payload))):
                status = DUPLICATE
            else:
                status, error = self._decode_into(b, up)
                if up.event in ("up", "status"):
                    b.links.append(_link(up, self._device_time))
        if up is None:
            self._journal.append((journal_id, m.received_at, None, m.source, m.event, m.fmt, m.topic, eui, None,
                                  None, None, status, error, None, None, None, raw))
        else:
            self._journal.append((journal_id, m.received_at, up.time, m.source, m.event, m.fmt, m.topic, eui,
                                  up.f_port, up.f_cnt, key, status, error, up.rssi, up.snr, up.sf,
                                  raw))

    def _add_gateway(self, m: Message, raw: bytes, error: str | None, journal_id: int | None) -> None:
        """A Gateway Bridge event: journaled, and handed to the health rules with the batch."""
        ev = None
        if error is None:
            try:
                ev = chirpstack_gateway.parse_gateway(m)
            except ParseError as e:
                error = str(e)
        if ev is not None:
            self._batch.gw_events.append((ev.time.timestamp(), ev.gateway_id, ev.kind, ev.online))
        self._journal.append((journal_id, m.received_at, ev.time if ev else None, m.source, m.event, m.fmt, m.topic,
                              None, None, None, None, STORED if ev else QUARANTINED, error, None, None, None, raw))

    def _decode_into(self, b: Batch, up: Uplink) -> tuple[str, str | None]:
        self._device_time = None
        ctx = self._context(up)
        prev = self._seen.get(up.dev_eui)
        attributes = prev[2] if prev else None  # fields outside the catalogue decoded in this batch
        status, error = STORED, None
        if up.event in ("up", "status"):
            try:
                qids, vals, attrs = decode(up, ctx)
            except DecodeError as e:
                status, error = QUARANTINED, str(e)
            else:
                n = len(qids)
                b.o_time.extend([up.time] * n)
                b.o_eui.extend([up.dev_eui] * n)
                b.o_quantity.extend(qids)
                b.o_value.extend(vals)
                if attrs:
                    self._device_time = _epoch(attrs.get(DEVICE_TIME_ATTRIBUTE))
                    if self._device_time is not None:
                        attrs = {**attrs, CLOCK_SKEW_ATTRIBUTE: round(self._device_time - up.time.timestamp(), 3),
                                 CLOCK_CHECKED_ATTRIBUTE: up.time.isoformat()}
                    attributes = {**attributes, **attrs} if attributes else attrs
        else:
            b.ev_time.append(up.time)
            b.ev_eui.append(up.dev_eui)
            b.ev_event.append(up.event)
            b.ev_data.append(msgspec.json.encode(up.event_data or {}).decode())
        if prev is None or up.time >= prev[0].time or up.event != "up":
            self._seen[up.dev_eui] = (up if up.event == "up" or prev is None else prev[0], ctx, attributes)
        return status, error

    # writing ---------------------------------------------------------------------------------------------
    def _device_seen(self) -> dict[str, DeviceSeen]:
        out: dict[str, DeviceSeen] = {}
        reported = self._reported
        for eui, (up, ctx, attrs) in self._seen.items():
            was_ctx, was_attrs = reported.get(eui, (None, None))
            if was_ctx is ctx and (attrs is None or attrs == was_attrs):
                continue  # nothing new to say of it: its journal rows tell when it was heard
            reported[eui] = (ctx, attrs if attrs is not None else was_attrs)
            info = up.info
            out[eui] = DeviceSeen(
                eui=eui, last_seen=up.time, name=info.name if info else "", profile=info.profile if info else "",
                kind=ctx.kind, decoder=(info.tags.get("decoder", "") if info else ""), zone=ctx.zone,
                lat=ctx.lat, lon=ctx.lon, tags=info.tags if info else None,
                f_cnt=up.f_cnt, rssi=up.rssi, snr=up.snr, attributes=attrs or None,
            )
        return out

    def _flush_locked(self, in_transaction: Callable[[Any], None] | None = None) -> None:
        if not self._journal and in_transaction is None:  # (a worker's batch of ticks alone is still written)
            return
        batch = self._batch
        batch.in_transaction = in_transaction
        if self._journal:
            for name, column in zip(JOURNAL_FIELDS, zip(*self._journal, strict=True), strict=True):
                setattr(batch, name, list(column))
        self._journal = []
        batch.dev_by_eui = self._device_seen()
        self._batch, self._seen = Batch(), {}
        self._submitted += len(batch)
        mark, self._mark = self._mark, None
        self._queue.put((batch, self._batch_started, mark))  # blocks when the writer is behind: backpressure

    def flush(self) -> None:
        """Hand the current batch to the writer now."""
        with self._lock:
            self._flush_locked()

    def flush_if_due(self) -> None:
        """Called on a timer (every tick): write a batch that has waited `flush_interval_s`, or one to which nothing
        was added since the previous tick (the input went quiet: waiting longer would only add latency)."""
        n = len(self._journal)
        quiet = n == self._pending_at_last_tick
        if n and (quiet or time.monotonic() - self._batch_started >= self.settings.flush_interval_s):
            self.flush()
        self._pending_at_last_tick = len(self._journal)

    def drain(self, timeout: float | None = None) -> bool:
        """Flush and wait until everything submitted so far is committed."""
        self.flush()
        with self._done:
            return self._done.wait_for(lambda: self._committed >= self._submitted, timeout)

    def close(self) -> None:
        self.drain()
        self._queue.put(_STOP)
        self._writer.join()

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch, started, mark = item
            replay = batch.j_id and batch.j_id[0] is not None
            # before the detectors run on it (they register the devices they meet): those the store will add
            known = self.registry.by_eui
            new = [seen for eui, seen in batch.dev_by_eui.items() if eui not in known]
            self._write_until_committed(batch, replay)
            metrics.record_batch(batch, time.monotonic() - started)
            self._count(batch, replay, new)
            if mark is not None and self.on_mark is not None:
                try:
                    self.on_mark(mark)
                except Exception:
                    log.exception("releasing the spool up to %d failed", mark)
            if self.on_commit is not None:
                try:
                    self.on_commit(batch)
                except Exception:
                    log.exception("on_commit hook failed")
            with self._done:
                self._committed += len(batch)
                self._done.notify_all()

    def _write_until_committed(self, batch: Batch, replay: bool) -> None:
        """Try the batch until the store takes it, waiting at most `retry_max_s` between tries (so ingestion resumes
        within that of the store's return). Meanwhile ingestion keeps going into the spool (see spool.py)."""
        delay = min(0.25, self.settings.retry_max_s)
        failed = False
        while True:
            self.writing_since = time.time()
            try:
                if not (failed and self._committed_unheard(batch, replay)):
                    self._commit(batch, replay)
            except Exception as e:  # the store is down or refused the batch: keep it, retry, lose nothing
                failed = True
                self.writing_since = None
                self.write_errors += 1
                first = self.store_error is None
                self.store_error = f"{type(e).__name__}: {str(e).strip()[:300]}"
                if first:
                    self.store_down_since = time.time()
                    log.exception("writing a batch of %d messages failed; retrying every %.1f s at most",
                                  len(batch), self.settings.retry_max_s)
                else:
                    log.warning("store still unavailable (%s); retrying in %.1f s", self.store_error, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            self.writing_since = None
            if self.store_error is not None:
                log.warning("the store is back after %.1f s: writing resumes",
                            time.time() - (self.store_down_since or time.time()))
                self.store_error = self.store_down_since = None
            return

    def _committed_unheard(self, batch: Batch, replay: bool) -> bool:
        """After a failed try: was the batch committed all the same (the connection dropped after the server took
        the COMMIT, before its answer came back)? Then writing it again would store it twice. A message new in this
        batch (not a duplicate: its key was in no earlier batch) tells, by its key in the journal. If so the
        detectors, put back by the failure, are run on it again (the same state and alerts as committed)."""
        if replay:
            return False  # a replay replaces rows: trying it again is harmless
        key = next((k for k, st in zip(batch.j_dedup, batch.j_status, strict=True) if k and st != DUPLICATE), None)
        journaled = getattr(self.store, "journaled", None)  # (a wrapped or test store may not have it)
        if key is None or journaled is None or not journaled(key):
            return False
        log.warning("a batch of %d messages was committed although its commit was not acknowledged: not written "
                    "again", len(batch))
        if self.detectors is not None:
            self.detectors.prepare(batch)
            self.detectors.committed(batch)
        return True

    def store_problem(self) -> str | None:
        """Why the store cannot be written now, for /healthz: the last write failed, or one has hung for more than
        WRITE_STALL_S (a network that drops packets gives no error, only a wait)."""
        if self.store_error is not None:
            since = self.store_down_since or time.time()
            return f"store unreachable for {time.time() - since:.0f} s: {self.store_error}"
        started = self.writing_since
        if started is not None and time.time() - started > WRITE_STALL_S:
            return f"store not answering: a write has waited {time.time() - started:.0f} s"
        return None

    def _count(self, batch: Batch, replay: bool, new: list[DeviceSeen]) -> None:
        """Keep `counts` (what /healthz shows) as the store's own accounting would say after this batch, whose
        `new` devices were not registered before it."""
        counts = self.counts
        if not replay:
            for status in batch.j_status:
                counts[status] = counts.get(status, 0) + 1
            counts["observations"] = counts.get("observations", 0) + len(batch.o_time)
        counts["devices"] = counts.get("devices", 0) + len(new)
        for seen in new:
            self.registry.add_seen(seen)

    def _commit(self, batch: Batch, replay: bool) -> None:
        """One transaction: the batch, and what the detectors (if any) changed on it. If it fails, the detectors
        are put back as committed, so that the batch can be tried again (or later) without applying it twice."""
        if self.detectors is None:
            (self.store.replace if replay else self.store.write)(batch)
            return
        self.detectors.prepare(batch)
        try:
            (self.store.replace if replay else self.store.write)(batch)
        except BaseException:
            self.detectors.rolled_back(batch)
            raise
        self.detectors.committed(batch)

    # replay ----------------------------------------------------------------------------------------------
    def resubmit(self, m: Message, journal_id: int) -> None:
        """Re-decode a journaled message in place (replay): same journal row, observations replaced."""
        with self._lock:
            if self._journal and self._journal[0][0] is None:
                self._flush_locked()  # never mix new messages and replayed ones in one batch
            self._add(m, journal_id)
            if len(self._journal) >= self.settings.batch_size:
                self._flush_locked()

    def reload_registry(self) -> None:
        """Pick up registry changes (CSV import, GBFS stations) for devices seen from now on: the registry shared
        with the detectors is read again, the decoding contexts built from it are dropped."""
        self.registry.reload()
        with self._lock:
            self._contexts.clear()

    @property
    def pending(self) -> int:
        return self._submitted - self._committed + len(self._journal)


RAW_KEY_PREFIX = "raw:"


def raw_key(raw: bytes) -> str:
    """The dedupe key of an event that has none: a digest of its raw frame (the same frame is the same event)."""
    return RAW_KEY_PREFIX + hashlib.blake2b(raw, digest_size=16).hexdigest()


def now() -> datetime:
    return datetime.now(UTC)
