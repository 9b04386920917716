"""ChirpStack Gateway Bridge events: a gateway's retained connection state and its periodic stats (domain-rules §7.2).

Why read them directly: ChirpStack itself raises nothing when a gateway stops, and the Bridge's retained `ConnState`
(ONLINE / OFFLINE, published with the MQTT will) is the cheapest "gateway down" signal; the stats, every
`stats_interval` (30 s by default), are ChirpStack's own liveness rule (offline after 2 × the interval).
Topics: `[region/]gateway/<gateway id>/state/conn` and `[region/]gateway/<gateway id>/event/stats`, JSON or
protobuf (told apart per message as for the application events). They are journaled like every message, so that a
replay gives the same gateway incidents. Their time is when they were received (ChirpStack's own `last_seen_at` is
too): a gateway's clock never moves the stream's time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from chirpstack_api import gw

from clapas.connectors.chirpstack import detect_format, json_body
from clapas.connectors.limits import MAX_ID_CHARS, ParseError, check_time
from clapas.model import GatewayEvent, Message

SOURCE = "chirpstack-gateway"
EVENTS = ("conn", "stats")
_Time = Annotated[datetime, msgspec.Meta(tz=True)] | None


class _Conn(msgspec.Struct, rename="camel"):
    gateway_id: str = ""
    state: str = "OFFLINE"


class _Stats(msgspec.Struct, rename="camel"):
    gateway_id: str = ""
    time: _Time = None
    rx_packets_received: int = 0
    rx_packets_received_ok: int = 0


_conn = msgspec.json.Decoder(_Conn)
_stats = msgspec.json.Decoder(_Stats)


def is_gateway_topic(topic: str) -> bool:
    """Whether an MQTT topic is a Gateway Bridge one (…gateway/<id>/state/conn or …gateway/<id>/event/stats)."""
    parts = topic.split("/")
    return len(parts) >= 4 and parts[-4] == "gateway" and (parts[-2], parts[-1]) in (("state", "conn"),
                                                                                      ("event", "stats"))


def _topic_parts(topic: str) -> tuple[str, str]:
    """(event, gateway id) named by the topic; ('', '') if it names none."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[-4] == "gateway":
        return parts[-1], parts[-3]
    return "", ""


def message(raw: bytes, received_at: datetime, *, topic: str = "", event: str = "") -> Message:
    if not event:
        event, _ = _topic_parts(topic)
    return Message(source=SOURCE, event=event, fmt=detect_format(raw), raw=raw, received_at=received_at,
                   topic=topic)


def _gateway_id(body: str, topic: str) -> str:
    gid = (body or _topic_parts(topic)[1]).strip().lower()
    if not gid:
        raise ParseError("gatewayId: missing (and the topic names no gateway)")
    if len(gid) > MAX_ID_CHARS:
        raise ParseError(f"gatewayId: {len(gid)} characters (at most {MAX_ID_CHARS})")
    return gid


def parse_gateway(m: Message) -> GatewayEvent:
    """A journaled Gateway Bridge message; ParseError with a readable reason."""
    if m.event not in EVENTS:
        raise ParseError(f"unknown gateway event {m.event!r} (expected one of {', '.join(EVENTS)})")
    try:
        if m.fmt == "json":
            raw = json_body(m.raw, f"a gateway {m.event} event")
            if m.event == "conn":
                c = _conn.decode(raw)
                return GatewayEvent(gateway_id=_gateway_id(c.gateway_id, m.topic), time=m.received_at,
                                    kind="conn", online=c.state == "ONLINE")
            s = _stats.decode(raw)
            check_time(s.time or m.received_at, m.received_at)
            return GatewayEvent(gateway_id=_gateway_id(s.gateway_id, m.topic), time=m.received_at, kind="stats",
                                rx_received=s.rx_packets_received, rx_ok=s.rx_packets_received_ok)
        pb = gw.ConnState() if m.event == "conn" else gw.GatewayStats()
        pb.ParseFromString(m.raw)
    except msgspec.DecodeError as e:
        raise ParseError(f"invalid gateway {m.event} JSON: {e}") from None
    except ParseError:
        raise
    except Exception as e:  # protobuf raises several kinds on garbage
        raise ParseError(f"invalid gateway {m.event} protobuf: {e}") from None
    gid = _gateway_id(pb.gateway_id or pb.gateway_id_legacy.hex(), m.topic)
    if m.event == "conn":
        return GatewayEvent(gateway_id=gid, time=m.received_at, kind="conn", online=pb.state == gw.ConnState.ONLINE)
    check_time(pb.time.ToDatetime(tzinfo=UTC) if pb.HasField("time") else m.received_at, m.received_at)
    return GatewayEvent(gateway_id=gid, time=m.received_at, kind="stats", rx_received=pb.rx_packets_received,
                        rx_ok=pb.rx_packets_received_ok)
