"""Bounds on what a network server can send: a parsed message outside them is quarantined, never stored.

A message that passes the parser's types can still be absurd — a 100 KB device name, ten thousand tags, an object
nested a thousand deep, a time of year 1 or 9999 — and each of those would go on into the device registry, the
store's partitions or a recursive walk. The parsers call `check` on every uplink and device event; the first field
out of bounds raises `ParseError` naming the field, its size and the bound.

The bounds come from the LoRaWAN and ChirpStack specifications where they set one; the others are clapas's own
choice (said so), far above anything a real network server sends and far below what would hurt.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from clapas.model import DeviceInfo, Uplink


class ParseError(ValueError):
    """The message is not a valid event of its source; the text says why (and names the field)."""


# Largest LoRaWAN application payload (FRMPayload) in any region: 242 bytes, EU863-870 DR7 and US902-928 DR4
# (LoRa Alliance RP002-1.0.x Regional Parameters, "maximum payload size" tables, N without a repeater; 222 with
# one). Anything larger did not come over LoRaWAN.
MAX_PAYLOAD_BYTES = 242
# Device, device-profile and application names: varchar(100) in ChirpStack v4's schema
# (chirpstack/migrations_postgres/00000000000000_initial/up.sql, tables device, device_profile, application).
# The Things Stack identifiers are shorter (36 characters).
MAX_NAME_CHARS = 100
# Device tags: ChirpStack keeps them as jsonb with no bound of its own. clapas's choice: devices carry a handful
# (kind, decoder, zone, lat, lon, codec, pulse_factor…); 64 tags, 100-character keys (as names) and 1 KiB values
# (a codec path) leave room for any real registry and keep the device table sane.
MAX_TAGS = 64
MAX_TAG_KEY_CHARS = 100
MAX_TAG_VALUE_CHARS = 1024
# deduplicationId is a UUID (36 characters) in ChirpStack v4; TTS correlation ids are ~40. clapas's choice: 128.
MAX_ID_CHARS = 128
# A decoded object (ChirpStack `object`, TTS `decoded_payload`) or an event's details: vendor codecs nest 2–4
# levels; clapas's choice of 32 keeps every recursive walk (flattening, JSON encoding) far from Python's limit.
MAX_NESTING = 32
# Values in one decoded object or event: a 242-byte payload cannot carry more than a few hundred readings.
MAX_ITEMS = 5_000
# No LoRaWAN uplink is older than LoRaWAN itself (specification 1.0, January 2015): earlier times are a gateway
# clock that was never set (GPS epoch 1980, Unix epoch 1970).
MIN_TIME = datetime(2015, 1, 1, tzinfo=UTC)
# A gateway's clock may be ahead of clapas's; beyond a day it is wrong (and would open future partitions).
MAX_CLOCK_AHEAD = timedelta(days=1)


def check_time(time: datetime, received_at: datetime, field: str = "time") -> datetime:
    if time < MIN_TIME:
        raise ParseError(f"{field}: {time.isoformat()} is before {MIN_TIME.date()} (LoRaWAN did not exist; "
                         "a gateway clock never set?)")
    if time > received_at + MAX_CLOCK_AHEAD:
        ahead = (time - received_at).total_seconds() / 86400
        raise ParseError(f"{field}: {time.isoformat()} is {ahead:.1f} days after the message was received "
                         f"(more than {MAX_CLOCK_AHEAD.days} day of clock skew)")
    return time


def _too_long(field: str, value: str, limit: int) -> ParseError:
    return ParseError(f"{field}: {len(value)} characters, more than the {limit} allowed")


def check_info(info: DeviceInfo, prefix: str = "deviceInfo") -> DeviceInfo:
    """On the hot path (a few hundred ns): the field names are only spelled out for a failure."""
    for value, name in ((info.name, "deviceName"), (info.profile, "deviceProfileName"),
                        (info.application, "applicationName")):
        if len(value) > MAX_NAME_CHARS:
            raise _too_long(f"{prefix}.{name}", value, MAX_NAME_CHARS)
    tags = info.tags
    if len(tags) > MAX_TAGS:
        raise ParseError(f"{prefix}.tags: {len(tags)} tags, more than the {MAX_TAGS} allowed")
    for k, v in tags.items():
        if len(k) > MAX_TAG_KEY_CHARS:
            raise _too_long(f"{prefix}.tags key {k[:40]!r}…", k, MAX_TAG_KEY_CHARS)
        if len(v) > MAX_TAG_VALUE_CHARS:
            raise _too_long(f"{prefix}.tags[{k!r}]", v, MAX_TAG_VALUE_CHARS)
    return info


def check_tree(value: Any, field: str) -> None:
    """Depth and size of decoded JSON (walked without recursion, so that no depth can overflow the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    items = 0
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if depth > MAX_NESTING:
            raise ParseError(f"{field}: nested more than {MAX_NESTING} levels deep")
        items += len(v)
        if items > MAX_ITEMS:
            raise ParseError(f"{field}: more than {MAX_ITEMS} values")
        stack.extend((c, depth + 1) for c in children)


# design choice: a network server deduplicates an uplink over the gateways that heard it; no city has this many
# gateways in range of one device
MAX_RX_GATEWAYS = 64


def check(up: Uplink, received_at: datetime, *, data_field: str = "data", obj_field: str = "object",
          info_checked: bool = False) -> Uplink:
    """The uplink if every field is within bounds, else ParseError naming the first one that is not.
    `info_checked`: the parser has checked `up.info` already (a cached deviceInfo is checked once)."""
    check_time(up.time, received_at)
    if up.info is not None and not info_checked:
        check_info(up.info)
    if len(up.payload) > MAX_PAYLOAD_BYTES:
        raise ParseError(f"{data_field}: payload of {len(up.payload)} bytes exceeds the LoRaWAN maximum "
                         f"({MAX_PAYLOAD_BYTES} bytes)")
    if len(up.dedup_key) > MAX_ID_CHARS:
        raise _too_long("deduplicationId", up.dedup_key, MAX_ID_CHARS)
    if up.rx:
        if len(up.rx) > MAX_RX_GATEWAYS:
            raise ParseError(f"rxInfo: {len(up.rx)} gateways (at most {MAX_RX_GATEWAYS})")
        for gid, _ in up.rx:
            if len(gid) > MAX_ID_CHARS:
                raise _too_long("rxInfo.gatewayId", gid, MAX_ID_CHARS)
    if up.obj is not None:
        check_tree(up.obj, obj_field)
    if up.event_data is not None:
        check_tree(up.event_data, f"{up.event} event")
    return up
