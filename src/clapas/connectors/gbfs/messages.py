"""GBFS polls as journaled messages (source `gbfs`), and their parser (`connectors.parser_for("gbfs")`).

A poll of a system becomes: one `up` message per station (its normalised sample, observed at the poll time, with
`last_updated` and `last_reported` as values), one `up` message for the system itself (poll ok or failed, feed
age), one `up` message per zone for its free-floating vehicles available (when the feed has them: every zone that
held some in this poll or an earlier one, so that a zone emptied reads 0, not a gap), `log` messages for flags and
poll errors, and a `file` message for a file refused by the schemas: the journal keeps it raw, quarantined with
the validator's message (the parser checks it again on replay and gives the same reason). Stations, systems and
their zones get stable device EUIs derived from (system, station id or zone id).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec

from clapas.connectors.gbfs import schema
from clapas.connectors.gbfs.normalize import Flag, StationInfo, StationSample
from clapas.connectors.limits import ParseError
from clapas.model import DeviceInfo, Message, Uplink

SOURCE = "gbfs"
PROFILE = "gbfs"


def station_eui(system: str, station_id: str) -> str:
    """A station's device EUI: 16 hex digits, stable for (system, station id)."""
    return hashlib.blake2b(f"{system}\x00{station_id}".encode(), digest_size=8).hexdigest()


def system_eui(system: str) -> str:
    return hashlib.blake2b(f"{system}\x00".encode(), digest_size=8).hexdigest()


def zone_eui(system: str, zone: str) -> str:
    """The EUI of a system's free-floating vehicles in one zone ("" outside every zone)."""
    return hashlib.blake2b(f"{system}\x00zone\x00{zone}".encode(), digest_size=8).hexdigest()


def _msg(event: str, topic: str, body: Any, at: datetime) -> Message:
    return Message(source=SOURCE, event=event, fmt="json", raw=msgspec.json.encode(body), received_at=at,
                   topic=topic)


def station_messages(system: str, poll: datetime, last_updated: float, samples: list[StationSample],
                     info: dict[str, StationInfo], zones: dict[str, str]) -> list[Message]:
    out = []
    for s in samples:
        known = info.get(s.station_id)
        body = {"system": system, "poll": poll.timestamp(), "last_updated": last_updated,
                **msgspec.structs.asdict(s),
                "name": known.name if known else "", "capacity": known.capacity if known else None,
                "lat": known.lat if known else None, "lon": known.lon if known else None,
                "zone": zones.get(s.station_id, "")}
        out.append(_msg("up", f"gbfs/{system}/station", body, poll))
    return out


def system_message(system: str, poll: datetime, ok: bool, last_updated: float | None = None,
                   vehicles_free: int | None = None, stations: int | None = None,
                   vehicles_by_zone: dict[str, int] | None = None) -> Message:
    return _msg("up", f"gbfs/{system}/system", {"system": system, "poll": poll.timestamp(), "ok": ok,
                                                "last_updated": last_updated, "vehicles_free": vehicles_free,
                                                "stations": stations, "vehicles_by_zone": vehicles_by_zone}, poll)


def zone_messages(system: str, poll: datetime, by_zone: dict[str, int]) -> list[Message]:
    return [_msg("up", f"gbfs/{system}/zone", {"system": system, "poll": poll.timestamp(), "zone": zone,
                                               "vehicles_free": n}, poll) for zone, n in sorted(by_zone.items())]


def log_message(system: str, poll: datetime, text: str, station_id: str = "", check: str = "poll_error") -> Message:
    return _msg("log", f"gbfs/{system}/log", {"system": system, "poll": poll.timestamp(), "station_id": station_id,
                                              "check": check, "detail": text}, poll)


def flag_messages(system: str, poll: datetime, flags: list[Flag]) -> list[Message]:
    return [log_message(system, poll, f.detail, f.station_id, f.check) for f in flags]


def file_message(system: str, name: str, raw: bytes, at: datetime) -> Message:
    """A fetched file refused by the schemas (or unreadable), journaled raw."""
    return Message(source=SOURCE, event="file", fmt="json", raw=raw, received_at=at, topic=f"gbfs/{system}/{name}")


def file_problems(name: str, raw: bytes) -> list[str]:
    """Why a fetched file is refused: not JSON, or the schema's messages (empty: valid)."""
    try:
        doc = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError) as e:
        return [f"not valid JSON: {e}"]
    return schema.errors(name, doc)


# parsing (the pipeline and replay) -----------------------------------------------------------------------
def _flag(v: Any) -> float:
    return 1.0 if v else 0.0


def parse(m: Message) -> Uplink:
    parts = m.topic.split("/")
    if len(parts) != 3 or parts[0] != SOURCE:
        raise ParseError(f"not a GBFS message topic: {m.topic[:80]!r}")
    system, what = parts[1], parts[2]
    if m.event == "file":
        problems = file_problems(what, m.raw)
        raise ParseError(f"GBFS {what} refused: " + ("; ".join(problems) if problems else "kept for the record"))
    try:
        b = msgspec.json.decode(m.raw)
    except (msgspec.DecodeError, RecursionError) as e:
        raise ParseError(f"GBFS message is not JSON: {e}") from None
    if not isinstance(b, dict):
        raise ParseError("GBFS message is not an object")
    try:
        poll = datetime.fromtimestamp(float(b["poll"]), UTC)
        if m.event == "log":
            sid = str(b.get("station_id") or "")
            return Uplink(dev_eui=station_eui(system, sid) if sid else system_eui(system), time=poll, event="log",
                          event_data={"check": b.get("check"), "detail": b.get("detail"), "station_id": sid})
        if what == "system":
            values: list[tuple[str, float]] = [("bikeshare.poll_ok", _flag(b["ok"]))]
            if b.get("last_updated") is not None:
                values += [("bikeshare.last_updated", float(b["last_updated"])),
                           ("bikeshare.feed_age", float(b["poll"]) - float(b["last_updated"]))]
            if b.get("vehicles_free") is not None:
                values.append(("bikeshare.vehicles_free", float(b["vehicles_free"])))
            for zone, n in (b.get("vehicles_by_zone") or {}).items():  # kept as the system's attributes
                values.append((f"vehicles_free.{zone or 'outside'}", float(n)))
            info = DeviceInfo(name=f"GBFS {system}", profile=PROFILE,
                              tags={"kind": "bikeshare_system", "gbfs_system": system})
            return Uplink(dev_eui=system_eui(system), time=poll, values=values, info=info,
                          dedup_key=f"gbfs:{system}:{b['poll']}")
        if what == "zone":
            zone = str(b["zone"])
            return Uplink(dev_eui=zone_eui(system, zone), time=poll,
                          values=[("bikeshare.vehicles_free", float(b["vehicles_free"]))],
                          dedup_key=f"gbfs:{system}:zone:{zone}:{b['poll']}")
        if what != "station":
            raise ParseError(f"unknown GBFS message {what!r}")
        sid = str(b["station_id"])
        values = [("bikeshare.bikes_available", float(b["bikes_available"])),
                  ("bikeshare.installed", _flag(b["installed"])), ("bikeshare.renting", _flag(b["renting"])),
                  ("bikeshare.returning", _flag(b["returning"])),
                  ("bikeshare.last_updated", float(b["last_updated"]))]
        for key, field in (("bikeshare.bikes_disabled", "bikes_disabled"), ("bikeshare.docks_available",
                           "docks_available"), ("bikeshare.docks_disabled", "docks_disabled"),
                           ("bikeshare.last_reported", "last_reported")):
            if b.get(field) is not None:
                values.append((key, float(b[field])))
        tags = {"kind": "bike_station", "gbfs_system": system, "station_id": sid}
        for field in ("zone", "capacity", "lat", "lon"):
            if b.get(field) not in (None, ""):
                tags[field] = str(b[field])
        eui = station_eui(system, sid)
        return Uplink(dev_eui=eui, time=poll, values=values, dedup_key=f"gbfs:{eui}:{b['poll']}",
                      info=DeviceInfo(name=str(b.get("name") or sid), profile=PROFILE, tags=tags))
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise ParseError(f"GBFS message lacks a field or has a wrong one: {type(e).__name__}: {e}") from None


def eui_hint(m: Message) -> str | None:
    parts = m.topic.split("/")
    return system_eui(parts[1]) if len(parts) == 3 and parts[0] == SOURCE else None
