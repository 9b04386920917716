"""Data quality of any quantity (domain-rules.md §7.2): physical range, flat line, spike, clock skew.

Why in front of the other rules: a stuck thermometer reading 38 °C for a day is not a heatwave. Flagged readings
are kept in the store (observations are never altered) with their flag in `observation_flags`, and taken out of
what the other detectors see: range, flat and spike readings are withheld, a clock-skewed uplink is only flagged
(suspect: its values are still the best there is).
"""

from __future__ import annotations

from clapas.config import QualityCheck

RANGE, FLAT, SPIKE, CLOCK_SKEW = "range", "flat", "spike", "clock_skew"
WITHHELD = frozenset({RANGE, FLAT, SPIKE})


class QuantityTrack:
    """One quantity of one device: the reference value (last accepted), the flat run, a spike candidate."""

    __slots__ = ("candidate", "flat_since", "flat_value", "ref", "ref_t")

    def __init__(self) -> None:
        self.ref: float | None = None
        self.ref_t = 0.0
        self.flat_since = 0.0
        self.flat_value: float | None = None
        self.candidate: float | None = None  # a jump withheld as a spike, accepted if the next reading confirms it


def judge(c: QualityCheck, q: QuantityTrack, t: float, v: float) -> str:
    """The flag of one reading ('' if none), updating the quantity's track."""
    if (c.min is not None and v < c.min) or (c.max is not None and v > c.max):
        return RANGE
    flag = ""
    if c.spike is not None and q.ref is not None and t - q.ref_t <= c.spike_window_s and abs(v - q.ref) > c.spike:
        if q.candidate is not None and abs(v - q.candidate) <= c.spike:
            q.candidate = None  # the jump held: a change of level, not a spike
        else:
            q.candidate = v
            return SPIKE
    else:
        q.candidate = None
    if c.flat_s is not None:
        if q.flat_value is not None and abs(v - q.flat_value) <= c.flat_tolerance:
            if t - q.flat_since >= c.flat_s:
                flag = FLAT
        else:
            q.flat_since, q.flat_value = t, v
    q.ref, q.ref_t = v, t
    return flag
