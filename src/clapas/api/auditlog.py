"""The audit log's writer: requests queue their entries, one thread writes them in batches.

A request never waits for the audit log: it appends an entry to a queue (a few microseconds) and the writer thread
chains and writes what has queued every `flush_interval_s`, or as soon as `batch_size` entries wait — one store
transaction per batch, never one per request. Entries not yet written when the process stops are written by
`close()`; a store that refuses a batch keeps it queued and retries it at the next interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from clapas.charter.audit import AuditEntry
from clapas.store.base import Store

log = logging.getLogger("clapas.audit")
ERROR_LOG_INTERVAL_S = 60.0  # a store that stays down is reported once a minute, not once a flush
MAX_QUEUED = 1_000_000  # beyond this (a store down for long), the oldest entries are dropped, loudly


class AuditWriter:
    def __init__(self, store: Store, flush_interval_s: float = 1.0, batch_size: int = 1000) -> None:
        self.store = store
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self._queue: deque[AuditEntry] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()  # one batch at a time, in queue order
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self._last_error = -ERROR_LOG_INTERVAL_S

    def record(self, entry: AuditEntry) -> None:
        """Queue one entry (called on the request path: no I/O here)."""
        self._queue.append(entry)
        if len(self._queue) > MAX_QUEUED:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped % 10_000 == 1:
                log.error("audit log: the store has not taken entries for long; %d dropped", self.dropped)
        if len(self._queue) >= self.batch_size:
            self._wake.set()
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._write_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="clapas-audit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception as e:  # the store is down: the entries stay queued for the next attempt
                now = time.monotonic()
                if now - self._last_error >= ERROR_LOG_INTERVAL_S:
                    self._last_error = now
                    log.error("audit log: writing %d entries failed (%s); retrying every %.1f s", self.pending(),
                              e, self.flush_interval_s)

    def flush(self) -> int:
        """Write what is queued now (in batches of `batch_size`); returns how many entries were written.

        Only what was queued when it started: under steady traffic, draining until the queue is empty would write
        a small batch after each one (what arrived during the last write), a transaction every few milliseconds.
        """
        written = 0
        with self._write_lock:
            due = len(self._queue)
            while written < due and self._queue:
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, due - written, len(self._queue)))]
                try:
                    self.store.append_audit(batch)
                except Exception:
                    self._queue.extendleft(reversed(batch))
                    raise
                written += len(batch)
        return written

    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception as e:
            log.error("audit log: %d entries could not be written at shutdown: %s", self.pending(), e)
