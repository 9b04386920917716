"""Counter data that arrives as files: Eco-Counter-style NGSI `TrafficFlowObserved` documents (domain-rules §6.8) and
CSV measures in the national counting schema (§6.3). Each count becomes one message of source `counts` (its
normalised record as JSON), so the pipeline journals, deduplicates and stores it like any uplink.

The real world's files are tolerated: concatenated JSON objects (not an array, not strict JSON Lines, §6.8), glued
(`}{`) or repeated documents, arrays, key-values or normalized (`{"type": "Property", "value": …}`) attributes,
duplicates (the first kept; a repeat with another count is a *conflict*, reported), out-of-order days (reported,
stored in place). Identity follows §6.8: the counter is the entity id without its `_<YYYYMMDD>0000` day suffix —
never `laneId`, which several counters share. A count is observed at the *end* of its period (as a LoRaWAN counter's
uplink reports what it counted before it), with the period length in the device's `time_step` tag. Missing days
stay missing (never 0).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from clapas.connectors.limits import ParseError
from clapas.model import DeviceInfo, Message, Uplink

SOURCE = "counts"
_DAY_SUFFIX = re.compile(r"^(?P<key>.+)_(?P<day>\d{8})\d{4}$")
_URN = "urn:ngsi-ld:TrafficFlowObserved:"
DIRECTION_QUANTITY = {"IN": "counter.in", "OUT": "counter.out"}  # INDISTINCT / none: counter.count


class CountRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One count of one channel over [start, end) (POSIX s), normalised."""

    counter: str
    start: float
    end: float
    count: float
    direction: str = ""  # IN, OUT or "" (indistinct, both directions)
    name: str = ""
    lat: float | None = None
    lon: float | None = None
    vehicle_type: str = ""
    lane_id: str = ""
    kind: str = "bike_counter"


def counter_eui(counter: str) -> str:
    return hashlib.blake2b(f"counter\x00{counter}".encode(), digest_size=8).hexdigest()


@dataclass
class Report:
    """What an import found, for the person who ran it."""

    documents: int = 0
    glued: int = 0  # documents not separated by a newline from the previous one
    records: int = 0
    invalid: list[str] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)
    out_of_order: int = 0
    counters: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "glued": self.glued, "records": self.records,
                "invalid": len(self.invalid), "invalid_examples": self.invalid[:10], "duplicates": self.duplicates,
                "conflicts": len(self.conflicts), "conflict_examples": self.conflicts[:10],
                "out_of_order": self.out_of_order, "counters": self.counters}


def split_documents(text: str, report: Report) -> list[Any]:
    """Every JSON value of a text of concatenated documents (whitespace, commas or nothing between them)."""
    dec = json.JSONDecoder()
    out: list[Any] = []
    i, n = 0, len(text)
    prev_end = -1
    while i < n:
        while i < n and text[i] in " \t\r\n,\ufeff":
            i += 1
        if i >= n:
            break
        try:
            doc, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            report.invalid.append(f"offset {i}: not JSON ({e.msg}); skipped to the next object")
            nxt = text.find("{", i + 1)
            if nxt < 0:
                break
            i = nxt
            continue
        if prev_end >= 0 and "\n" not in text[prev_end:i]:
            report.glued += 1
        prev_end = end
        items = doc if isinstance(doc, list) else [doc]
        out.extend(items)
        report.documents += len(items)
        i = end
    return out


def _value(v: Any) -> Any:
    """Key-values as they are; normalized NGSI (v2 or LD) attributes unwrapped."""
    if isinstance(v, dict) and "value" in v and ("type" in v or "metadata" in v):
        v = v["value"]
    if isinstance(v, dict) and "@value" in v:
        v = v["@value"]
    return v


def _time(s: str, tz: ZoneInfo) -> float:
    t = datetime.fromisoformat(s.strip().replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=tz)).timestamp()


def ngsi_record(doc: Any, tz: ZoneInfo, default_step_s: int) -> CountRecord:
    """One TrafficFlowObserved entity as a count; ValueError with the reason when it is not one."""
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    if doc.get("type") not in ("TrafficFlowObserved", None):
        raise ValueError(f"type {doc.get('type')!r} is not TrafficFlowObserved")
    eid = str(doc.get("id") or "")
    if not eid:
        raise ValueError("no id")
    intensity = _value(doc.get("intensity"))
    if intensity is None:
        raise ValueError(f"{eid}: no intensity (no data: left missing, never 0)")
    if isinstance(intensity, bool) or not isinstance(intensity, int | float) or intensity < 0:
        raise ValueError(f"{eid}: intensity {intensity!r} is not a count")
    observed = _value(doc.get("dateObserved"))
    if not isinstance(observed, str):
        raise ValueError(f"{eid}: no dateObserved")
    frm, to = _value(doc.get("dateObservedFrom")), _value(doc.get("dateObservedTo"))
    if isinstance(frm, str) and isinstance(to, str):  # explicit bounds, usually with their offset
        start, end = _time(frm, tz), _time(to, tz)
    elif "/" in observed:  # an ISO 8601 interval; without an offset the city's local time (§6.8)
        a, b = observed.split("/", 1)
        start, end = _time(a, tz), _time(b, tz)
    else:
        end = _time(observed, tz)
        start = end - default_step_s
    if end <= start:
        raise ValueError(f"{eid}: dateObserved ends before it starts")
    key = eid.removeprefix(_URN)
    m = _DAY_SUFFIX.match(key)
    if m:
        key = m.group("key")
    loc = _value(doc.get("location"))
    lat = lon = None
    if isinstance(loc, dict) and loc.get("type") == "Point":
        with_coords = loc.get("coordinates") or []
        if len(with_coords) >= 2:
            lon, lat = float(with_coords[0]), float(with_coords[1])
    vt = str(_value(doc.get("vehicleType")) or "")
    reversed_lane = _value(doc.get("reversedLane"))
    return CountRecord(counter=key, start=start, end=end, count=float(intensity),
                       direction="OUT" if reversed_lane is True else "", name=str(_value(doc.get("name")) or key),
                       lat=lat, lon=lon, vehicle_type=vt, lane_id=str(_value(doc.get("laneId")) or ""),
                       kind="bike_counter" if vt == "bicycle" else "traffic_counter")


def csv_records(text: str, tz: ZoneInfo, report: Report, default_step_s: int) -> list[CountRecord]:
    """Measures of the national schema (§6.3): counter_id (or channel_id), start_datetime (inclusive),
    end_datetime (exclusive; empty: the channel's time_step), count (empty: no data); optional direction."""
    out = []
    reader = csv.DictReader(io.StringIO(text))
    missing = {"start_datetime", "count"} - set(reader.fieldnames or [])
    if missing or not ({"counter_id", "channel_id"} & set(reader.fieldnames or [])):
        raise ValueError(f"CSV lacks the columns {', '.join(sorted(missing)) or 'counter_id or channel_id'}")
    for line, row in enumerate(reader, start=2):
        report.documents += 1
        try:
            if (row.get("count") or "").strip() == "":
                continue  # "empty when no data" (§6.3): missing, never 0
            start = _time(row["start_datetime"], tz)
            end = _time(row["end_datetime"], tz) if (row.get("end_datetime") or "").strip() else start + default_step_s
            count = float(row["count"])
            if count < 0 or count != count:
                raise ValueError(f"count {row['count']!r} is not a count")
            direction = (row.get("direction") or "").strip().upper()
            out.append(CountRecord(counter=(row.get("counter_id") or row.get("channel_id") or "").strip(),
                                   start=start, end=end, count=count,
                                   direction=direction if direction in DIRECTION_QUANTITY else "",
                                   kind=(row.get("kind") or "bike_counter").strip() or "bike_counter"))
        except (KeyError, ValueError, TypeError) as e:
            report.invalid.append(f"line {line}: {e}")
    return out


def to_messages(records: list[CountRecord], report: Report, received: datetime) -> list[Message]:
    """One message per count; duplicates, conflicts and out-of-order periods counted in the report."""
    seen: dict[tuple[str, str, float], float] = {}
    last: dict[tuple[str, str], float] = {}
    days: dict[str, set[float]] = defaultdict(set)
    out = []
    for r in records:
        report.records += 1
        k = (r.counter, r.direction, r.start)
        if k in seen:
            report.duplicates += 1
            if seen[k] != r.count:
                report.conflicts.append(f"{r.counter} {datetime.fromtimestamp(r.start, UTC).isoformat()}: "
                                        f"{seen[k]:g} kept, {r.count:g} ignored")
            continue
        seen[k] = r.count
        if r.start < last.get(k[:2], float("-inf")):
            report.out_of_order += 1
        last[k[:2]] = max(last.get(k[:2], float("-inf")), r.start)
        days[r.counter].add(r.start)
        out.append(Message(source=SOURCE, event="up", fmt="json", raw=msgspec.json.encode(r), received_at=received,
                           topic=f"counts/{r.counter}"))
    for counter, starts in days.items():
        ordered = sorted(starts)
        step = min((b - a for a, b in itertools.pairwise(ordered)), default=0.0)
        gaps = sum(round((b - a) / step) - 1 for a, b in itertools.pairwise(ordered)) if step else 0
        report.counters[counter] = {"eui": counter_eui(counter), "periods": len(ordered),
                                    "first": datetime.fromtimestamp(ordered[0], UTC).isoformat(),
                                    "last": datetime.fromtimestamp(ordered[-1], UTC).isoformat(),
                                    "missing_periods": gaps}
    return out


def parse(m: Message) -> Uplink:
    try:
        r = msgspec.json.decode(m.raw, type=CountRecord)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise ParseError(f"not a count record: {e}") from None
    eui = counter_eui(r.counter)
    tags = {"kind": r.kind, "counter_id": r.counter, "time_step": str(int(r.end - r.start))}
    if r.lat is not None and r.lon is not None:
        tags["lat"], tags["lon"] = str(r.lat), str(r.lon)
    for k, v in (("vehicle_type", r.vehicle_type), ("lane_id", r.lane_id)):
        if v:
            tags[k] = v
    quantity = DIRECTION_QUANTITY.get(r.direction, "counter.count")
    return Uplink(dev_eui=eui, time=datetime.fromtimestamp(r.end, UTC), values=[(quantity, r.count)],
                  dedup_key=f"counts:{eui}:{r.direction}:{r.start}",
                  info=DeviceInfo(name=r.name or r.counter, profile="counts", tags=tags))


def eui_hint(m: Message) -> str | None:
    return counter_eui(m.topic.removeprefix("counts/")) if m.topic.startswith("counts/") else None

