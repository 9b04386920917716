"""The health rules over the fleet (domain-rules.md §7), on the stream's time like every detector.

Rules (names as in alerts and in `clapas score`):
- `health.silent` (subject: a device): no uplink for `silent_factor × T` (+ a grace of at most one check), T from
  the device's profile, else its registry entry, else learned (median of its last inter-arrival times); clears on
  its next uplink. A registered device never heard `never_seen_after_s` after the stream began opens it too
  (evidence `state: never_seen`). The alert store marks the device's other alerts stale meanwhile.
- `health.gateway_offline` (subject: a gateway id): ChirpStack's stats rule or the Bridge's OFFLINE, debounced; its
  evidence lists the orphaned devices (heard only by it: their silence is not alerted while it is down) and those
  that lose redundancy. Clears when it reports again.
- `health.battery_low` (subject: a device): vendor flag, 24-h mean voltage under the chemistry's thresholds, the
  knee of a lithium cell, a 30-day trend reaching the threshold within 60 days, or DevStatus < 20 %; evidence has
  the forecast date.
- `health.radio` (subject: a device): degrading / critical link margin from its daily medians; evidence has the
  frame-counter loss of the current segment.
- `health.stuck_sensor` (subject: a device): a quantity flat for its `flat_s`; its readings are withheld from the
  other rules (see `quality`).
Every check is made at an event's own time when the event shows it (an uplink after a long gap: the silence
opened and closed), and at the stream's watermark otherwise, so that how the stream was batched does not matter.

Partitioned mode (`pipeline.partition_detectors`): each partition's detector sees its own devices and every
gateway's events; `owns` says which subjects are its partition's: it opens never-seen silences only for its own
devices and a gateway's incident only if it owns the gateway, while every partition suppresses the silence of its
own orphans.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Callable
from typing import Any

from clapas.config import HealthSettings, ProfileSettings
from clapas.detectors.base import CLEAR, OPEN, Detection, Detector, DeviceMeta, utc
from clapas.detectors.health import battery as bat
from clapas.detectors.health import gateways as gws
from clapas.detectors.health import metrics
from clapas.detectors.health import quality as qual
from clapas.detectors.health import radio as rad
from clapas.detectors.state import ANY, StateMap
from clapas.i18n import EMPTY, T, Text
from clapas.model import DEVICE_KINDS, QUANTITY_BY_KEY

SILENT, GATEWAY, BATTERY, RADIO, STUCK = ("health.silent", "health.gateway_offline", "health.battery_low",
                                           "health.radio", "health.stuck_sensor")
RULES = (SILENT, GATEWAY, BATTERY, RADIO, STUCK)
Q_BATTERY = QUANTITY_BY_KEY["battery"].id
Q_VOLTS = QUANTITY_BY_KEY["battery.voltage"].id
Q_LOW_FLAG = QUANTITY_BY_KEY["alarm.low_battery"].id
Q_RADIO = QUANTITY_BY_KEY["radio.margin"].id
WHOLE_UPLINK = 0  # the quantity id of a flag about the whole uplink (clock skew)


def _iso(t: float) -> str:
    return utc(t).isoformat()


def _everyone(subject: str) -> bool:
    return True


class _Dev:
    """What the health rules keep of one device."""

    __slots__ = ("batt", "fc", "flat", "gaps", "heard", "last", "q", "queued", "radio", "radio_state")

    def __init__(self, s: HealthSettings) -> None:
        self.last = -math.inf  # last uplink (or status) heard
        self.gaps: list[float] = []  # the last `learn_uplinks` intervals (lists, not deques: 80,000 devices)
        self.heard: dict[str, float] = {}  # gateway → last time it heard the device
        self.fc = rad.FrameCounter()
        self.radio = rad.RadioTrack(s.long_days)
        self.radio_state = ""
        self.batt: bat.BatteryTrack | None = None  # once it reports a battery
        self.q: dict[int, qual.QuantityTrack] = {}
        self.flat: list[int] = []  # quantities flat now (the stuck-sensor alert is open while any is)
        self.queued = False  # has an entry in the detector's deadline heap (the heap is rebuilt on load from it)


class HealthDetector(Detector):
    kinds = frozenset(DEVICE_KINDS)
    reads_links = True
    state_maps = (StateMap("devs"), StateMap("silent", ANY), StateMap("resume", ANY), StateMap("gateways", ANY),
                  StateMap("suppressed", ANY))
    state_attrs = ("t0", "never_checked")
    state_codec = "tree"  # slotted classes, dicts, lists and numbers (`clapas.detectors.state_codec.TreeCodec`)
    state_modules = ("clapas.detectors.health.radio", "clapas.detectors.health.battery",
                     "clapas.detectors.health.gateways", "clapas.detectors.health.quality")

    def __init__(self, settings: HealthSettings | None = None, timezone: str = "Europe/Paris",
                 profiles: dict[str, ProfileSettings] | None = None) -> None:
        self.s = s = settings or HealthSettings()
        self.profiles = profiles or {}
        self.devs: dict[str, _Dev] = {}
        self.silent: dict[str, float] = {}  # device → when its silence opened
        self.resume: dict[str, float] = {}  # device → silence counted from here (its gateway came back)
        self.gateways: dict[str, gws.GatewayState] = {}
        self.suppressed: dict[str, str] = {}  # orphaned device → its offline gateway
        self.t0: float | None = None
        self.never_checked = False
        self.checks = {QUANTITY_BY_KEY[k].id: c for k, c in s.quality.items() if k in QUANTITY_BY_KEY}
        unknown = sorted(k for k in s.quality if k not in QUANTITY_BY_KEY)
        if unknown:
            raise ValueError(f"[health.quality]: unknown quantities {', '.join(unknown)}")
        self.flags: list[tuple[float, str, int, str]] = []
        self._due: list[tuple[float, str]] = []  # (silence deadline, device): rebuilt from `devs` on load
        self._timeout = s.offline_factor * s.stats_interval_s
        self.counts = {"battery": 0, "radio": 0, "stuck": 0}  # open problems (gauges), rebuilt on load
        self.owns: Callable[[str], bool] = _everyone  # the subjects it alerts on (partitioned mode: its partition's)

    def stream_began(self, t0: float) -> None:
        """The stream's start as its publisher saw it (partitioned mode: a partition's first event may come later);
        never-seen devices are counted from it."""
        if not self.never_checked and (self.t0 is None or t0 < self.t0):
            self.t0 = t0

    def state_loaded(self) -> None:
        self._due = []
        self.counts = {"battery": 0, "radio": 0, "stuck": 0}
        for eui, d in self.devs.items():
            was_queued, d.queued = d.queued, False
            if was_queued:  # the saved flag says whether it waited on a deadline (a silent one waits on none)
                self._schedule(eui, d)
            self.counts["battery"] += bool(d.batt is not None and d.batt.state)
            self.counts["radio"] += bool(d.radio_state)
            self.counts["stuck"] += bool(d.flat)
        for eui, gid in self.suppressed.items():
            g = self.gateways.get(gid)
            if g is None:  # a gateway down whose state its owner keeps (partitioned mode): down until it reports
                g = self.gateways[gid] = gws.GatewayState()
                g.offline_since = -math.inf
            if eui not in g.orphans:
                g.orphans.append(eui)

    def publish(self) -> None:
        """The fleet gauges (`clapas.detectors.health.metrics`)."""
        offline = sum(1 for g in self.gateways.values() if g.offline_since is not None)
        metrics.publish(len(self.silent), self.counts["battery"], self.counts["radio"], self.counts["stuck"],
                        len(self.gateways) - offline, offline, len(self.devs))

    def take_flags(self) -> list[tuple[float, str, int, str]]:
        out, self.flags = self.flags, []
        return out

    # --- intervals and silence -----------------------------------------------------------------------------------
    def configured_interval(self, eui: str) -> float | None:
        """T of a device from its profile, else its registry entry."""
        meta = self.registry.get(eui) if getattr(self, "registry", None) is not None else None
        if meta is not None:
            prof = self.profiles.get(meta.profile) if meta.profile else None
            if prof is not None and prof.expected_interval_s:
                return float(prof.expected_interval_s)
            if meta.expected_interval_s:
                return float(meta.expected_interval_s)
        return None

    def interval(self, eui: str, d: _Dev | None = None) -> float | None:
        """T of a device: its profile's, its registry entry's, else learned from its last uplinks."""
        t_ = self.configured_interval(eui)
        if t_ is not None:
            return t_
        d = d or self.devs.get(eui)
        if d is not None and len(d.gaps) >= self.s.learn_min_uplinks:
            return statistics.median(d.gaps)
        return None

    def _deadline(self, eui: str, d: _Dev) -> float | None:
        t_ = self.interval(eui, d)
        if t_ is None or not math.isfinite(d.last):
            return None
        grace = min(self.s.silent_grace_share * t_, self.s.check_interval_s)
        return max(d.last, self.resume.get(eui, -math.inf)) + self.s.silent_factor * t_ + grace

    def _schedule(self, eui: str, d: _Dev) -> None:
        """One heap entry per device at most: a deadline that moved later is found when its entry comes due."""
        if d.queued:
            return
        dl = self._deadline(eui, d)
        if dl is not None:
            heapq.heappush(self._due, (dl, eui))
            d.queued = True

    def _grid(self, t: float) -> float:
        c = self.s.check_interval_s
        return math.ceil(t / c) * c

    def _open_silent(self, eui: str, at: float, out: list[Detection], state: str = "silent") -> None:
        d = self.devs.get(eui)
        t_ = self.interval(eui, d)
        self.silent[eui] = at
        last = d.last if d is not None and math.isfinite(d.last) else None
        out.append(Detection(SILENT, eui, OPEN, utc(at), "warning", {
            "state": state, "last_seen": _iso(last) if last is not None else None, "interval_s": t_,
            "missed_uplinks": int((at - last) // t_) if last is not None and t_ else None},
            T("health.silent.since", last=_iso(last)) if last is not None else T("health.silent.never")))

    def heard(self, eui: str, t: float, out: list[Detection], gateways: tuple = (), f_cnt: int | None = None) -> _Dev:
        """A device was heard at `t` (an uplink or a status event)."""
        d = self.devs.get(eui)
        if d is None:
            d = self.devs[eui] = _Dev(self.s)
        for g, _ in gateways:
            d.heard[g] = t
        if t <= d.last:
            return d
        if eui not in self.silent and eui not in self.suppressed:
            dl = self._deadline(eui, d)
            if dl is not None and t > dl:  # it was silent in between (seen now, in one batch)
                self._open_silent(eui, max(self._grid(dl), dl), out)
        if math.isfinite(d.last) and self.configured_interval(eui) is None:  # only what must be learned
            d.gaps.append(t - d.last)
            if len(d.gaps) > self.s.learn_uplinks:
                del d.gaps[0]
        d.last = t
        self.resume.pop(eui, None)
        if eui in self.silent:
            since = self.silent.pop(eui)
            out.append(Detection(SILENT, eui, CLEAR, utc(t), "warning", {"silent_since": _iso(since)},
                                 T("health.silent.cleared")))
        self._schedule(eui, d)
        return d

    # --- the stream ------------------------------------------------------------------------------------------------
    def observe(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        d = self.heard(dev.eui, t, out)
        self._battery(dev, d, t, values, out)

    def screen(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        checks = self.checks
        if not checks:
            return
        d = self.devs.get(dev.eui)
        if d is None:
            d = self.devs[dev.eui] = _Dev(self.s)
        was_flat = bool(d.flat)
        for qid in [q for q in values if q in checks]:
            track = d.q.get(qid)
            if track is None:
                track = d.q[qid] = qual.QuantityTrack()
            flag = qual.judge(checks[qid], track, t, values[qid])
            if flag == qual.FLAT:
                if qid not in d.flat:
                    d.flat.append(qid)
            elif qid in d.flat:
                d.flat.remove(qid)
            if flag:
                self.flags.append((t, dev.eui, qid, flag))
                del values[qid]
        if bool(d.flat) != was_flat:
            self.counts["stuck"] += 1 if d.flat else -1
        if d.flat and not was_flat:
            out.append(Detection(STUCK, dev.eui, OPEN, utc(t), "warning",
                                 {"quantities": [_key(q) for q in d.flat]}, T("health.stuck.opened")))
        elif was_flat and not d.flat:
            out.append(Detection(STUCK, dev.eui, CLEAR, utc(t), "warning", {}, T("health.stuck.cleared")))

    def observe_links(self, links: list[tuple[Any, ...]], gw_events: list[tuple[float, str, str, bool]],
                      out: list[Detection]) -> None:
        events: list[tuple[float, int, tuple]] = [(g[0], 0, g) for g in gw_events]
        events += [(row[0], 1, row) for row in links]
        events.sort(key=lambda e: (e[0], e[1]))
        for t, is_link, row in events:
            self._start(t)
            if is_link:
                self._link(row, out)
            else:
                self._gateway_event(row, out)

    def _start(self, t: float) -> None:
        if self.t0 is None:  # the stream's beginning, for never-seen devices
            self.t0 = t

    def _link(self, row: tuple[Any, ...], out: list[Detection]) -> None:
        t, eui, event, f_cnt, sf, bw, rx, power, device_time = row
        d = self.heard(eui, t, out, rx)
        if device_time is not None and abs(device_time - t) > self.s.clock_skew_s:
            self.flags.append((t, eui, WHOLE_UPLINK, qual.CLOCK_SKEW))
        if event == "status":
            if power:
                if d.batt is None:
                    d.batt = bat.BatteryTrack(max(1, int(self.s.trend_window_s // bat.DAY)))
                d.batt.power = power
            return
        if f_cnt is not None:
            d.fc.add(f_cnt)
        if sf and rx:
            m = rad.margin_db(sf, max(snr for _, snr in rx), bw)
            if m is not None and d.radio.add(t, m, sf):
                self._judge_radio(eui, d, t, out)

    # --- gateways ---------------------------------------------------------------------------------------------------
    def _gateway_event(self, row: tuple[float, str, str, bool], out: list[Detection]) -> None:
        t, gid, kind, online = row
        g = self.gateways.get(gid)
        if g is None:
            g = self.gateways[gid] = gws.GatewayState()
        self._check_gateway(gid, g, t, out)  # was it offline before this event said otherwise?
        if online:
            g.last_seen = max(g.last_seen, t)
            g.conn_offline_at = None
            if g.offline_since is not None:
                self._gateway_back(gid, g, t, out)
        elif kind == "conn" and g.conn_offline_at is None:
            g.conn_offline_at = t

    def _check_gateway(self, gid: str, g: gws.GatewayState, now: float, out: list[Detection]) -> None:
        if g.offline_since is not None:
            return
        bad = g.bad_since(self._timeout)
        if bad is None or not math.isfinite(bad):
            return
        at = gws.offline_at(bad, self.s.gateway_check_s, self.s.debounce_checks)
        if at <= now:
            self._gateway_down(gid, g, at, out)

    def _gateway_down(self, gid: str, g: gws.GatewayState, at: float, out: list[Detection]) -> None:
        g.offline_since = at
        since = at - self.s.heard_window_s
        orphans, fragile = gws.blast_radius(gid, {e: d.heard for e, d in self.devs.items() if d.heard}, since)
        g.orphans = orphans
        for e in orphans:
            self.suppressed[e] = gid
        if not self.owns(gid):
            return
        last = g.last_seen if math.isfinite(g.last_seen) else None
        out.append(Detection(GATEWAY, gid, OPEN, utc(at), "major", {
            "last_seen": _iso(last) if last is not None else None, "orphaned": orphans, "orphaned_count": len(orphans),
            "lost_redundancy": fragile, "lost_redundancy_count": len(fragile)},
            T("health.gateway.opened", orphans=len(orphans), fragile=len(fragile))))

    def _gateway_back(self, gid: str, g: gws.GatewayState, t: float, out: list[Detection]) -> None:
        if self.owns(gid):
            out.append(Detection(GATEWAY, gid, CLEAR, utc(t), "major", {"offline_since": _iso(g.offline_since or t)},
                                 T("health.gateway.cleared")))
        for e in g.orphans:
            if self.suppressed.get(e) == gid:
                del self.suppressed[e]
                d = self.devs.get(e)
                if d is not None and d.last < t:  # its silence counts from the gateway's return
                    self.resume[e] = t
                    self._schedule(e, d)
        g.offline_since, g.orphans = None, []

    # --- period checks ----------------------------------------------------------------------------------------------
    def advance(self, watermark: float, out: list[Detection]) -> None:
        self._start(watermark)
        for gid, g in self.gateways.items():
            self._check_gateway(gid, g, watermark, out)
        due = self._due
        while due and due[0][0] < watermark:
            dl, eui = heapq.heappop(due)
            d = self.devs.get(eui)
            if d is None:
                continue
            d.queued = False
            now_dl = self._deadline(eui, d)
            if now_dl is None or eui in self.silent or eui in self.suppressed:
                continue
            if now_dl > dl:  # heard since: wait for its new deadline
                self._schedule(eui, d)
                continue
            at = max(self._grid(dl), dl)
            if at <= watermark:
                self._open_silent(eui, at, out)
            else:
                heapq.heappush(due, (dl, eui))
                d.queued = True
                break
        if not self.never_checked and self.t0 is not None and watermark - self.t0 >= self.s.never_seen_after_s:
            self.never_checked = True
            at = self.t0 + self.s.never_seen_after_s
            for eui in sorted(self.registry.by_eui):
                if eui not in self.devs and eui not in self.silent and self.owns(eui):
                    self._open_silent(eui, at, out, "never_seen")
        self.publish()

    # --- batteries --------------------------------------------------------------------------------------------------
    def _battery(self, dev: DeviceMeta, d: _Dev, t: float, values: dict[int, float], out: list[Detection]) -> None:
        s = self.s
        b = d.batt
        if b is None:
            if Q_LOW_FLAG not in values and Q_VOLTS not in values and Q_BATTERY not in values:
                return
            b = d.batt = bat.BatteryTrack(max(1, int(s.trend_window_s // bat.DAY)))
        changed = False
        if Q_LOW_FLAG in values:
            b.flag, changed = values[Q_LOW_FLAG] >= 1, True
        if Q_VOLTS in values:
            b.add_voltage(t, values[Q_VOLTS], s.voltage_window_s)
            changed = True
        elif Q_BATTERY in values:
            b.percent, changed = values[Q_BATTERY], True
        if not changed:
            return
        state, why, ev = self._battery_state(dev, b, t)
        if state != b.state:
            if state:
                out.append(Detection(BATTERY, dev.eui, OPEN, utc(t), "critical" if state == "critical" else "warning",
                                     ev, why))
            else:
                out.append(Detection(BATTERY, dev.eui, CLEAR, utc(t), "warning", ev, T("health.battery.cleared")))
            if bool(state) != bool(b.state):
                self.counts["battery"] += 1 if state else -1
            b.state = state

    def _battery_state(self, dev: DeviceMeta, b: bat.BatteryTrack, t: float) -> tuple[str, Text, dict[str, Any]]:
        s = self.s
        chem = dev.tags.get(s.chemistry_tag) or s.default_chemistry
        warn, crit = (s.voltage_thresholds.get(chem) or s.voltage_thresholds[s.default_chemistry])[:2]
        mean = b.mean()
        ev: dict[str, Any] = {"chemistry": chem, "mean_24h_v": round(mean, 3) if mean is not None else None,
                              "percent": b.percent, "flag": b.flag}
        if b.flag:
            return "warning", T("health.battery.flag"), {**ev, "source": "flag"}
        if mean is not None:
            pts = [p for p in b.points() if p[0] >= t - s.trend_window_s]
            when = bat.forecast(pts, warn) if pts and pts[-1][0] - pts[0][0] >= s.trend_min_s else None
            ev.update(source="voltage", forecast_date=bat.iso_day(when), threshold_v=warn)
            plateau = max((v for _, v in pts), default=mean)
            if mean < crit:
                return "critical", T("health.battery.under", volts=mean, threshold=crit), ev
            if mean < warn:
                return "warning", T("health.battery.under", volts=mean, threshold=warn), ev
            if plateau - mean >= s.knee_drop_v:
                return "warning", T("health.battery.knee", plateau=plateau), ev
            if when is not None and when - t <= s.forecast_horizon_s:
                return "warning", T("health.battery.forecast", threshold=warn, day=bat.iso_day(when)), ev
            return "", EMPTY, ev
        if b.percent is not None and b.power in ("", "battery") and b.percent < s.devstatus_low_percent:
            return "warning", T("health.battery.devstatus", percent=b.percent), {**ev, "source": "devstatus"}
        return "", EMPTY, ev

    # --- radio ------------------------------------------------------------------------------------------------------
    def _judge_radio(self, eui: str, d: _Dev, t: float, out: list[Detection]) -> None:
        s = self.s
        if len(d.radio.days) < s.radio_min_days:
            return
        med = d.radio.medians(s.short_days)
        if med is None:
            return
        short, long_ = med
        state = rad.radio_state(short, long_, d.radio.sf, degrading_db=s.degrading_margin_db,
                                drop_db=s.degrading_drop_db, critical_db=s.critical_margin_db,
                                sf12_critical_db=s.sf12_critical_margin_db)
        if state == d.radio_state:
            return
        loss = d.fc.loss()
        ev = {"state": state, "median_short_db": round(short, 1), "median_long_db": round(long_, 1),
              "sf": d.radio.sf, "frame_loss": round(loss, 4) if loss is not None else None,
              "fcnt_resets": d.fc.resets, "retransmissions": d.fc.retransmissions}
        if state:
            out.append(Detection(RADIO, eui, OPEN, utc(t), "critical" if state == rad.CRITICAL else "warning", ev,
                                 T("health.radio.opened", state=state, margin=short, days=s.short_days)))
        else:
            out.append(Detection(RADIO, eui, CLEAR, utc(t), "warning", ev, T("health.radio.cleared")))
        if bool(state) != bool(d.radio_state):
            self.counts["radio"] += 1 if state else -1
        d.radio_state = state


def _key(qid: int) -> str:
    from clapas.model import QUANTITY_BY_ID

    return QUANTITY_BY_ID[qid].key
