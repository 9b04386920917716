"""Device states between ok and silent, from when a device was last heard and its uplink interval T
(domain-rules.md §7.2). Nothing here does I/O; the health routes (`clapas.reports.health`) read the store.

- `late`: `now − last_seen > late_factor × T` — ChirpStack v4's "inactive" count (1.5 × the profile's uplink
  interval, `storage/device.rs`), which ChirpStack only counts, never alerts; §7.2's proposal calls it late;
- `silent`: `> silent_factor × T` (3 missed uplinks, the `health.silent` rule's threshold), or the rule's alert is
  open;
- `never_seen`: registered, never heard; `unknown`: heard, but no T is known (no profile or registry interval,
  too few uplinks to learn one); `ok` otherwise.
"""

from __future__ import annotations

OK, LATE, SILENT, NEVER_SEEN, UNKNOWN = "ok", "late", "silent", "never_seen", "unknown"
STATES = (OK, LATE, SILENT, NEVER_SEEN, UNKNOWN)


def device_state(age_s: float | None, interval_s: float | None, *, late_factor: float, silent_factor: float,
                 silent_alert: bool = False) -> str:
    """The state of a device last heard `age_s` seconds ago (None: never), whose uplink interval is `interval_s`."""
    if not 0 < late_factor <= silent_factor:
        raise ValueError(f"late_factor {late_factor} must be > 0 and at most silent_factor {silent_factor}")
    if age_s is None:
        return NEVER_SEEN
    if silent_alert:
        return SILENT
    if interval_s is None or interval_s <= 0:
        return UNKNOWN
    if age_s > silent_factor * interval_s:
        return SILENT
    if age_s > late_factor * interval_s:
        return LATE
    return OK


# --- frame counters (§7.4) ----------------------------------------------------------------------------------------
FCNT_ON_AIR = 1 << 16  # LoRaWAN's FCnt field is 16 bits on air; network servers report the 32-bit counter they keep


class Segment:
    """A run of uplinks whose frame counter only grew: fCnt first…last (unwrapped), how many arrived."""

    __slots__ = ("end", "ended_by", "first", "last", "last_raw", "received", "start")

    def __init__(self, t: float, f_cnt: int, offset: int) -> None:
        self.start = self.end = t
        self.first = self.last = f_cnt + offset
        self.last_raw = f_cnt
        self.received = 1
        self.ended_by: str | None = None  # reset (the counter went down) or jump (a gap beyond the maximum)

    @property
    def expected(self) -> int:
        return self.last - self.first + 1

    @property
    def loss(self) -> float:
        """§7.4: 1 − received / (fCnt_last − fCnt_first + 1), never negative."""
        return max(0.0, 1 - self.received / self.expected)


def frame_segments(uplinks: list[tuple[float, int]], max_gap: int) -> tuple[list[Segment], dict[str, int]]:
    """(segments, counts of retransmissions, resets, jumps and roll-overs) of a device's uplinks (time, fCnt) in
    time order.

    §7.4: the same fCnt again is a retransmission (not a new frame); the counter going down is a reset (a reboot, a
    rejoin: a new segment) unless it is a 16-bit roll-over (from the last `max_gap` values below 65,536 to a small
    one, within `max_gap` frames: the segment goes on); a jump forward beyond `max_gap` (LoRaWAN ≤ 1.0.3's
    MAX_FCNT_GAP) cannot be the same session either: a new segment."""
    segs: list[Segment] = []
    counts = {"retransmissions": 0, "resets": 0, "jumps": 0, "rollovers": 0}
    offset = 0
    for t, f in uplinks:
        if not segs:
            segs.append(Segment(t, f, offset))
            continue
        s = segs[-1]
        if f == s.last_raw:
            counts["retransmissions"] += 1
            s.end = t
            continue
        if f < s.last_raw:
            if s.last_raw < FCNT_ON_AIR and f + FCNT_ON_AIR - s.last_raw <= max_gap:
                offset += FCNT_ON_AIR
                counts["rollovers"] += 1
            else:
                s.ended_by = "reset"
                counts["resets"] += 1
                offset = 0
                segs.append(Segment(t, f, offset))
                continue
        elif f - s.last_raw > max_gap:
            s.ended_by = "jump"
            counts["jumps"] += 1
            offset = 0
            segs.append(Segment(t, f, offset))
            continue
        s.last, s.last_raw, s.end = f + offset, f, t
        s.received += 1
    return segs, counts
