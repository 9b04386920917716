"""The spool: a local, append-only log of what the MQTT subscribers received, between the broker and the store.

Why: a message must never be acknowledged to the broker before it is safe, and an outage of the store must not make
clapas stop reading (the broker would drop QoS 0 messages and, missing keepalives, the session). So every received
message is appended here first and the pipeline is fed from here, in order, by its own thread (`Feeder`):

- a QoS 1 message is acknowledged once its group of records is fsync'd (one fsync per group the spool thread
  writes, not per message); the event loop never waits for the disk or the store;
- while the store is slow or down the feeder waits and the spool grows on disk, up to `max_bytes`; only then is
  the broker slowed (`full`: the subscribers stop reading);
- records are released when the batch holding them is committed (`release`, called by the writer); whatever was
  not released is fed again on the next start, in order — what had in fact been committed (a crash between the
  commit and the release) is dropped by the pipeline's dedupe keys.

On disk: segment files `<first seq>.spool`, each a run of records (u32 length, u32 CRC-32, then msgpack
[seq, received µs since the epoch, source, event, fmt, topic, raw]), and `released` (the highest seq committed). A
record torn by a crash mid-write fails its CRC and is cut off, with everything after it in that segment, on open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import msgspec

from clapas.model import Message

log = logging.getLogger("clapas.spool")

# A segment is closed and a new one started past this size: released segments are deleted whole, so the disk used
# by records already committed stays under about one segment.
SEGMENT_BYTES = 64 * 1024**2
# Without a QoS 1 message waiting, the spool fsyncs at most this often (QoS 0 promises nothing across a crash of
# the machine; a crash of the process loses nothing written, the page cache keeps it).
IDLE_FSYNC_S = 1.0
# The last records appended are also kept in memory (up to this many), so that a feeder that keeps up takes them
# from there rather than reading the disk back; one that is behind (the store is down) reads the segments.
HOT_RECORDS = 50_000
# While the disk refuses writes (full), the spool retries at most this far apart.
SPOOL_RETRY_MAX_S = 2.0
_HEAD = struct.Struct("<II")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(tuple).decode


class _Segment:
    __slots__ = ("first", "last", "path", "size")

    def __init__(self, path: Path, first: int) -> None:
        self.path, self.first, self.last, self.size = path, first, first - 1, 0


def _micros(t: datetime) -> int:
    return (t - _EPOCH) // _MICRO


def _record(seq: int, m: Message) -> bytes:
    body = _encode((seq, _micros(m.received_at), m.source, m.event, m.fmt, m.topic, m.raw))
    return _HEAD.pack(len(body), zlib.crc32(body)) + body


def _message(body: bytes) -> tuple[int, Message]:
    seq, us, source, event, fmt, topic, raw = _decode(body)
    return seq, Message(source=source, event=event, fmt=fmt, raw=raw, topic=topic,
                        received_at=_EPOCH + us * _MICRO)


def _scan(path: Path) -> tuple[int, int, int]:
    """(first seq, last seq, bytes of whole, valid records) of a segment; stops at the first torn record."""
    first = last = -1
    good = 0
    with path.open("rb") as f:
        data = f.read()
    while good + _HEAD.size <= len(data):
        n, crc = _HEAD.unpack_from(data, good)
        body = data[good + _HEAD.size: good + _HEAD.size + n]
        if len(body) < n or zlib.crc32(body) != crc:
            break
        seq = _decode(body)[0]
        first = seq if first < 0 else first
        last = seq
        good += _HEAD.size + n
    return first, last, good


class Spool:
    """Thread-safe: `append` from the event loop, `read` from the feeder, `release` from the writer."""

    def __init__(self, directory: str | Path, max_bytes: int, *, segment_bytes: int = SEGMENT_BYTES,
                 on_durable: Callable[[int], None] | None = None) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.on_durable = on_durable  # called (from the spool thread) with the highest seq fsync'd
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # records to write, or closing
        self._written_cv = threading.Condition(self._lock)  # records readable
        self._buf: list[bytes] = []
        self._hot: deque[tuple[int, Message]] = deque()
        self._buf_bytes = 0
        self._buf_ack = False  # a record of the buffer waits for an fsync (QoS 1)
        self._closing = False
        self.error: str | None = None  # the disk's last refusal, while it lasts
        self._released_path = self.dir / "released"
        try:
            self.released = int(self._released_path.read_text())
        except (OSError, ValueError):
            self.released = 0
        self._segments: deque[_Segment] = deque()
        self._open_segments()
        last = self._segments[-1].last if self._segments else self.released
        self.next_seq = max(last, self.released) + 1
        self.written = self.durable = self.next_seq - 1  # what is on disk at open is taken as durable
        self._times: deque[tuple[int, float]] = deque()  # (last seq of a group, wall time it was received)
        if self.written > self.released:
            self._times.append((self.written, min(s.path.stat().st_mtime for s in self._segments)))
        self._out = self._new_segment(self.next_seq) if not self._segments else self._segments[-1].path.open("ab")
        self._last_fsync = time.monotonic()
        self._reader: tuple[int, Any, _Segment] | None = None  # (next seq, open file, its segment)
        self.recovered = self.written - self.released  # records left by the previous run, fed again
        self._thread = threading.Thread(target=self._run, name="clapas-spool", daemon=True)
        self._thread.start()

    # opening ------------------------------------------------------------------------------------------------------
    def _open_segments(self) -> None:
        for path in sorted(self.dir.glob("*.spool"), key=lambda p: int(p.stem)):
            first, last, good = _scan(path)
            if good < path.stat().st_size:
                log.warning("spool: %s ends with a torn record (a crash mid-write); cut at byte %d", path, good)
                with path.open("r+b") as f:
                    f.truncate(good)
            if last < 0 or last <= self.released:
                path.unlink()
                continue
            seg = _Segment(path, first)
            seg.last, seg.size = last, good
            self._segments.append(seg)

    def _new_segment(self, first: int) -> Any:
        seg = _Segment(self.dir / f"{first:020d}.spool", first)
        self._segments.append(seg)
        return seg.path.open("ab")

    # appending (event loop) -----------------------------------------------------------------------------------------
    def append(self, m: Message, ack: bool = False) -> int:
        """Add a message; returns its seq. With `ack`, the next group is fsync'd (then `on_durable` tells)."""
        with self._lock:
            seq = self.next_seq
            self.next_seq = seq + 1
            rec = _record(seq, m)
            self._buf.append(rec)
            self._buf_bytes += len(rec)
            if len(self._hot) < HOT_RECORDS:
                self._hot.append((seq, m))
            if ack:
                self._buf_ack = True
            if len(self._buf) == 1:
                self._wake.notify()
            return seq

    # the spool thread -----------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._buf and not self._closing:
                    self._wake.wait(IDLE_FSYNC_S)
                    if not self._buf and self.written > self.durable:
                        break  # idle: make what QoS 0 wrote durable too
                buf, need_sync = self._buf, self._buf_ack or self._closing
                self._buf, self._buf_bytes, self._buf_ack = [], 0, False
                last = self.next_seq - 1
                closing = self._closing
            self._write_until_done(b"".join(buf) if buf else b"", last, need_sync)
            if closing:
                with self._lock:
                    if not self._buf:
                        return

    def _write_until_done(self, data: bytes, last: int, need_sync: bool) -> None:
        """Write (and fsync) a group, retrying while the disk refuses it (full, I/O error): nothing is given up, the
        QoS 1 messages of the group stay unacknowledged meanwhile (the broker keeps them), and `full` is true so
        that the subscribers stop reading until the disk takes writes again."""
        delay = 0.1
        while True:
            try:
                if data:
                    self._write(data, last)
                    data = b""
                if need_sync or time.monotonic() - self._last_fsync >= IDLE_FSYNC_S:
                    self._fsync()
            except OSError as e:
                if self.error is None:
                    log.error("spool: cannot write %s (%s); received messages wait unacknowledged, retrying",
                              self.dir, e)
                self.error = f"{type(e).__name__}: {e}"
                self._reopen()
                time.sleep(delay)
                delay = min(delay * 2, SPOOL_RETRY_MAX_S)
                continue
            if self.error is not None:
                log.warning("spool: %s takes writes again", self.dir)
                self.error = None
            return

    def _reopen(self) -> None:
        """After a failed write: drop what the failed write may have left past the last whole record."""
        seg = self._segments[-1]
        if self._out is not None:
            with contextlib.suppress(OSError):  # its buffered bytes cannot be written either; the fd is closed anyway
                self._out.close()
            self._out = None
        try:
            out = seg.path.open("ab")
        except OSError as e:  # tried again before the next write
            log.error("spool: cannot reopen %s: %s", seg.path, e)
            return
        try:
            out.truncate(seg.size)  # shrinking needs no space
        except OSError as e:
            out.close()
            log.error("spool: cannot cut %s back to its last whole record: %s", seg.path, e)
            return
        self._out = out

    def _write(self, data: bytes, last: int) -> None:
        if self._out is None:
            self._reopen()
            if self._out is None:
                raise OSError(f"spool segment {self._segments[-1].path} cannot be opened")
        seg = self._segments[-1]
        if seg.size >= self.segment_bytes:
            self._fsync()
            self._out.close()
            self._out = None
            with self._lock:
                self._out = self._new_segment(seg.last + 1)
                seg = self._segments[-1]
        self._out.write(data)
        self._out.flush()
        with self._lock:
            seg.size += len(data)
            seg.last = last
            self.written = last
            self._times.append((last, time.time()))
            self._written_cv.notify_all()

    def _fsync(self) -> None:
        target = self.written
        if target <= self.durable:
            return
        if self._out is None:
            raise OSError("spool segment not open")
        os.fsync(self._out.fileno())
        self._last_fsync = time.monotonic()
        self.durable = target
        if self.on_durable is not None:
            self.on_durable(target)

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything appended so far is fsync'd (called on stop, before the last acknowledgements)."""
        with self._lock:
            target = self.next_seq - 1
            self._buf_ack = True
            self._wake.notify()
        deadline = time.monotonic() + timeout
        while self.durable < target:
            if time.monotonic() > deadline:
                return False
            with self._lock:
                self._buf_ack = self._buf_ack or bool(self._buf)
                self._wake.notify()
            time.sleep(0.005)
        return True

    # reading (the feeder) -------------------------------------------------------------------------------------------
    def read(self, after: int, limit: int, timeout: float) -> list[tuple[int, Message]]:
        """Up to `limit` records after seq `after`, in order, waiting up to `timeout` for the first."""
        with self._lock:
            if self.written <= after:
                self._written_cv.wait(timeout)
            written = self.written
            if written <= after:
                return []
            hot = self._hot
            while hot and hot[0][0] <= after:
                hot.popleft()
            if hot and hot[0][0] == after + 1:  # in memory: no need to read the disk back
                out = []
                while hot and len(out) < limit and hot[0][0] <= written:
                    out.append(hot.popleft())
                return out
            if self._reader is None or self._reader[0] != after + 1:
                seg = next((s for s in self._segments if s.first <= after + 1 <= s.last), None)
                if seg is None:
                    return []
                if self._reader is not None:
                    self._reader[1].close()
                f = seg.path.open("rb")
                self._reader = (seg.first, f, seg)
            nxt, f, seg = self._reader
            segs = list(self._segments)
        out: list[tuple[int, Message]] = []
        while len(out) < limit and nxt <= written:
            if nxt > seg.last:  # on to the next segment
                following = next((s for s in segs if s.first == nxt), None)
                if following is None:
                    break
                f.close()
                seg, f = following, following.path.open("rb")
            head = f.read(_HEAD.size)
            n, _crc = _HEAD.unpack(head)
            seq, m = _message(f.read(n))
            if seq <= after:  # positioning at the start of a segment
                nxt = seq + 1
                continue
            out.append((seq, m))
            nxt = seq + 1
        with self._lock:
            self._reader = (nxt, f, seg)
        return out

    # releasing (the writer, after a commit) -------------------------------------------------------------------------
    def release(self, upto: int) -> None:
        """Records up to `upto` are committed: forget them (whole segments are deleted)."""
        with self._lock:
            if upto <= self.released:
                return
            self.released = upto
            while self._times and self._times[0][0] <= upto:
                self._times.popleft()
            gone = []
            while len(self._segments) > 1 and self._segments[0].last <= upto:
                gone.append(self._segments.popleft())
        for seg in gone:
            seg.path.unlink(missing_ok=True)
        tmp = self._released_path.with_suffix(".tmp")
        tmp.write_text(str(upto))
        os.replace(tmp, self._released_path)

    # state ----------------------------------------------------------------------------------------------------------
    @property
    def bytes(self) -> int:
        """Bytes on disk and in the buffer (what counts against `max_bytes`)."""
        with self._lock:
            return sum(s.size for s in self._segments) + self._buf_bytes

    @property
    def full(self) -> bool:
        return self.error is not None or self.bytes >= self.max_bytes

    @property
    def pending(self) -> int:
        """Records received and not yet committed."""
        return self.next_seq - 1 - self.released

    def oldest_age_s(self) -> float:
        """Age of the oldest record not yet committed (0 when none)."""
        with self._lock:
            if not self._times or self.next_seq - 1 <= self.released:
                return 0.0
            return max(0.0, time.time() - self._times[0][1])

    def stats(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "max_bytes": self.max_bytes, "pending": self.pending,
                "oldest_age_s": round(self.oldest_age_s(), 3), "full": self.full, "dir": str(self.dir),
                "error": self.error}

    def close(self) -> None:
        """Write and fsync what is buffered, stop the spool thread, close the files."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join()
        if self._out is not None:
            self._out.close()
        if self._reader is not None:
            self._reader[1].close()


class _Sink(Protocol):
    def submit_many(self, messages: list[Message], mark: int | None = None) -> None: ...


class Feeder:
    """Feeds the pipeline from the spool, in order, in its own thread: the pipeline may wait (the store is down, the
    writer is behind) without ever blocking the event loop. Each group carries its last seq (`mark`): the writer
    releases the spool up to it once the batch holding it is committed."""

    def __init__(self, spool: Spool, pipeline: _Sink, group: int = 2_000) -> None:
        self.spool = spool
        self.pipeline = pipeline
        self.group = group
        self.fed = spool.released  # highest seq handed to the pipeline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clapas-feeder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            records = self.spool.read(self.fed, self.group, 0.05)
            if records:
                self.pipeline.submit_many([m for _, m in records], mark=records[-1][0])
                self.fed = records[-1][0]
            elif stopping and self.fed >= self.spool.written:
                return

    def stop(self, timeout: float | None = None) -> bool:
        """Feed what is written, then stop; False if the pipeline did not take it all in `timeout`."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()


def default_dir(store_url: str) -> Path:
    """Where the spool lives when `spool_dir` is not set: beside a DuckDB file, or var/spool/<database> (one spool
    per store, so that two stores never feed each other's records)."""
    from urllib.parse import urlparse

    if store_url.startswith("duckdb://"):
        path = store_url.removeprefix("duckdb://")  # as DuckDBStore reads it
        path = path.removeprefix("/") if path.startswith("//") else path
        if path not in ("", ":memory:", "/:memory:"):
            return Path(path).with_suffix(".spool")
        import tempfile

        return Path(tempfile.mkdtemp(prefix="clapas-spool-"))  # an in-memory store keeps nothing across runs
    u = urlparse(store_url)
    name = f"{u.hostname or 'local'}_{u.port or 5432}_{u.path.strip('/') or 'postgres'}"
    return Path("var/spool") / name
