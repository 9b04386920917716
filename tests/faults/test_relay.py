"""The relay itself: forwards to the real PostgreSQL, and each fault does what it says."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.faults.relay import Relay

pytestmark = [pytest.mark.postgres, pytest.mark.faults]


def _select_one(url: str, timeout: int = 3) -> int:
    with psycopg.connect(url, connect_timeout=timeout) as con:
        return con.execute("select 1").fetchone()[0]


def test_forwards_and_counts(pg_url: str) -> None:
    with Relay.for_url(pg_url) as relay:
        assert _select_one(relay.url(pg_url)) == 1
        assert relay.stats.accepted == 1
        assert relay.stats.bytes_up > 0 and relay.stats.bytes_down > 0


def test_cut_refuses_until_restored(pg_url: str) -> None:
    with Relay.for_url(pg_url) as relay:
        url = relay.url(pg_url)
        con = psycopg.connect(url, autocommit=True)
        relay.cut()
        with pytest.raises(psycopg.OperationalError):
            con.execute("select 1")
        with pytest.raises(psycopg.OperationalError):
            _select_one(url)
        assert relay.stats.refused >= 1
        relay.restore()
        assert _select_one(url) == 1


def test_drop_connections_is_a_restart(pg_url: str) -> None:
    with Relay.for_url(pg_url) as relay:
        url = relay.url(pg_url)
        con = psycopg.connect(url, autocommit=True)
        assert relay.drop_connections() == 1
        with pytest.raises(psycopg.OperationalError):
            con.execute("select 1")
        assert _select_one(url) == 1  # new connections go through at once


def test_blackhole_hangs_then_restore(pg_url: str) -> None:
    with Relay.for_url(pg_url) as relay:
        url = relay.url(pg_url)
        relay.blackhole()
        t0 = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            _select_one(url, timeout=1)  # a timeout, not a refusal
        assert time.monotonic() - t0 >= 0.9
        relay.restore()
        assert _select_one(url) == 1
