"""What every environmental report reads first: the registry's devices of a kind, the zones, local-day bounds.

Reports read the store in bulk (`Store.series`): one query per quantity, never one per device.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from clapas.store.base import Store

ALL_DEVICES = 1_000_000  # `Store.devices` pages; a report wants every device of its kind at once


def devices_of(store: Store, kind: str) -> list[dict[str, Any]]:
    """Every registry device of a kind, by EUI."""
    return store.devices(kind=kind, limit=ALL_DEVICES)


def zones_by_id(store: Store) -> dict[str, dict[str, Any]]:
    return {z["id"]: z for z in store.zones()}


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant a local day starts (DST-safe: 23- and 25-hour days)."""
    return datetime.combine(day, time(), tz).astimezone(UTC)


def by_eui(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """`Store.series` rows grouped per device, in time order."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r["eui"]].append(r)
    return dict(out)


def round_or_none(v: float | None, digits: int = 2) -> float | None:
    return None if v is None else round(v, digits)


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
