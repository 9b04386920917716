"""Temporal parameters and aggregation (§4.5.19, §6.3.12) as functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clapas.api.ngsi_ld.errors import NgsiError
from clapas.api.ngsi_ld.temporal import aggregate, parse_duration, temporal_values, time_range


@pytest.mark.parametrize(("text", "seconds"), [("PT1H", 3600), ("P1D", 86400), ("PT1M30S", 90), ("P1W", 604800),
                                                ("P1DT12H", 129600), ("PT0.5S", 0.5), ("P1M", 30 * 86400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "1H", "PT1X", "P1DT", "PT0S"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(NgsiError):
        parse_duration(text)


def test_time_ranges() -> None:
    t = datetime(2020, 8, 1, 12, tzinfo=UTC)
    assert time_range(None, None, None) == (None, None)
    assert time_range("before", "2020-08-01T12:00:00Z", None) == (None, t)
    assert time_range("after", "2020-08-01T14:00:00+02:00", None) == (t, None)
    start, end = time_range("between", "2020-08-01T12:00:00Z", "2020-08-02T12:00:00Z")
    assert start == t and (end - start).days == 1
    for bad in (("between", "2020-08-01T12:00:00Z", None), ("before", None, None), (None, "2020-08-01", None),
                ("between", "2020-08-02T00:00:00Z", "2020-08-01T00:00:00Z"), ("after", "soon", None)):
        with pytest.raises(NgsiError):
            time_range(*bad)


INSTANCES = [{"type": "Property", "value": v, "observedAt": f"2020-08-01T{h}:00Z"}
             for v, h in ((120, "12:03"), (80, "12:05"), (100, "12:07"), (40, "13:10"))]


def test_aggregate_by_period_from_the_first_instance() -> None:
    out = aggregate(INSTANCES, ("avg", "max", "totalCount", "sumsq"), 3600, None, None)
    assert out["avg"] == [[100.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"],
                          [40.0, "2020-08-01T13:03:00Z", "2020-08-01T14:03:00Z"]]
    assert [r[0] for r in out["max"]] == [120.0, 40.0] and [r[0] for r in out["totalCount"]] == [3, 1]
    assert out["sumsq"][1][0] == 1600.0


def test_aggregate_over_the_range_and_non_numbers() -> None:
    start, end = datetime(2020, 8, 1, 12, tzinfo=UTC), datetime(2020, 8, 1, 14, tzinfo=UTC)
    out = aggregate(INSTANCES, ("sum", "min"), None, start, end)
    assert out["sum"] == [[340.0, "2020-08-01T12:00:00Z", "2020-08-01T14:00:00Z"]]
    words = [{"value": w, "observedAt": "2020-08-01T12:00:00Z"} for w in ("a", "b", "a")]
    out = aggregate(words, ("distinctCount", "avg"), None, None, None)
    assert out["distinctCount"][0][0] == 2 and out["avg"][0][0] is None
    assert aggregate([], ("avg",), 60, None, None) == {"type": "Property", "avg": []}


def test_temporal_values_by_type() -> None:
    assert temporal_values(INSTANCES[:1]) == {"type": "Property", "values": [[120.0, "2020-08-01T12:03:00Z"]]}
    rel = [{"type": "Relationship", "object": "urn:x:1", "observedAt": "2020-08-01T12:00:00Z"}]
    assert temporal_values(rel) == {"type": "Relationship", "objects": [["urn:x:1", "2020-08-01T12:00:00Z"]]}
