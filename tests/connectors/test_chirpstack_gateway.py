"""Gateway Bridge events: the samples, protobuf, topics, bad input quarantined, and the pipeline's journal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from chirpstack_api import gw

from clapas.connectors import ParseError
from clapas.connectors.chirpstack_gateway import is_gateway_topic, message, parse_gateway
from clapas.pipeline.ingest import Pipeline
from clapas.store.base import open_store

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "chirpstack-gateway"
NOW = datetime(2022, 8, 3, 14, 38, tzinfo=UTC)


def test_samples() -> None:
    conn = parse_gateway(message((SAMPLES / "conn.json").read_bytes(), NOW,
                                 topic="eu868/gateway/0016c001f153a14c/state/conn"))
    assert (conn.gateway_id, conn.kind, conn.online, conn.time) == ("0016c001f153a14c", "conn", True, NOW)
    stats = parse_gateway(message((SAMPLES / "stats.json").read_bytes(), NOW,
                                  topic="eu868/gateway/0016c001f153a14c/event/stats"))
    assert (stats.gateway_id, stats.kind, stats.rx_received, stats.rx_ok) == ("0016c001f153a14c", "stats", 1, 1)
    assert stats.time == NOW  # when it was received, as ChirpStack's last_seen_at


def test_protobuf_and_topics() -> None:
    off = gw.ConnState(gateway_id="0016c001f153a14c", state=gw.ConnState.OFFLINE).SerializeToString()
    ev = parse_gateway(message(off, NOW, topic="gateway/0016c001f153a14c/state/conn"))
    assert ev.online is False and ev.gateway_id == "0016c001f153a14c"
    assert is_gateway_topic("eu868/gateway/ab/event/stats") and is_gateway_topic("gateway/ab/state/conn")
    assert not is_gateway_topic("application/1/device/0101010101010101/event/up")


@pytest.mark.parametrize(("raw", "why"), [(b"[]", "JSON array"), (b'{"state": "ONLINE"}', "gatewayId"),
                                          (b"\x0a\xff\xff", "protobuf")])
def test_bad_input_is_a_readable_error(raw: bytes, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_gateway(message(raw, NOW, topic="eu868/gateway//state/conn"))


def test_journaled_and_handed_to_the_health_rules(tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'g.duckdb'}")
    batches = []
    p = Pipeline(store, on_commit=batches.append)
    p.submit(message((SAMPLES / "conn.json").read_bytes(), NOW, topic="eu868/gateway/0016c001f153a14c/state/conn"))
    p.submit(message(b"garbage", NOW, topic="eu868/gateway/0016c001f153a14c/event/stats"))
    p.close()
    rows = store.uplinks(limit=10)
    assert sorted(r["status"] for r in rows) == ["quarantined", "stored"]
    assert [g[1:] for b in batches for g in b.gw_events] == [("0016c001f153a14c", "conn", True)]
    store.close()
