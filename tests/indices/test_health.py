"""Device states between ok and silent (domain-rules.md §7.2): late at 1.5·T (ChirpStack's inactive), silent at 3·T."""

from __future__ import annotations

import msgspec
import pytest

from clapas.config import HealthSettings
from clapas.indices.health import LATE, NEVER_SEEN, OK, SILENT, UNKNOWN, device_state, frame_segments

T = 600.0


def state(age: float | None, interval: float | None = T, alert: bool = False) -> str:
    return device_state(age, interval, late_factor=1.5, silent_factor=3.0, silent_alert=alert)


def test_late_after_one_and_a_half_intervals_silent_after_three() -> None:
    assert state(1.5 * T) == OK and state(1.5 * T + 1) == LATE
    assert state(3 * T) == LATE and state(3 * T + 1) == SILENT


def test_a_device_sending_at_t_plus_two_percent_is_never_late() -> None:
    assert all(state(k / 100 * T) == OK for k in range(0, 103))


def test_never_seen_unknown_and_the_rules_alert() -> None:
    assert state(None) == NEVER_SEEN and state(None, alert=True) == NEVER_SEEN
    assert state(10_000.0, None) == UNKNOWN
    assert state(10.0, alert=True) == SILENT  # the rule's finding wins (its gateway came back: silence resumed)


def test_late_must_come_before_silent() -> None:
    with pytest.raises(ValueError, match="late_factor"):
        device_state(10.0, T, late_factor=4.0, silent_factor=3.0)
    with pytest.raises(msgspec.ValidationError, match="late comes before silent"):
        msgspec.convert({"late_factor": 3.5}, HealthSettings)


# --- frame counters (§7.4) ---
def frames(fcnts: list[int], max_gap: int = 16_384):
    return frame_segments([(float(i), f) for i, f in enumerate(fcnts)], max_gap)


def test_ten_missing_of_a_hundred_is_ten_percent() -> None:
    missing = {5, 17, 23, 42, 43, 44, 60, 71, 88, 99}
    [seg], counts = frames([f for f in range(1, 101) if f not in missing])
    assert (seg.first, seg.last, seg.received, seg.expected) == (1, 100, 90, 100)
    assert seg.loss == pytest.approx(0.10) and counts["resets"] == 0


def test_a_reset_starts_a_new_segment_never_a_negative_loss() -> None:
    segs, counts = frames([*range(50, 60), *range(0, 5)])
    assert [(s.first, s.last, s.received) for s in segs] == [(50, 59, 10), (0, 4, 5)]
    assert [s.ended_by for s in segs] == ["reset", None] and counts["resets"] == 1
    assert all(s.loss == 0.0 for s in segs)


def test_retransmissions_are_counted_apart() -> None:
    [seg], counts = frames([1, 2, 2, 2, 3, 5])
    assert (seg.received, seg.expected, counts["retransmissions"]) == (4, 5, 2)


def test_a_16_bit_roll_over_continues_the_segment() -> None:
    [seg], counts = frames([65_533, 65_534, 65_535, 0, 2, 3])  # 1 lost across the roll-over
    assert (seg.first, seg.last, seg.received, seg.expected) == (65_533, 65_539, 6, 7)
    assert counts == {"retransmissions": 0, "resets": 0, "jumps": 0, "rollovers": 1}
    [seg], _ = frames([70_000, 70_001])  # a 32-bit counter past 65,535 simply grows
    segs, counts = frames([70_001, 3])  # …and one that falls back is a reset, whatever its value
    assert len(segs) == 2 and counts["resets"] == 1 and counts["rollovers"] == 0


def test_a_jump_beyond_the_maximum_gap_is_a_new_segment() -> None:
    segs, counts = frames([10, 11, 11 + 16_385, 11 + 16_386])
    assert [s.ended_by for s in segs] == ["jump", None] and counts["jumps"] == 1
    assert [s.loss for s in segs] == [0.0, 0.0]
    [seg], _ = frames([10, 10 + 16_384])  # exactly the maximum gap: the same session, 16,383 lost
    assert seg.expected == 16_385 and seg.received == 2
