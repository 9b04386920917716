"""The spool on a real disk: order, fsync before acknowledgement, release, recovery after a crash, torn records."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from clapas.model import Message
from clapas.pipeline import spool as spool_module
from clapas.pipeline.spool import Feeder, Spool, default_dir


def msg(i: int) -> Message:
    return Message(source="chirpstack", event="up", fmt="json", raw=b'{"n": %d}' % i,
                   received_at=datetime(2026, 6, 1, 12, 0, i % 60, i, tzinfo=UTC), topic=f"t/{i}")


def read_all(spool: Spool, after: int) -> list[tuple[int, Message]]:
    out: list[tuple[int, Message]] = []
    while True:
        got = spool.read(after, 1000, 0.5)
        if not got:
            return out
        out += got
        after = got[-1][0]


@pytest.mark.parametrize("hot", [50_000, 30])
def test_records_come_back_in_order_and_whole(tmp_path, monkeypatch, hot):
    """From memory while the reader keeps up, from the segments once it is behind (30: most come from disk)."""
    monkeypatch.setattr(spool_module, "HOT_RECORDS", hot)
    spool = Spool(tmp_path, 10**9, segment_bytes=2_000)  # small segments: reading crosses many of them
    seqs = []
    for i in range(500):
        seqs.append(spool.append(msg(i)))
        if i % 25 == 24:
            assert spool.sync()  # a group; segments are closed between groups
    assert seqs == list(range(1, 501))
    got = read_all(spool, 0)
    assert [s for s, _ in got] == seqs
    assert [m for _, m in got] == [msg(i) for i in range(500)]  # every field, received_at to the microsecond
    assert len(list(tmp_path.glob("*.spool"))) >= 5
    spool.close()


def test_a_qos1_append_is_fsynced_and_told(tmp_path):
    durable: list[int] = []
    told = threading.Event()

    def on_durable(seq: int) -> None:
        durable.append(seq)
        told.set()

    spool = Spool(tmp_path, 10**9, on_durable=on_durable)
    spool.append(msg(0))
    seq = spool.append(msg(1), ack=True)
    assert told.wait(5) and durable[-1] >= seq and spool.durable >= seq
    spool.close()


def test_released_records_are_not_fed_again_and_the_rest_is_after_a_crash(tmp_path):
    spool = Spool(tmp_path, 10**9, segment_bytes=1_000)
    for i in range(100):
        spool.append(msg(i))
        if i % 10 == 9:
            spool.sync()
    before = spool.bytes
    spool.release(60)
    assert spool.bytes < before  # whole released segments deleted
    # a crash: the process dies without close(); the files are what the page cache had
    spool._closing = True
    again = Spool(tmp_path, 10**9)
    assert again.released == 60 and again.recovered == 40
    assert [s for s, _ in read_all(again, again.released)] == list(range(61, 101))
    assert again.append(msg(100)) == 101  # numbering goes on
    again.close()


def test_a_torn_last_record_is_cut_off(tmp_path):
    spool = Spool(tmp_path, 10**9)
    for i in range(10):
        spool.append(msg(i))
    spool.close()
    seg = sorted(tmp_path.glob("*.spool"))[-1]
    data = seg.read_bytes()
    seg.write_bytes(data[:-3])  # a crash in the middle of the last write
    again = Spool(tmp_path, 10**9)
    assert [s for s, _ in read_all(again, 0)] == list(range(1, 10))
    assert again.append(msg(10)) == 10  # the torn record's seq is given again: it was never acknowledged
    again.close()


def test_size_age_and_full(tmp_path):
    spool = Spool(tmp_path, 3_000)
    for i in range(100):
        spool.append(msg(i))
    spool.sync()
    time.sleep(0.05)
    st = spool.stats()
    assert st["pending"] == 100 and st["bytes"] > 3_000 and st["full"] and st["oldest_age_s"] > 0
    spool.release(100)
    assert spool.pending == 0 and spool.oldest_age_s() == 0
    spool.close()


class Collect:
    def __init__(self) -> None:
        self.got: list[Message] = []
        self.marks: list[int] = []

    def submit_many(self, messages: list[Message], mark: int | None = None) -> None:
        self.got += messages
        self.marks.append(mark)


def test_the_feeder_hands_everything_over_in_order_with_marks(tmp_path):
    spool = Spool(tmp_path, 10**9)
    sink = Collect()
    feeder = Feeder(spool, sink, group=7)
    for i in range(50):
        spool.append(msg(i))
    spool.sync()
    assert feeder.stop(5)
    assert sink.got == [msg(i) for i in range(50)] and sink.marks[-1] == 50
    assert sink.marks == sorted(sink.marks)
    spool.close()


def test_default_dirs():
    assert str(default_dir("duckdb:///var/lib/clapas/city.duckdb")) == "/var/lib/clapas/city.spool"
    assert str(default_dir("postgresql://u@db.example:5433/city")) == "var/spool/db.example_5433_city"


@pytest.fixture(params=["duckdb", "postgres"])
def store_url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/city.duckdb"
    return request.getfixturevalue("pg_url")


def _spool_into_store(directory, url: str, messages: list[Message], release: bool) -> dict[str, int]:
    """`clapas run`'s path (spool → feeder → pipeline → store); without `release` the process dies after its
    commits and before the spool hears of them (the records stay unreleased)."""
    from clapas.pipeline.ingest import Pipeline
    from clapas.store.base import open_store

    store = open_store(url)
    spool = Spool(directory, 10**9)
    pipeline = Pipeline(store)
    if release:
        pipeline.on_mark = spool.release
    feeder = Feeder(spool, pipeline)
    for m in messages:
        spool.append(m)
    assert spool.sync()
    deadline = time.monotonic() + 30
    while feeder.fed < spool.written and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feeder.stop(30)
    pipeline.close()
    counts = store.counts()
    store.close()
    if release:
        spool.close()
    else:
        spool._closing = True  # a crash: no close
    return counts


def test_events_without_a_dedup_key_are_not_doubled_by_a_crash_between_commit_and_release(
        tmp_path, samples, store_url):
    import json

    from clapas.connectors import chirpstack

    messages = []
    for i, event in enumerate(["log", "txack"] * 10):  # neither carries a deduplicationId
        body = json.loads((samples / "chirpstack" / f"{event}.json").read_text())
        body["time"] = datetime(2026, 6, 1, 12, 0, i, tzinfo=UTC).isoformat()
        messages.append(chirpstack.message(json.dumps(body).encode(), datetime(2026, 6, 1, 12, 0, i, tzinfo=UTC),
                                           topic=f"application/a/device/0101010101010101/event/{event}"))
    first = _spool_into_store(tmp_path / "spool", store_url, messages, release=False)
    assert first["stored"] == 20
    reopened = Spool(tmp_path / "spool", 10**9)
    assert reopened.recovered == 20  # all fed again on the next start…
    reopened.close()
    again = _spool_into_store(tmp_path / "spool", store_url, [], release=True)
    assert again["stored"] == 20 and again.get("duplicate", 0) == 20  # …and recognised: received once, kept once
