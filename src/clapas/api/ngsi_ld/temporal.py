"""The temporal API's parameters and aggregation (ETSI GS CIM 009 §4.5.18–4.5.19, §5.7.3–5.7.4, §6.3.12).

`time_range` resolves `timerel`/`timeAt`/`endTimeAt` to one [start, end) range (before: up to timeAt; after: from
timeAt; between: timeAt to endTimeAt). `parse_duration` reads `aggrPeriodDuration` (ISO 8601: `PT1H`, `P1D`,
`P1M` = 30 days, `P1Y` = 365 days: the spec's periods are fixed lengths here). `aggregate` computes the aggregated
temporal representation of one attribute's instances: per method a list of `[value, start, end]` per period.
`temporal_values` turns instances into the simplified (`temporalValues`) representation.

Public API (stable): `AGGR_METHODS`, `time_range`, `parse_duration`, `aggregate`, `temporal_values`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from clapas.api.ngsi_ld.errors import bad_request

AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
                       r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_UNIT_S = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def parse_duration(text: str) -> float:
    """An ISO 8601 duration in seconds (400 BadRequestData when malformed or zero)."""
    m = _DURATION.match(text.strip()) if text else None
    if not m or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise bad_request(f"aggrPeriodDuration {text!r} is not an ISO 8601 duration (e.g. PT1H, P1D)")
    seconds = sum(float(g) * u for g, u in zip(m.groups(), _UNIT_S, strict=True) if g)
    if seconds <= 0:
        raise bad_request("aggrPeriodDuration must be longer than zero")
    return seconds


def _time(value: str, name: str) -> datetime:
    from clapas.api.ngsi_ld.entity import parse_time

    return parse_time(value, name)


def time_range(timerel: str | None, time_at: str | None, end_time_at: str | None,
               ) -> tuple[datetime | None, datetime | None]:
    """[start, end) of a temporal query; (None, None) without timerel."""
    if timerel is None:
        if time_at is not None or end_time_at is not None:
            raise bad_request("timeAt and endTimeAt need timerel")
        return None, None
    if timerel not in ("before", "after", "between"):
        raise bad_request(f"timerel must be before, after or between, not {timerel!r}")
    if time_at is None:
        raise bad_request(f"timerel={timerel} needs timeAt")
    t = _time(time_at, "timeAt")
    if timerel == "before":
        return None, t
    if timerel == "after":
        return t, None
    if end_time_at is None:
        raise bad_request("timerel=between needs endTimeAt")
    end = _time(end_time_at, "endTimeAt")
    if end <= t:
        raise bad_request("endTimeAt must be after timeAt")
    return t, end


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float) and math.isfinite(v):
        return float(v)
    return None


def _text(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _value_of(inst: dict[str, Any]) -> Any:
    for k in ("value", "object", "languageMap", "vocab", "json", "valueList", "objectList"):
        if k in inst:
            return inst[k]
    return None


def _apply(method: str, values: list[Any]) -> Any:
    nums = [n for n in (_number(v) for v in values) if n is not None]
    if method == "totalCount":
        return len(values)
    if method == "distinctCount":
        return len({repr(v) for v in values})
    if not nums:
        return None
    if method == "sum":
        return sum(nums)
    if method == "sumsq":
        return sum(n * n for n in nums)
    if method == "avg":
        return sum(nums) / len(nums)
    if method == "min":
        return min(nums)
    if method == "max":
        return max(nums)
    mean = sum(nums) / len(nums)  # stddev: the population's (NGSI-LD gives no formula; Orion-LD's TRoE uses stddev_pop)
    return math.sqrt(sum((n - mean) ** 2 for n in nums) / len(nums))


def aggregate(instances: Sequence[dict[str, Any]], methods: Sequence[str], period_s: float | None,
              start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """The aggregated representation of one attribute: `{"type": "Property", method: [[value, start, end], ...]}`.

    Periods are `period_s` long from `start` (or the first instance); without a period, one period over the
    range (or over the instances). Empty periods are left out."""
    from clapas.api.ngsi_ld.entity import parse_time

    timed = [(parse_time(i["observedAt"], "observedAt"), _value_of(i)) for i in instances if i.get("observedAt")]
    out: dict[str, Any] = {"type": "Property"}
    if not timed:
        for m in methods:
            out[m] = []
        return out
    first = start or min(t for t, _ in timed)
    last = end or (max(t for t, _ in timed) + timedelta(microseconds=1))
    step = timedelta(seconds=period_s) if period_s else (last - first)
    buckets: dict[int, list[Any]] = {}
    for t, v in timed:
        k = int((t - first) / step) if step.total_seconds() > 0 else 0
        buckets.setdefault(k, []).append(v)
    for m in methods:
        rows = []
        for k in sorted(buckets):
            b0 = first + step * k
            b1 = min(b0 + step, last) if end is not None or not period_s else b0 + step
            rows.append([_apply(m, buckets[k]), _text(b0), _text(b1)])
        out[m] = rows
    return out


def temporal_values(instances: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The simplified temporal representation of one attribute (§4.5.19)."""
    typ = instances[0].get("type", "Property") if instances else "Property"
    key = {"Relationship": "objects", "LanguageProperty": "languageMaps", "VocabProperty": "vocabs",
           "JsonProperty": "jsons", "ListProperty": "valueLists"}.get(typ, "values")
    return {"type": typ, key: [[_as_double(_value_of(i)), i.get("observedAt")] for i in instances]}


def _as_double(v: Any) -> Any:
    """Numbers as doubles (JSON does not tell 67 from 67.0; the reference brokers and the ETSI fixtures print
    temporal values as 67.0)."""
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else v
