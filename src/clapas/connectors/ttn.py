"""The Things Stack v3 uplink messages (MQTT topic v3/{app}@{tenant}/devices/{device_id}/up), JSON only.

The end device's attributes become its tags (as ChirpStack device tags do: `kind`, `decoder`, `zone`, `lat`, `lon`);
the application server's `decoded_payload` is kept as the network server's object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from clapas.connectors.chirpstack import ParseError, json_body
from clapas.connectors.limits import check
from clapas.model import DeviceInfo, Message, Uplink, normalize_eui

SOURCE = "ttn"
# RFC 3339 with an offset; absent is allowed (the next time is taken), null is quarantined (see chirpstack._Time)
_Time = Annotated[datetime, msgspec.Meta(tz=True)] | None | msgspec.UnsetType


class _AppIds(msgspec.Struct):
    application_id: str = ""


class _Ids(msgspec.Struct):
    device_id: str = ""
    dev_eui: str = ""
    application_ids: _AppIds | None = None


class _Rx(msgspec.Struct):
    rssi: float = 0
    snr: float = 0


class _Lora(msgspec.Struct):
    spreading_factor: int = 0


class _DataRate(msgspec.Struct):
    lora: _Lora | None = None


class _Settings(msgspec.Struct):
    data_rate: _DataRate | None = None


class _VersionIds(msgspec.Struct):
    brand_id: str = ""
    model_id: str = ""


class _UplinkMessage(msgspec.Struct):
    f_cnt: int = 0
    f_port: int = 0
    frm_payload: bytes = b""
    decoded_payload: dict[str, Any] | None = None
    rx_metadata: list[_Rx] = []
    settings: _Settings | None = None
    received_at: _Time = msgspec.UNSET
    version_ids: _VersionIds | None = None
    attributes: dict[str, str] = {}


class _Up(msgspec.Struct):
    end_device_ids: _Ids
    uplink_message: _UplinkMessage
    received_at: _Time = msgspec.UNSET
    correlation_ids: list[str] = []


_decoder = msgspec.json.Decoder(_Up)


def message(raw: bytes, received_at: datetime, *, topic: str = "") -> Message:
    return Message(source=SOURCE, event="up", fmt="json", raw=raw, received_at=received_at, topic=topic)


def _time(*candidates: datetime | msgspec.UnsetType | None) -> datetime:
    for field, t in zip(("uplink_message.received_at", "received_at"), candidates, strict=False):
        if t is None:
            raise ParseError(f"{field}: null (expected an RFC 3339 timestamp, or no field at all)")
    return next(t for t in candidates if isinstance(t, datetime))


def parse(m: Message) -> Uplink:
    try:
        up = _decoder.decode(json_body(m.raw, "a The Things Stack uplink"))
    except msgspec.DecodeError as err:
        raise ParseError(f"invalid The Things Stack uplink JSON: {err}") from None
    except RecursionError:
        raise ParseError("invalid The Things Stack uplink JSON: nested too deep to read") from None
    ids, u = up.end_device_ids, up.uplink_message
    if not ids.dev_eui:
        raise ParseError(f"end_device_ids.dev_eui: missing (The Things Stack uplink of {ids.device_id[:100]!r})")
    try:
        eui = normalize_eui(ids.dev_eui)
    except ValueError as e:
        raise ParseError(f"end_device_ids.dev_eui: {e}") from None
    best = max(u.rx_metadata, key=lambda r: r.rssi) if u.rx_metadata else None
    lora = u.settings.data_rate.lora if u.settings and u.settings.data_rate else None
    profile = f"{u.version_ids.brand_id}/{u.version_ids.model_id}" if u.version_ids else ""
    dedup = next((c for c in up.correlation_ids if c.startswith("as:up:")), "")
    uplink = Uplink(
        dev_eui=eui, time=_time(u.received_at, up.received_at, m.received_at), f_port=u.f_port, f_cnt=u.f_cnt,
        payload=u.frm_payload, obj=u.decoded_payload, rssi=best.rssi if best else None,
        snr=best.snr if best else None, sf=lora.spreading_factor if lora else None, gateways=len(u.rx_metadata),
        dedup_key=dedup,
        info=DeviceInfo(name=ids.device_id, profile=profile,
                        application=ids.application_ids.application_id if ids.application_ids else "",
                        tags=u.attributes),
    )
    return check(uplink, m.received_at, data_field="uplink_message.frm_payload",
                 obj_field="uplink_message.decoded_payload")


def eui_hint(m: Message) -> str | None:
    return None
