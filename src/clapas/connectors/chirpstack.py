"""ChirpStack v4 integration events (MQTT or HTTP), JSON or protobuf, told apart per message.

JSON is parsed into typed msgspec structs (about 1.5 µs for an uplink); protobuf with the `chirpstack-api` classes'
binary parser. `json_format.Parse` is never used on the hot path (about 100 times slower).

Topics: application/{application_id}/device/{dev_eui}/event/{event}; the HTTP integration names the event in
`?event=`. `up` and `status` become uplinks with values; join, ack, txack, log and location are device events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from chirpstack_api import integration
from google.protobuf import json_format

from clapas.connectors.limits import ParseError, check, check_info
from clapas.model import DeviceInfo, Message, Uplink, normalize_eui

SOURCE = "chirpstack"
EVENTS = ("up", "status", "join", "ack", "txack", "log", "location")

# An event's `time`: RFC 3339 with an offset (a naive time cannot be placed), absent (the time it was received)
# or null — which no ChirpStack sends, and which is quarantined rather than guessed.
_Time = Annotated[datetime, msgspec.Meta(tz=True)] | None | msgspec.UnsetType


# --- JSON (protobuf canonical JSON mapping) -----------------------------------------------------------------
class _DeviceInfo(msgspec.Struct, rename="camel"):
    dev_eui: str
    device_name: str = ""
    device_profile_name: str = ""
    application_name: str = ""
    tags: dict[str, str] = {}


class _RxInfo(msgspec.Struct, rename="camel"):
    gateway_id: str = ""
    rssi: float = 0
    snr: float = 0


class _Lora(msgspec.Struct, rename="camel"):
    spreading_factor: int = 0
    bandwidth: int = 0


class _Modulation(msgspec.Struct):
    lora: _Lora | None = None


class _TxInfo(msgspec.Struct):
    modulation: _Modulation | None = None


class _Up(msgspec.Struct, rename="camel"):
    device_info: msgspec.Raw  # the same for every uplink of a device: decoded once, see _info
    time: _Time = msgspec.UNSET
    deduplication_id: str = ""
    f_cnt: int = 0
    f_port: int = 0
    data: bytes = b""
    object: dict[str, Any] | None = None
    rx_info: list[_RxInfo] = []
    tx_info: _TxInfo | None = None


class _Status(msgspec.Struct, rename="camel"):
    device_info: _DeviceInfo
    time: _Time = msgspec.UNSET
    deduplication_id: str = ""
    margin: int = 0
    external_power_source: bool = False
    battery_level_unavailable: bool = False
    battery_level: float = 0


class _Event(msgspec.Struct, rename="camel"):
    device_info: _DeviceInfo
    time: _Time = msgspec.UNSET
    deduplication_id: str = ""


_up_decoder = msgspec.json.Decoder(_Up)
_status_decoder = msgspec.json.Decoder(_Status)
_event_decoder = msgspec.json.Decoder(_Event)
_any_decoder = msgspec.json.Decoder()


_device_info_decoder = msgspec.json.Decoder(_DeviceInfo)
# raw deviceInfo JSON → (EUI, DeviceInfo): a device's deviceInfo repeats in every event, so it is decoded once;
# the same object for the same text also lets the pipeline see at once that nothing changed
_INFOS: dict[bytes, tuple[str, DeviceInfo]] = {}
_MAX_INFOS = 500_000
# ... and at most this many bytes of them: a stream of distinct, large deviceInfos must not grow memory without end
_MAX_INFOS_BYTES = 64 * 1024 * 1024
_infos_bytes = 0


def _info(d: _DeviceInfo) -> DeviceInfo:
    return DeviceInfo(name=d.device_name, profile=d.device_profile_name, application=d.application_name,
                      tags=d.tags)


def _raw_info(raw: msgspec.Raw) -> tuple[str, DeviceInfo]:
    global _infos_bytes
    key = bytes(raw)
    hit = _INFOS.get(key)
    if hit is None:
        try:
            d = _device_info_decoder.decode(key)
        except msgspec.ValidationError as e:
            raise ParseError(f"invalid ChirpStack up JSON: {_in(e, 'deviceInfo')}") from None
        hit = (_eui(d.dev_eui), check_info(_info(d)))  # only what passes the bounds is remembered
        if len(_INFOS) >= _MAX_INFOS or _infos_bytes + len(key) > _MAX_INFOS_BYTES:
            _INFOS.clear()
            _infos_bytes = 0
        _INFOS[key] = hit
        _infos_bytes += len(key)
    return hit


def _in(e: Exception, prefix: str) -> str:
    """msgspec's reason for a sub-document, with its path from the event's root (`$.x` → `$.deviceInfo.x`)."""
    return str(e).replace("`$", f"`$.{prefix}", 1)


_EUIS: dict[str, str] = {}  # as sent → normalized; bounded by the number of devices


def _eui(raw: str) -> str:
    eui = _EUIS.get(raw)
    if eui is None:
        try:
            eui = normalize_eui(raw)
        except ValueError as e:
            raise ParseError(f"deviceInfo.devEui: {e}") from None
        if len(_EUIS) < 1_000_000:
            _EUIS[raw] = eui
    return eui


def _best(rx: list[_RxInfo]) -> _RxInfo | None:
    """The gateway that heard the uplink best (most uplinks have one)."""
    if len(rx) == 1:
        return rx[0]
    return max(rx, key=lambda r: r.rssi) if rx else None


_JSON_KINDS = {ord("["): "a JSON array", ord('"'): "a JSON string", ord("t"): "a JSON boolean",
               ord("f"): "a JSON boolean", ord("n"): "JSON null"}
_BLANKS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


def json_body(raw: bytes, what: str) -> bytes:
    """The JSON text of a message that must be one object: ParseError saying what it is when it is not one."""
    text = raw.strip(_BLANKS).removeprefix(_BOM).lstrip(_BLANKS)  # RFC 8259 §8.1: a BOM may be ignored
    if not text:
        raise ParseError(f"empty message ({len(raw)} bytes) where {what} (a JSON object) is expected")
    first = text[0]
    if first != ord("{"):
        kind = _JSON_KINDS.get(first, "a JSON number" if first in b"-0123456789" else "")
        if kind:
            raise ParseError(f"{kind} where {what} (a JSON object) is expected")
    return text


def _time(t: datetime | msgspec.UnsetType | None, received_at: datetime) -> datetime:
    if t is None:
        raise ParseError("time: null (expected an RFC 3339 timestamp, or no `time` at all)")
    return received_at if t is msgspec.UNSET else t


def _parse_json(event: str, raw: bytes, received_at: datetime) -> Uplink:
    what = f"a ChirpStack {event} event"
    raw = json_body(raw, what)
    try:
        if event == "up":
            m = _up_decoder.decode(raw)
            eui, info = _raw_info(m.device_info)
            best = _best(m.rx_info)
            lora = m.tx_info.modulation.lora if m.tx_info and m.tx_info.modulation else None
            return Uplink(
                dev_eui=eui, time=_time(m.time, received_at), f_port=m.f_port, f_cnt=m.f_cnt,
                payload=m.data, obj=m.object, rssi=best.rssi if best else None, snr=best.snr if best else None,
                sf=lora.spreading_factor if lora else None, gateways=len(m.rx_info),
                rx=tuple((r.gateway_id, r.snr) for r in m.rx_info), bw=(lora.bandwidth or None) if lora else None,
                dedup_key=m.deduplication_id, info=info,
            )
        if event == "status":
            s = _status_decoder.decode(raw)
            return _status_uplink(_eui(s.device_info.dev_eui), _time(s.time, received_at), s.deduplication_id,
                                  _info(s.device_info), s.margin, s.external_power_source,
                                  s.battery_level_unavailable, s.battery_level)
        e = _event_decoder.decode(raw)
        data = _any_decoder.decode(raw)
        data.pop("deviceInfo", None)
        return Uplink(dev_eui=_eui(e.device_info.dev_eui), time=_time(e.time, received_at), event=event,
                      dedup_key=e.deduplication_id, info=_info(e.device_info), event_data=data)
    except msgspec.DecodeError as err:
        raise ParseError(f"invalid ChirpStack {event} JSON: {err}") from None
    except RecursionError:
        raise ParseError(f"invalid ChirpStack {event} JSON: nested too deep to read") from None


def _status_uplink(eui: str, time: datetime, dedup: str, info: DeviceInfo, margin: int, external: bool,
                   unavailable: bool, level: float) -> Uplink:
    """Status events carry their values themselves: link margin and battery (absent when on mains or unknown)."""
    values: list[tuple[str, float]] = [("radio.margin", float(margin))]
    if not external and not unavailable:
        values.append(("battery", float(level)))
    return Uplink(dev_eui=eui, time=time, event="status", dedup_key=dedup, info=info, values=values,
                  event_data={"margin": margin, "externalPowerSource": external,
                              "batteryLevelUnavailable": unavailable, "batteryLevel": level})


# --- protobuf ---------------------------------------------------------------------------------------------------
_PB_TYPES: dict[str, type] = {
    "up": integration.UplinkEvent,
    "status": integration.StatusEvent,
    "join": integration.JoinEvent,
    "ack": integration.AckEvent,
    "txack": integration.TxAckEvent,
    "log": integration.LogEvent,
    "location": integration.LocationEvent,
}


def _pb_info(d: Any) -> DeviceInfo:
    return DeviceInfo(name=d.device_name, profile=d.device_profile_name, application=d.application_name,
                      tags=dict(d.tags))


def _pb_time(m: Any, received_at: datetime) -> datetime:
    if not m.HasField("time"):
        return received_at
    try:
        return m.time.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise ParseError(f"time: {m.time.seconds} s, {m.time.nanos} ns is not a valid timestamp") from None


def _parse_protobuf(event: str, raw: bytes, received_at: datetime) -> Uplink:
    msg = _PB_TYPES[event]()
    try:
        msg.ParseFromString(raw)
    except Exception as err:  # protobuf raises DecodeError, but also others on garbage
        raise ParseError(f"invalid ChirpStack {event} protobuf: {err}") from None
    if not msg.HasField("device_info"):  # what random bytes that happen to parse look like
        raise ParseError(f"invalid ChirpStack {event} protobuf: no deviceInfo (field 3); "
                         f"{len(raw)} bytes that are not a ChirpStack event")
    info = _pb_info(msg.device_info)
    eui = _eui(msg.device_info.dev_eui)
    time = _pb_time(msg, received_at)
    dedup = getattr(msg, "deduplication_id", "")
    if event == "up":
        best = max(msg.rx_info, key=lambda r: r.rssi) if len(msg.rx_info) else None
        obj = json_format.MessageToDict(msg.object) if msg.HasField("object") else None
        lora = msg.tx_info.modulation.lora if msg.HasField("tx_info") else None
        sf = lora.spreading_factor if lora is not None else None
        return Uplink(dev_eui=eui, time=time, f_port=msg.f_port, f_cnt=msg.f_cnt, payload=msg.data, obj=obj,
                      rssi=best.rssi if best else None, snr=best.snr if best else None, sf=sf or None,
                      gateways=len(msg.rx_info), rx=tuple((r.gateway_id, r.snr) for r in msg.rx_info),
                      bw=(lora.bandwidth or None) if lora is not None else None, dedup_key=dedup, info=info)
    if event == "status":
        return _status_uplink(eui, time, dedup, info, msg.margin, msg.external_power_source,
                              msg.battery_level_unavailable, msg.battery_level)
    data = json_format.MessageToDict(msg)
    data.pop("deviceInfo", None)
    return Uplink(dev_eui=eui, time=time, event=event, dedup_key=dedup, info=info, event_data=data)


# --- entry points -------------------------------------------------------------------------------------------------
# Bytes that start a JSON text after blanks: ChirpStack's protobuf events start with field 1's tag (0x0a) or, for
# the few without field 1 set, another small field tag; `{`, `[` and the starts of JSON scalars are either
# invalid wire types for these messages ([ t f n) or tags that a serialized event never starts with.
_JSON_START = frozenset(b'{["-0123456789tfn')


def detect_format(raw: bytes) -> str:
    """'json' or 'protobuf', per message. Blank or empty bytes count as JSON, so that the reason given is
    "empty message" and not a protobuf error; a JSON scalar or array is JSON, reported as not an object."""
    head = raw[:64].lstrip(_BLANKS).removeprefix(_BOM).lstrip(_BLANKS)
    if not head or head[0] in b"{[":
        return "json"
    if head[0] in _JSON_START:
        try:  # a JSON scalar (a quoted string, a number, true/false/null) is JSON; protobuf bytes never parse
            _any_decoder.decode(raw)
            return "json"
        except (msgspec.DecodeError, RecursionError):
            return "protobuf"
    return "protobuf"


def event_from_topic(topic: str) -> tuple[str, str | None]:
    """(event, dev_eui or None) from application/{app}/device/{dev_eui}/event/{event}."""
    parts = topic.split("/")
    if len(parts) >= 6 and parts[-2] == "event" and parts[-4] == "device":
        return parts[-1], parts[-3]
    return (parts[-1] if parts else ""), None


def message(raw: bytes, received_at: datetime, *, topic: str = "", event: str = "", source: str = SOURCE) -> Message:
    """Wrap what arrived, as the journal will keep it."""
    if not event:
        event, _ = event_from_topic(topic)
    return Message(source=source, event=event, fmt=detect_format(raw), raw=raw, received_at=received_at,
                   topic=topic)


def parse(m: Message) -> Uplink:
    """Parse a journaled ChirpStack message; raises ParseError with a readable reason."""
    if m.event not in _PB_TYPES:
        raise ParseError(f"unknown ChirpStack event type {m.event!r} (expected one of {', '.join(EVENTS)})")
    if m.fmt == "json":
        # an `up` event's deviceInfo was checked when first seen (see _raw_info)
        return check(_parse_json(m.event, m.raw, m.received_at), m.received_at, info_checked=m.event == "up")
    return check(_parse_protobuf(m.event, m.raw, m.received_at), m.received_at)


def eui_hint(m: Message) -> str | None:
    """The device EUI named by the topic, for journaling messages whose body cannot be parsed."""
    _, eui = event_from_topic(m.topic)
    try:
        return normalize_eui(eui) if eui else None
    except ValueError:
        return None
