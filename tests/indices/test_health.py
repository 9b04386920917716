"""Device states between ok and silent (domain-rules.md §7.2): late at 1.5·T (ChirpStack's inactive), silent at 3·T."""

from __future__ import annotations

import msgspec
import pytest

from clapas.config import HealthSettings
from clapas.indices.health import LATE, NEVER_SEEN, OK, SILENT, UNKNOWN, device_state

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
