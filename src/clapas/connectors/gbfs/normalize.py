"""One model for GBFS 2.x and 3.0 files (§6.1): v3.0 names (`num_vehicles_available`…) and RFC 3339 times become the
same rows as v2.3's names and POSIX seconds, so a v2.3 and a v3.0 feed of the same stations give the same rows.

Also the cross-file checks the official validator does not make (§6.5): bikes + docks over capacity, a status for a
station `station_information` does not list, a stale `last_reported` while the file is fresh, a future one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

# §6.1: station_status "in no case … more than 5 minutes out-of-date"
STALE_REPORT_S = 300.0
# a `last_reported` this far ahead of the poll is clock skew, not rounding (design [U])
FUTURE_TOLERANCE_S = 60.0


class FeedError(ValueError):
    """A file that cannot be read as GBFS (its reason is journaled with it)."""


class StationSample(msgspec.Struct, kw_only=True, frozen=True):
    """One station of one station_status poll, in the normalised model."""

    station_id: str
    bikes_available: int
    bikes_disabled: int | None = None
    docks_available: int | None = None  # absent for unlimited / virtual stations
    docks_disabled: int | None = None
    installed: bool = True
    renting: bool = True
    returning: bool = True
    last_reported: float | None = None  # POSIX seconds


class StationInfo(msgspec.Struct, kw_only=True, frozen=True):
    station_id: str
    name: str = ""
    lat: float | None = None
    lon: float | None = None
    capacity: int | None = None
    short_name: str = ""
    address: str = ""
    region_id: str = ""
    is_virtual: bool = False


class Header(msgspec.Struct, kw_only=True, frozen=True):
    last_updated: float  # POSIX seconds
    ttl: int
    version: str


def posix(v: Any) -> float | None:
    """A GBFS time as POSIX seconds: v2.x integers, v3.0 RFC 3339 strings (with their offset)."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise FeedError(f"not a time: {v!r}")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            raise FeedError(f"not an RFC 3339 time: {v[:40]!r}") from None
        if t.tzinfo is None:
            raise FeedError(f"RFC 3339 time without an offset: {v[:40]!r}")
        return t.timestamp()
    raise FeedError(f"not a time: {v!r}")


def header(doc: Any) -> Header:
    if not isinstance(doc, dict) or "data" not in doc:
        raise FeedError("not a GBFS file (no `data`)")
    lu = posix(doc.get("last_updated"))
    if lu is None:
        raise FeedError("no last_updated")
    ttl = doc.get("ttl", 0)
    return Header(last_updated=lu, ttl=int(ttl) if isinstance(ttl, int | float) else 0,
                  version=str(doc.get("version") or "1.0"))


def text(v: Any, language: str = "") -> str:
    """A v2.x string or a v3.0 Array<Localized String> (the wanted language, else the first)."""
    if isinstance(v, list):
        for item in v:
            if isinstance(item, dict) and (not language or item.get("language") == language):
                return str(item.get("text") or "")
        return str(v[0].get("text") or "") if v and isinstance(v[0], dict) else ""
    return "" if v is None else str(v)


def feed_urls(doc: Any, language: str = "") -> dict[str, str]:
    """Feed name → URL from the auto-discovery file (v2.x: per language; v3.0: one list)."""
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise FeedError("gbfs.json has no data")
    feeds = data.get("feeds")
    if feeds is None:  # v2.x: {"en": {"feeds": [...]}, ...}
        langs = [k for k, v in data.items() if isinstance(v, dict)]
        if not langs:
            raise FeedError("gbfs.json lists no feeds")
        feeds = data[language if language in langs else langs[0]].get("feeds")
    if not isinstance(feeds, list):
        raise FeedError("gbfs.json feeds is not a list")
    return {f["name"]: f["url"] for f in feeds if isinstance(f, dict) and "name" in f and "url" in f}


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def station_status(doc: Any) -> list[StationSample]:
    """Every station of a station_status file, in the normalised model."""
    stations = (doc.get("data") or {}).get("stations") if isinstance(doc, dict) else None
    if not isinstance(stations, list):
        raise FeedError("station_status has no data.stations list")
    out = []
    for s in stations:
        if not isinstance(s, dict) or "station_id" not in s:
            continue
        bikes = s.get("num_vehicles_available", s.get("num_bikes_available"))
        out.append(StationSample(
            station_id=str(s["station_id"]), bikes_available=_int(bikes) or 0,
            bikes_disabled=_int(s.get("num_vehicles_disabled", s.get("num_bikes_disabled"))),
            docks_available=_int(s.get("num_docks_available")), docks_disabled=_int(s.get("num_docks_disabled")),
            installed=bool(s.get("is_installed", True)), renting=bool(s.get("is_renting", True)),
            returning=bool(s.get("is_returning", True)), last_reported=posix(s.get("last_reported"))))
    return out


def station_information(doc: Any, language: str = "") -> list[StationInfo]:
    stations = (doc.get("data") or {}).get("stations") if isinstance(doc, dict) else None
    if not isinstance(stations, list):
        raise FeedError("station_information has no data.stations list")
    out = []
    for s in stations:
        if not isinstance(s, dict) or "station_id" not in s:
            continue
        capacity = _int(s.get("capacity"))
        if capacity is None:  # v2.3 vehicle_type_capacity {type: n}; v3.0 vehicle_type_dock_capacity [{count}]
            by_type = s.get("vehicle_type_capacity")
            docks = s.get("vehicle_type_dock_capacity")
            if isinstance(by_type, dict):
                capacity = sum(int(n) for n in by_type.values() if _int(n) is not None) or None
            elif isinstance(docks, list):
                capacity = sum(int(d.get("count") or 0) for d in docks if isinstance(d, dict)) or None
        lat, lon = s.get("lat"), s.get("lon")
        out.append(StationInfo(
            station_id=str(s["station_id"]), name=text(s.get("name"), language),
            short_name=text(s.get("short_name"), language), address=str(s.get("address") or ""),
            lat=float(lat) if isinstance(lat, int | float) else None,
            lon=float(lon) if isinstance(lon, int | float) else None,
            capacity=capacity, region_id=str(s.get("region_id") or ""),
            is_virtual=bool(s.get("is_virtual_station", False))))
    return out


def vehicles_free(doc: Any) -> list[tuple[float, float]]:
    """Positions of the free-floating vehicles (free_bike_status v2.x, vehicle_status v3.0) available to rent:
    not reserved, not disabled, not at a station."""
    data = (doc.get("data") or {}) if isinstance(doc, dict) else {}
    items = data.get("vehicles", data.get("bikes")) or []
    return [(float(v["lat"]), float(v["lon"])) for v in items
            if isinstance(v, dict) and not v.get("is_reserved") and not v.get("is_disabled")
            and not v.get("station_id") and isinstance(v.get("lat"), int | float)
            and isinstance(v.get("lon"), int | float)]


class Flag(msgspec.Struct, kw_only=True, frozen=True):
    """A cross-file inconsistency on one station (§6.5, what the official validator does not check)."""

    station_id: str
    check: str  # over_capacity, unknown_station, stale_report, future_report
    detail: str


def cross_checks(samples: list[StationSample], info: dict[str, StationInfo] | None, last_updated: float,
                 poll_time: float, stale_s: float = STALE_REPORT_S,
                 future_s: float = FUTURE_TOLERANCE_S) -> list[Flag]:
    """Flags for one station_status poll against the known station_information (None: not fetched yet)."""
    flags = []
    fresh = poll_time - last_updated <= stale_s
    for s in samples:
        known = info.get(s.station_id) if info is not None else None
        if info is not None and known is None:
            flags.append(Flag(station_id=s.station_id, check="unknown_station",
                              detail="station_status lists a station that station_information does not"))
        if known is not None and known.capacity is not None:
            total = (s.bikes_available + (s.bikes_disabled or 0) + (s.docks_available or 0)
                     + (s.docks_disabled or 0))
            if total > known.capacity:
                flags.append(Flag(station_id=s.station_id, check="over_capacity",
                                  detail=f"bikes + docks = {total} > capacity {known.capacity}"))
        if s.last_reported is not None:
            if s.last_reported > poll_time + future_s:
                flags.append(Flag(station_id=s.station_id, check="future_report",
                                  detail=f"last_reported {s.last_reported - poll_time:.0f} s in the future"))
            elif fresh and poll_time - s.last_reported > stale_s:
                flags.append(Flag(station_id=s.station_id, check="stale_report",
                                  detail=f"last_reported {poll_time - s.last_reported:.0f} s old while the feed "
                                         f"is fresh"))
    return flags
