"""Each device's state between ok and silent (late, §7.2) as the health routes serve it, read from the store.

Why here and not in the detector: ChirpStack's "inactive" is a count of devices, never an event, and a late device
needs nobody yet; so *late* raises no alert, it is computed when asked, from `devices.last_seen` and the device's
uplink interval T, which is the silent rule's: the profile's, else the registry's, else learned from the journal
(`Store.learned_intervals`, the median of the last intervals, kept per device by the store: one row per device). A
device with an open `health.silent` alert is silent whatever its times say (the rule knows its grace and its
gateway's outages). A fleet call (the summary, `/health/devices`) has the store judge every device in one statement
(`Fleet`: counted per group, paged by EUI, the same answers to the bit); a device's own route judges it here
(`device_states`, the reference the store's classification is tested against).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from clapas.config import HealthSettings, ProfileSettings
from clapas.indices.health import STATES, device_state, frame_segments
from clapas.store.base import Store
from clapas.store.health import Judging

SILENT_RULE, GATEWAY_RULE = "health.silent", "health.gateway_offline"
MAX_ALERTS = 1_000_000
ALL_DEVICES = 10_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FEW_DEVICES = 1000  # design: a shorter list of devices reads only its own kept times (a device's own route)


def _aware(t: datetime | None) -> datetime | None:
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def interval_of(d: dict[str, Any], profiles: dict[str, ProfileSettings],
                learned: dict[str, float]) -> tuple[float | None, str | None]:
    """(T in seconds, where it comes from: profile, registry or learned), as the silent rule takes it."""
    prof = profiles.get(d.get("profile") or "")
    if prof is not None and prof.expected_interval_s:
        return float(prof.expected_interval_s), "profile"
    if d.get("expected_interval_s"):
        return float(d["expected_interval_s"]), "registry"
    if d["eui"] in learned:
        return learned[d["eui"]], "learned"
    return None, None


def open_health_alerts(store: Store) -> list[dict[str, Any]]:
    """The open and acknowledged health alerts (at most `MAX_ALERTS`)."""
    return store.alerts(states=("open", "acknowledged"), rule_prefix="health.", limit=MAX_ALERTS)


def _open_health(store: Store, open_alerts: list[dict[str, Any]] | None = None) -> tuple[set[str], dict[str, str]]:
    """(devices whose `health.silent` alert is open, the offline gateway each orphaned device is heard only by),
    from `open_alerts` when the caller has read them (`open_health_alerts`)."""
    if open_alerts is None:
        open_alerts = open_health_alerts(store)
    silent = {a["subject"] for a in open_alerts if a["rule"] == SILENT_RULE}
    orphaned = {e: a["subject"] for a in open_alerts if a["rule"] == GATEWAY_RULE
                for e in (a["evidence"] or {}).get("orphaned", [])}
    return silent, orphaned


def _window(settings: HealthSettings, at: datetime) -> tuple[datetime, datetime, int, int]:
    """The learned intervals' window before `at` and its rule (`learned_intervals`' arguments)."""
    return at - timedelta(seconds=settings.learn_window_s), at, settings.learn_uplinks, settings.learn_min_uplinks


def _row(settings: HealthSettings, r: dict[str, Any], orphaned: dict[str, str]) -> dict[str, Any]:
    """A device's row as the routes serve it: what its state was judged on, when it turns late and silent."""
    last, t_ = r["last_seen"], r["interval_s"]
    row = {**r, "late_after": None, "silent_after": None, "orphaned_by": orphaned.get(r["eui"])}
    if last is not None and t_ is not None:
        row["late_after"] = last + timedelta(seconds=settings.late_factor * t_)
        row["silent_after"] = last + timedelta(seconds=settings.silent_factor * t_)
    return row


def device_states(store: Store, settings: HealthSettings, profiles: dict[str, ProfileSettings], at: datetime,
                  devices: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per registry device (or per `devices`): its state at `at` and what it was judged on, judged here
    (a device's own route; `Fleet` has the store judge thousands, with the same answers)."""
    at = _aware(at) or datetime.now(UTC)
    few = devices is not None and len(devices) <= FEW_DEVICES
    devices = store.health_devices() if devices is None else devices
    learned = store.learned_intervals(*_window(settings, at), euis=[d["eui"] for d in devices] if few else None)
    silent, orphaned = _open_health(store)
    out = []
    for d in devices:
        last = _aware(d.get("last_seen"))
        t_, source = interval_of(d, profiles, learned)
        age = None if last is None else max(0.0, (at - last).total_seconds())
        state = device_state(age, t_, late_factor=settings.late_factor, silent_factor=settings.silent_factor,
                             silent_alert=d["eui"] in silent)
        out.append(_row(settings, {"eui": d["eui"], "name": d.get("name") or "", "kind": d.get("kind") or "",
                                   "zone": d.get("zone") or "", "state": state, "last_seen": last, "interval_s": t_,
                                   "interval_source": source}, orphaned))
    return out


class Fleet:
    """The fleet's device states at one time, judged by the store (`HealthTables.health_states`: one statement
    over the registry, no row per device brought into Python): what `device_states` finds, counted per group of
    devices and listed a page at a time."""

    def __init__(self, store: Store, settings: HealthSettings, profiles: dict[str, ProfileSettings],
                 at: datetime, open_alerts: list[dict[str, Any]] | None = None) -> None:
        at = _aware(at) or datetime.now(UTC)
        self.store, self.settings = store, settings
        silent, self.orphaned = _open_health(store, open_alerts)
        self.judging = Judging(
            at_us=(at - EPOCH) // timedelta(microseconds=1), late_factor=float(settings.late_factor),
            silent_factor=float(settings.silent_factor),
            profiles={n: float(p.expected_interval_s) for n, p in profiles.items() if p.expected_interval_s},
            alerted=sorted(silent), learned=store.learned_window(*_window(settings, at)))

    def judge(self, groups: list[tuple[str, str, str]] | None, *, state: str | None = None, kind: str | None = None,
              zone: str | None = None, limit: int = 1000) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(devices per (state, kind, zone, data_class, premises_use), texts coalesced to ''; the first `limit` by
        EUI of `state` and of the (data_class, kind, premises_use) `groups` (None: all), rows as `device_states`')."""
        counted, rows = self.store.health_states(self.judging, kind=kind, zone=zone, state=state, groups=groups,
                                                 limit=max(limit, 0))
        return counted, [_row(self.settings, {**r, "name": r["name"] or "", "kind": r["kind"] or "",
                                              "zone": r["zone"] or ""}, self.orphaned) for r in rows]


def state_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Devices per state, every state named (0 included): of `device_states`' rows, or of `Fleet.groups`."""
    c: Counter[str] = Counter()
    for r in rows:
        c[r["state"]] += r.get("devices", 1)
    return {s: c.get(s, 0) for s in STATES}



def frame_loss(store: Store, settings: HealthSettings, eui: str, at: datetime) -> dict[str, Any]:
    """A device's frame loss over the window before `at`, per fCnt segment (§7.4) and in total."""
    since = at - timedelta(seconds=settings.frame_window_s)
    ups = store.frame_counters(eui, since, at)
    segs, counts = frame_segments(ups, settings.fcnt_max_gap)
    received = sum(s.received for s in segs)
    expected = sum(s.expected for s in segs)
    return {"since": since, "uplinks": len(ups), "received": received, "expected": expected,
            "lost": expected - received, "loss": round(1 - received / expected, 4) if expected else None, **counts,
            "segments": [{"first_fcnt": s.first, "last_fcnt": s.last, "received": s.received,
                          "expected": s.expected, "lost": s.expected - s.received, "loss": round(s.loss, 4),
                          "start": datetime.fromtimestamp(s.start, UTC), "end": datetime.fromtimestamp(s.end, UTC),
                          "ended_by": s.ended_by} for s in segs]}


CLOCK_SKEW_FLAG = "clock_skew"  # `clapas.detectors.health.quality.CLOCK_SKEW`, as stored in observation_flags
MAX_FLAGS = 100_000


def clock(store: Store, settings: HealthSettings, d: dict[str, Any], at: datetime) -> dict[str, Any] | None:
    """The device's clock against the network's (§7.2), from the last uplink whose payload carried the device's
    time (the `device_time` attribute a decoder gives; the pipeline keeps the skew beside it), and how many uplinks
    the health rules flagged for it in the frame window. None for a device whose payloads carry no time."""
    attrs = d.get("attributes") or {}
    skew = attrs.get("clock_skew_s")
    if not isinstance(skew, int | float) or isinstance(skew, bool):
        return None
    since = at - timedelta(seconds=settings.frame_window_s)
    flagged = sum(1 for f in store.observation_flags(d["eui"], limit=MAX_FLAGS)
                  if f["flag"] == CLOCK_SKEW_FLAG and since <= f["time"] <= at)
    return {"device_time": attrs.get("device_time"), "checked_at": attrs.get("clock_checked_at"),
            "skew_s": float(skew), "limit_s": settings.clock_skew_s, "suspect": abs(skew) > settings.clock_skew_s,
            "flagged_uplinks": flagged, "since": since}
