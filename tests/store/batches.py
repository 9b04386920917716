"""Small, readable builders of `Batch` objects for the store tests (what the pipeline would hand the store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from clapas.model import QUANTITY_BY_KEY
from clapas.store.base import QUARANTINED, STORED, Batch, DeviceSeen


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def uplink(b: Batch, eui: str, t: datetime, values: dict[str, float] | None = None, *, status: str = STORED,
           error: str | None = None, dedup: str | None = None, f_cnt: int | None = None, rssi: float | None = None,
           snr: float | None = None, kind: str = "", zone: str = "", journal_id: int | None = None,
           event: str = "up", received: datetime | None = None) -> Batch:
    """One message: its journal row, its observation rows when stored, and what it tells of its device."""
    values = values or {}
    raw = msgspec.json.encode({"devEui": eui, "time": t.isoformat(), "object": values})
    b.j_id.append(journal_id)
    b.j_received.append(received or t + timedelta(seconds=1))
    b.j_time.append(t)
    b.j_source.append("chirpstack")
    b.j_event.append(event)
    b.j_fmt.append("json")
    b.j_topic.append(f"application/1/device/{eui}/event/{event}")
    b.j_eui.append(eui)
    b.j_fport.append(1)
    b.j_fcnt.append(f_cnt)
    b.j_dedup.append(dedup)
    b.j_status.append(status)
    b.j_error.append(error)
    b.j_rssi.append(rssi)
    b.j_snr.append(snr)
    b.j_sf.append(7)
    b.j_raw.append(raw)
    if status == STORED and event == "up":
        for key, value in values.items():
            b.o_time.append(t)
            b.o_eui.append(eui)
            b.o_quantity.append(QUANTITY_BY_KEY[key].id)
            b.o_value.append(value)
    if status != QUARANTINED:
        _seen(b, eui, t, f_cnt=f_cnt, rssi=rssi, snr=snr, kind=kind, zone=zone)
    return b


def device_event(b: Batch, eui: str, t: datetime, event: str, data: dict[str, Any]) -> Batch:
    """A join/ack/log… event: journaled, and kept in device_events."""
    uplink(b, eui, t, event=event)
    b.ev_time.append(t)
    b.ev_eui.append(eui)
    b.ev_event.append(event)
    b.ev_data.append(msgspec.json.encode(data).decode())
    return b


def quarantined(b: Batch, eui: str | None, t: datetime, error: str) -> Batch:
    """A message that could not be decoded (no observation); `eui` None when not even parsed."""
    uplink(b, eui or "", t, status=QUARANTINED, error=error)
    b.j_eui[-1] = eui
    if eui is None:
        b.j_time[-1] = None
    return b


def _seen(b: Batch, eui: str, t: datetime, **state: Any) -> None:
    prev = b.dev_by_eui.get(eui)
    if prev is None or t >= prev.last_seen:
        b.dev_by_eui[eui] = DeviceSeen(eui=eui, last_seen=t, **state)


def series(eui: str, start: datetime, step: timedelta, key: str, values: list[float]) -> Batch:
    """One quantity of one device at regular times: the shape history tests need."""
    b = Batch()
    for i, v in enumerate(values):
        uplink(b, eui, start + i * step, {key: v})
    return b
