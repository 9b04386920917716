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
