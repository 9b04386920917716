"""Water detectors: after-meter leaks, bursts, backflow, meter alarms, abnormal consumption (loi Warsmann) and the
district (DMA) night flow. Every number is a `WaterSettings` field with its source (domain-rules.md §1).

Meters report `water.volume` (the m³ index, cumulative) and some also `water.flow` (L/h). The rules work on the
*intervals* between two consecutive readings of a meter: the index difference is exact whatever happened in
between (a lost uplink only makes the interval longer), while a reported flow may be an instantaneous sample. So a
flow is always derived from the index when there is one, and the reported flow is used only by meters that send no
index. Readings older than the meter's last one are ignored; an interval longer than `max_reading_gap_s` restarts
the hourly rules (they cannot tell what happened inside it).

Rules (names as in alerts and in `clapas score`):
- `water.continuous_flow`: no flow-free hour in the last 24 h (Kamstrup LEAK), clears after one flow-free hour;
- `water.night_flow`: flow in every hour of the night window 01:00–05:00 local (the night-use variant);
- `water.burst`: flow above the burst threshold for a sustained time;
- `water.backflow`: the index going backwards beyond the meter's resolution, or the reverse register growing;
- `water.meter_alarm.<flag>`: the meter's own info codes (leak, burst, backflow, dry, tamper, low battery);
- `water.overconsumption`: loi Warsmann, dwellings only, with the subscriber notice data;
- `water.district_night_flow`: a district's minimum night flow above its rolling 7-night 20th percentile by more
  than the legitimate night use of its customers; the daily balance (system input vs customer meters, NRW) is kept
  in `balances` and joined to the evidence.
"""

from __future__ import annotations

import calendar
import contextlib
import math
from array import array
from datetime import date
from typing import Any

import msgspec

from clapas.config import WaterSettings
from clapas.detectors.base import CLEAR, OPEN, Detection, Detector, DeviceMeta, Registry, utc
from clapas.detectors.localtime import LocalClock
from clapas.detectors.state import ANY, StateMap
from clapas.i18n import T
from clapas.model import QUANTITY_BY_KEY

Q_VOLUME = QUANTITY_BY_KEY["water.volume"].id
Q_FLOW = QUANTITY_BY_KEY["water.flow"].id
Q_REVERSE = QUANTITY_BY_KEY["water.reverse_volume"].id
# The meter's own alarm flags, with the wording meters use (Kamstrup info codes; wmbusmeters driver_multical21.cc)
METER_ALARMS: dict[int, tuple[str, str, str]] = {
    QUANTITY_BY_KEY[k].id: (flag, wording, severity) for k, flag, wording, severity in (
        ("alarm.leak", "leak", "LEAK: no hour without flow during the last 24 hours", "major"),
        ("alarm.burst", "burst", "BURST: flow above the meter's burst limit", "critical"),
        ("alarm.backflow", "backflow", "REVERSE: water flowing backwards through the meter", "major"),
        ("alarm.dry", "dry", "DRY: no water in the meter", "major"),
        ("alarm.tamper", "tamper", "TAMPER: tampering or fraud detected by the meter", "major"),
        ("alarm.low_battery", "low_battery", "LOW BATTERY: the meter's battery is low", "info"),
    )}
WATER_METER, DISTRICT_METER = "water_meter", "district_meter"
HABITATION = "habitation"
HOUR = 3600.0
DAY = 86400.0
MAX_DAY_GAP_S = DAY  # a longer silence leaves the days it covers unknown for the day volumes


def _iso(t: float) -> str:
    return utc(t).isoformat()


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default), p in 0–100."""
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


# The per-meter state classes are msgspec Structs: they are saved, typed, with every batch that hears the meter
# (`clapas.detectors.state_codec.StructCodec`). Lists stand for deques (msgspec has no deque type); a window of
# numbers is an `array('d')`, saved as its bytes.
class Meter(msgspec.Struct, array_like=True):
    """A meter's last reading and its day-volume accounting."""

    t: float | None = None
    v: float = 0.0
    rev: float | None = None
    day: int | None = None  # local day being accumulated
    day_ok: bool = False  # True when the accumulated day started at the day's start (complete so far)
    day_vol: float = 0.0
    series_day: int | None = None  # first complete day since the meter's data last restarted


# --- interval rules ------------------------------------------------------------------------------------------------
class _Leak(msgspec.Struct, array_like=True):
    last_dry_end: float  # nothing is known before the first reading
    dry_start: float | None = None
    # interval end, L/h, interval end, L/h…, oldest first: the 24 h window (doubles: 384 bytes where (time, flow)
    # tuples took 1,600, and saved as one copy of its bytes)
    flows: array = msgspec.field(default_factory=lambda: array("d"))
    open: bool = False


class ContinuousFlow:
    """Kamstrup's LEAK rule: no flow-free hour in the last 24 h; clears after one flow-free hour."""

    name = "water.continuous_flow"

    def __init__(self, s: WaterSettings) -> None:
        self.s = s
        q3_lph = s.meter_q3_m3h * 1000
        self.min_flow = s.leak_sensitivity_q3_share * q3_lph
        self.major = s.leak_major_q3_share * q3_lph
        self.critical = s.leak_critical_q3_share * q3_lph
        self.window = s.continuous_flow_window_h * HOUR
        self.state: dict[str, _Leak] = {}

    def severity(self, flow: float) -> str:
        return "critical" if flow >= self.critical else "major" if flow >= self.major else "warning"

    def reset(self, eui: str, t: float) -> None:
        st = self.state.get(eui)
        if st is not None:
            st.dry_start, st.last_dry_end = None, t
            del st.flows[:]

    def interval(self, dev: DeviceMeta, t0: float, t1: float, dry: bool, flow: float, out: list[Detection]) -> None:
        st = self.state.get(dev.eui)
        if st is None:
            st = self.state[dev.eui] = _Leak(last_dry_end=t0)
        s = self.s
        if dry:
            if st.dry_start is None:
                st.dry_start = t0
            if t1 - st.dry_start >= s.flow_free_hour_s - s.reading_tolerance_s:
                st.last_dry_end = t1
                if st.open:
                    st.open = False
                    out.append(Detection(self.name, dev.eui, CLEAR, utc(t1), "info",
                                         {"flow_free_since": _iso(st.dry_start)},
                                         T("water.continuous_flow.cleared")))
        else:
            st.dry_start = None
        flows = st.flows
        flows.append(t1)
        flows.append(flow)
        # the window slides with the same slack as its length: readings a day apart are a day ± radio jitter apart,
        # and the interval that ended exactly 24 h ago (e.g. the leak's partial first hour) must leave it
        cut = t1 - self.window + s.reading_tolerance_s
        if flows[0] <= cut:
            k, n = 2, len(flows)
            while k < n and flows[k] <= cut:
                k += 2
            del flows[:k]
        if not st.open and t1 - st.last_dry_end >= self.window - s.reading_tolerance_s:
            low = min(flows[1::2])
            if low >= self.min_flow:
                st.open = True
                out.append(Detection(
                    self.name, dev.eui, OPEN, utc(t1), self.severity(low),
                    {"min_hourly_flow_lph": round(low, 1), "last_flow_free_hour_end": _iso(st.last_dry_end),
                     "window_h": s.continuous_flow_window_h, "zone": dev.zone},
                    T("water.continuous_flow.opened", hours=(t1 - st.last_dry_end) / HOUR, flow=low)))


class _Night(msgspec.Struct, array_like=True):
    run: int = 0  # nights in a row with flow in every hour
    run_low: float = math.inf
    day: int | None = None
    covered: float = 0.0
    dry: bool = False
    low: float = math.inf
    open: bool = False


class NightFlow:
    """The night-use variant: water drawn in every hour of the night window (01:00–05:00 local), night after night.

    A night counts when the readings whose interval is centred in the window cover most of it and none of them is
    flow-free; `night_consecutive` such nights in a row open the alert, a night with a flow-free reading clears it.
    """

    name = "water.night_flow"

    def __init__(self, s: WaterSettings, clock: LocalClock, leak: ContinuousFlow) -> None:
        self.s, self.clock, self.leak = s, clock, leak
        self.span = (s.night_end_hour - s.night_start_hour) * HOUR
        self.state: dict[str, _Night] = {}

    def reset(self, eui: str, t: float) -> None:
        st = self.state.get(eui)
        if st is not None:
            st.day, st.run = None, 0

    def interval(self, dev: DeviceMeta, t0: float, t1: float, dry: bool, flow: float, out: list[Detection]) -> None:
        st = self.state.get(dev.eui)
        if st is None:
            st = self.state[dev.eui] = _Night()
        day, hour, _, _ = self.clock.hour((t0 + t1) / 2)
        in_night = self.s.night_start_hour <= hour < self.s.night_end_hour
        if st.day is not None and (not in_night or day != st.day):
            self._decide(dev, st, t0, out)
        if in_night:
            if st.day != day:
                st.day, st.covered, st.dry, st.low = day, 0.0, False, math.inf
            st.covered += t1 - t0
            st.dry = st.dry or dry
            st.low = min(st.low, flow)

    def _decide(self, dev: DeviceMeta, st: _Night, t: float, out: list[Detection]) -> None:
        day, st.day = st.day, None
        if st.covered < self.s.night_min_coverage * self.span:
            return  # too many lost uplinks to tell
        night = self.clock.date(day).isoformat()  # type: ignore[arg-type]
        flowing = not st.dry and st.low >= self.leak.min_flow
        st.run = st.run + 1 if flowing else 0
        st.run_low = min(st.run_low, st.low) if st.run > 1 else st.low
        if st.run >= self.s.night_consecutive and not st.open:
            st.open = True
            low = st.run_low
            out.append(Detection(
                self.name, dev.eui, OPEN, utc(t), self.leak.severity(low),
                {"night": night, "nights": st.run, "min_flow_lph": round(low, 1), "zone": dev.zone,
                 "window": f"{self.s.night_start_hour:02d}:00–{self.s.night_end_hour:02d}:00"},
                T("water.night_flow.opened", nights=st.run, night=night, flow=low)))
        elif st.dry and st.open:
            st.open = False
            out.append(Detection(self.name, dev.eui, CLEAR, utc(t), "info", {"night": night},
                                 T("water.night_flow.cleared", night=night)))


class Burst:
    """Flow above the burst threshold, sustained."""

    name = "water.burst"

    def __init__(self, s: WaterSettings) -> None:
        self.s = s
        self.threshold = s.burst_q3_share * s.meter_q3_m3h * 1000
        self.state: dict[str, list[Any]] = {}  # eui → [run start | None, open, peak]

    def reset(self, eui: str, t: float) -> None:
        st = self.state.get(eui)
        if st is not None:
            st[0] = None

    def interval(self, dev: DeviceMeta, t0: float, t1: float, dry: bool, flow: float, out: list[Detection]) -> None:
        st = self.state.get(dev.eui)
        if st is None:
            st = self.state[dev.eui] = [None, False, 0.0]
        if flow > self.threshold:
            if st[0] is None:
                st[0], st[2] = t0, 0.0
            st[2] = max(st[2], flow)
            if not st[1] and t1 - st[0] >= self.s.burst_min_duration_s - self.s.reading_tolerance_s:
                st[1] = True
                out.append(Detection(
                    self.name, dev.eui, OPEN, utc(t1), "critical",
                    {"flow_lph": round(flow, 0), "threshold_lph": self.threshold, "since": _iso(st[0]),
                     "zone": dev.zone},
                    T("water.burst.opened", flow=flow, minutes=(t1 - st[0]) / 60, threshold=self.threshold)))
        else:
            st[0] = None
            if st[1]:
                st[1] = False
                out.append(Detection(self.name, dev.eui, CLEAR, utc(t1), "info",
                                     {"flow_lph": round(flow, 0), "peak_lph": round(st[2], 0)},
                                     T("water.burst.cleared", threshold=self.threshold)))


class Backflow:
    """The index going backwards beyond the meter's resolution, or the reverse-volume register growing."""

    name = "water.backflow"

    def __init__(self, s: WaterSettings) -> None:
        self.step = 1.5 * s.index_resolution_m3  # more than one register step: never a rounding effect
        self.state: dict[str, bool] = {}

    def interval(self, dev: DeviceMeta, t1: float, dv: float, drev: float, out: list[Detection]) -> None:
        backwards = dv < -self.step or drev > self.step
        was = self.state.get(dev.eui, False)
        if backwards and not was:
            self.state[dev.eui] = True
            out.append(Detection(
                self.name, dev.eui, OPEN, utc(t1), "major",
                {"index_change_m3": round(dv, 3), "reverse_volume_change_m3": round(drev, 3), "zone": dev.zone},
                T("water.backflow.opened", index_l=dv * 1000, reverse_l=drev * 1000)))
        elif was and not backwards:
            self.state[dev.eui] = False
            out.append(Detection(self.name, dev.eui, CLEAR, utc(t1), "info", {"index_change_m3": round(dv, 3)},
                                 T("water.backflow.cleared")))


class MeterAlarms:
    """The meter's own alarm flags, surfaced with the meter's wording (one rule per flag)."""

    prefix = "water.meter_alarm."

    def __init__(self) -> None:
        self.active: set[tuple[str, int]] = set()

    def observe(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        for q, (flag, _wording, severity) in METER_ALARMS.items():
            v = values.get(q)
            if v is None:
                continue
            k = (dev.eui, q)
            if v >= 0.5 and k not in self.active:
                self.active.add(k)
                out.append(Detection(self.prefix + flag, dev.eui, OPEN, utc(t), severity,
                                     {"flag": flag, "zone": dev.zone}, T("water.meter_alarm.opened", flag=flag)))
            elif v < 0.5 and k in self.active:
                self.active.discard(k)
                out.append(Detection(self.prefix + flag, dev.eui, CLEAR, utc(t), "info", {"flag": flag},
                                     T("water.meter_alarm.cleared", flag=flag)))


# --- day rules -----------------------------------------------------------------------------------------------------
class Overconsumption:
    """Loi Warsmann (CGCT L2224-12-4 III bis): a dwelling's consumption above twice its reference volume.

    Reference: the subscriber's mean over the equivalent period of the previous three years (the same days 52 weeks
    earlier, from the daily volumes this rule keeps), else ("à défaut") the mean of comparable dwellings of the zone
    (same `comparable_tag` in the registry; without it a dwelling has no reference and is not judged). Tele-read
    meters allow warning before the billing reading: each completed local day is compared with its reference, and
    the rule opens when the median of the last `consecutive_days` daily ratios exceeds the factor (abnormal on
    consecutive days; one exceptional day, such as a pool filled, does not decide). The opening detection carries
    the subscriber notice: its date opens the one-month window; the reference and the capped billable volumes are
    computed since the last billing reading (`last_billing_reading` tag, ISO date) or since the meter's data began.
    """

    name = "water.overconsumption"

    def __init__(self, s: WaterSettings, clock: LocalClock) -> None:
        self.s, self.clock = s, clock
        self.days: dict[str, dict[int, float]] = {}  # eui → local day ordinal → m³
        self.zone_days: dict[str, dict[int, list[float]]] = {}  # zone → day → [sum m³, dwellings]
        self.open: set[str] = set()
        self.keep = s.reference_years * s.year_shift_days + s.consecutive_days + s.zone_reference_days + 2

    def day(self, dev: DeviceMeta, meter: Meter, day: int, volume: float, t: float, out: list[Detection]) -> None:
        if dev.premises_use != HABITATION:
            return
        hist = self.days.setdefault(dev.eui, {})
        hist[day] = volume
        if len(hist) > self.keep + 32:
            for old in [d for d in hist if d < day - self.keep]:
                del hist[old]
        group = self._comparable(dev)
        if group is not None:
            z = self.zone_days.setdefault(group, {}).setdefault(day, [0.0, 0])
            z[0] += volume
            z[1] += 1
        self._evaluate(dev, meter, day, hist, t, out)

    def references(self, dev: DeviceMeta, hist: dict[int, float], days: list[int]) -> tuple[list[float], str] | None:
        """Reference volume of each day, and where it comes from; None when there is none yet."""
        s = self.s
        refs: list[float] = []
        years = 0
        for j in days:
            past = [hist[j - k * s.year_shift_days] for k in range(1, s.reference_years + 1)
                    if j - k * s.year_shift_days in hist]
            if not past:
                refs = []
                break
            years = max(years, len(past))
            refs.append(sum(past) / len(past))
        if refs:
            return refs, f"subscriber, same days over {years} previous year(s)"
        group = self._comparable(dev)
        if group is None:  # nothing says which dwellings are comparable: no lawful reference
            return None
        zdays = self.zone_days.get(group, {})
        first = min(days)
        total = count = 0.0
        for j in range(first - s.zone_reference_days, first):
            v = zdays.get(j)
            if v is not None:
                total += v[0]
                count += v[1]
        if count < s.zone_reference_days:  # fewer dwelling-days than a single dwelling over the period
            return None
        return [total / count] * len(days), (f"zone {dev.zone} dwellings with {self.s.comparable_tag} "
                                             f"{group[1]}, mean of {count:.0f} dwelling-days")

    def _comparable(self, dev: DeviceMeta) -> tuple[str, str] | None:
        """The group of comparable dwellings ("de taille et de caractéristiques comparables"): same zone and same
        registry tag (`comparable_tag`, e.g. the number of rooms); None without the tag."""
        value = dev.tags.get(self.s.comparable_tag, "")
        return (dev.zone, value) if value else None

    def _evaluate(self, dev: DeviceMeta, meter: Meter, day: int, hist: dict[int, float], t: float,
                  out: list[Detection]) -> None:
        s = self.s
        days = list(range(day - s.consecutive_days + 1, day + 1))
        if any(j not in hist for j in days):
            return
        found = self.references(dev, hist, days)
        if found is None:
            return
        refs, source = found
        ratios = sorted(hist[j] / r if r > 0 else math.inf for j, r in zip(days, refs, strict=True))
        median = ratios[len(ratios) // 2]
        abnormal = median > s.overconsumption_factor
        if abnormal and dev.eui not in self.open:
            self.open.add(dev.eui)
            notice = self.notice(dev, meter, day, hist, t)
            evidence = {"days": [self.clock.date(j).isoformat() for j in days],
                        "daily_volumes_m3": [round(hist[j], 3) for j in days],
                        "daily_reference_m3": [round(r, 3) for r in refs], "median_ratio": round(median, 2),
                        "reference_source": source, **notice}
            out.append(Detection(
                self.name, dev.eui, OPEN, utc(t), "major", evidence,
                T("water.overconsumption.opened", volume=sum(hist[j] for j in days), days=len(days), ratio=median,
                  subscriber=dev.subscriber or "?", respond_by=notice.get("respond_by", "?"))))
        elif not abnormal and dev.eui in self.open:
            self.open.discard(dev.eui)
            out.append(Detection(self.name, dev.eui, CLEAR, utc(t), "info", {"median_ratio": round(median, 2)},
                                 T("water.overconsumption.cleared", factor=self.s.overconsumption_factor)))

    def notice(self, dev: DeviceMeta, meter: Meter, day: int, hist: dict[int, float], t: float) -> dict[str, Any]:
        """The information the law requires for the subscriber notice (R2224-20-1)."""
        s = self.s
        start = meter.series_day if meter.series_day is not None else day
        billing = dev.tags.get("last_billing_reading", "")
        if billing:
            with contextlib.suppress(ValueError):  # a malformed tag: fall back to the series start
                start = max(start, date.fromisoformat(billing).toordinal())
        period = [j for j in range(start, day + 1) if j in hist]
        found = self.references(dev, hist, period) if period else None
        notice_date = utc(t).date()
        info: dict[str, Any] = {
            "subscriber": dev.subscriber, "premises_use": dev.premises_use, "zone": dev.zone,
            "notice_date": notice_date.isoformat(),
            "respond_by": add_months(notice_date, s.notice_window_months).isoformat(),
            "period_start": self.clock.date(start).isoformat(), "period_end": self.clock.date(day).isoformat(),
            "period_volume_m3": round(sum(hist[j] for j in period), 3),
        }
        if found is not None:
            reference = sum(found[0])
            volume = info["period_volume_m3"]
            cap = s.overconsumption_factor * reference
            info |= {"reference_volume_m3": round(reference, 3), "reference_source_period": found[1],
                     "legal_test_met": volume > cap, "billable_water_cap_m3": round(cap, 3),
                     "billable_water_m3": round(min(volume, cap), 3),
                     "billable_sanitation_m3": round(min(volume, s.sanitation_cap_factor * reference), 3)}
        return info


ZONE_NIGHTS_KEPT = 64  # design: normal nights kept per district (the baseline uses the last 7)
BALANCE_DAYS_KEPT = 62  # design: daily balances kept per district (two months)


class _Zone(msgspec.Struct, array_like=True):
    history: list[tuple[int, float]] = msgspec.field(default_factory=list)  # (night, MNF) of normal nights
    open: bool = False


class DistrictNightFlow:
    """Minimum night flow of each DMA against its rolling 7-night 20th percentile (UKWIR), and the daily balance."""

    name = "water.district_night_flow"

    def __init__(self, s: WaterSettings, clock: LocalClock) -> None:
        self.s, self.clock = s, clock
        self.recent: dict[str, list[tuple[float, float]]] = {}  # inflow meter → recent (t, index), oldest first
        self.mnf: dict[tuple[str, int], dict[str, tuple[float, float]]] = {}  # (zone, night) → eui → (L/h, t)
        self.zones: dict[str, _Zone] = {}
        self.siv: dict[tuple[str, int], float] = {}  # (zone, day) → m³ into the district
        self.billed: dict[tuple[str, int], float] = {}  # (zone, day) → m³ through customer meters
        self.balances: dict[str, list[dict[str, Any]]] = {}  # zone → the last BALANCE_DAYS_KEPT days
        self._rise: dict[str, float] = {}
        self._inflow: dict[str, list[str]] = {}
        self.registry: Registry | None = None

    def rise_lph(self, zone: str) -> float:
        """The legitimate night use of the district's customers (SANFLOW): a rise beyond it is not theirs."""
        r = self._rise.get(zone)
        if r is None:
            meters = self.registry.in_zone(zone, WATER_METER) if self.registry else []
            homes = sum(1 for m in meters if m.premises_use == HABITATION)
            s = self.s
            r = self._rise[zone] = (homes * s.night_active_share * s.cistern_l
                                    + (len(meters) - homes) * s.non_domestic_night_lph)
        return r

    def reading(self, dev: DeviceMeta, t1: float, v1: float) -> None:
        """A district inflow reading: candidate rolling-hour flows inside the night window."""
        s = self.s
        rec = self.recent.setdefault(dev.eui, [])
        rec.append((t1, v1))
        k = 0
        while rec[k][0] < t1 - 2 * HOUR:
            k += 1
        if k:
            del rec[:k]
        day, hour, _, _ = self.clock.hour(t1)
        if not s.mnf_start_hour <= hour <= s.mnf_end_hour:
            return
        w0, w1 = self.clock.at(day, s.mnf_start_hour), self.clock.at(day, s.mnf_end_hour)
        tol = s.reading_tolerance_s
        if t1 > w1 + tol or t1 < w0 + HOUR - tol:
            return
        best = None
        for t0, v0 in rec:  # the reading closest to one hour earlier, inside the window
            if t0 >= w0 - tol and t1 - t0 >= HOUR - tol and (best is None or t0 > best[0]):
                best = (t0, v0)
        if best is None:
            return
        flow = (v1 - best[1]) * 1000 / ((t1 - best[0]) / HOUR)
        night = self.mnf.setdefault((dev.zone, day), {})
        prev = night.get(dev.eui)
        if prev is None or flow < prev[0]:
            night[dev.eui] = (flow, t1)

    def day(self, dev: DeviceMeta, day: int, volume: float) -> None:
        target = self.siv if dev.kind == DISTRICT_METER else self.billed
        k = (dev.zone, day)
        target[k] = target.get(k, 0.0) + volume

    def advance(self, watermark: float, out: list[Detection]) -> None:
        s = self.s
        done = [k for k in self.siv if self.clock.at(k[1] + 1, 0) + s.lateness_s <= watermark]
        for zone, day in sorted(done, key=lambda k: k[1]):
            siv = self.siv.pop((zone, day))
            billed = self.billed.pop((zone, day), 0.0)
            kept = self.balances.setdefault(zone, [])
            if len(kept) >= BALANCE_DAYS_KEPT:
                del kept[0]
            kept.append({
                "day": self.clock.date(day).isoformat(), "system_input_m3": round(siv, 3),
                "billed_metered_m3": round(billed, 3), "non_revenue_water_m3": round(siv - billed, 3),
                "nrw_share": round((siv - billed) / siv, 4) if siv > 0 else None})
        for k in [k for k in self.billed if self.clock.at(k[1] + 1, 0) + s.lateness_s + DAY <= watermark]:
            del self.billed[k]  # customer days of districts with no inflow meter reading
        # nights after days: a night's evidence holds the balances of the days before it, whatever the batching
        for key in sorted(self.mnf, key=lambda k: k[1]):
            zone, night = key
            if self.clock.at(night, s.mnf_end_hour) + s.lateness_s > watermark:
                continue
            self._night(zone, night, self.mnf.pop(key), out)

    def _inflow_meters(self, zone: str) -> list[str]:
        m = self._inflow.get(zone)
        if m is None:
            m = self._inflow[zone] = [d.eui for d in self.registry.in_zone(zone, DISTRICT_METER)] if self.registry \
                else []
        return m

    def _night(self, zone: str, night: int, per_meter: dict[str, tuple[float, float]], out: list[Detection]) -> None:
        s = self.s
        expected = self._inflow_meters(zone)
        if expected and any(e not in per_meter for e in expected):
            return  # an inflow meter missed its night: no decision
        mnf = sum(f for f, _ in per_meter.values())
        at = utc(max(t for _, t in per_meter.values()))
        z = self.zones.setdefault(zone, _Zone())
        base = [m for _, m in list(z.history)[-s.mnf_baseline_nights:]]
        abnormal = False
        if len(base) >= s.mnf_min_nights:
            p = percentile(base, s.mnf_percentile)
            rise = self.rise_lph(zone)
            abnormal = mnf > p + rise
            night_date = self.clock.date(night).isoformat()
            balance = [b for b in self.balances.get(zone, ()) if b["day"] < night_date][-7:]
            evidence = {"night": self.clock.date(night).isoformat(), "min_night_flow_lph": round(mnf, 1),
                        "baseline_p20_lph": round(p, 1), "allowed_rise_lph": round(rise, 1),
                        "baseline_nights": len(base), "balance_last_days": balance}
            if abnormal and not z.open:
                z.open = True
                out.append(Detection(
                    self.name, zone, OPEN, at, "critical" if mnf > p + 3 * rise else "major", evidence,
                    T("water.district_night_flow.opened", zone=zone, flow=mnf, excess=mnf - p, baseline=p,
                      nights=s.mnf_baseline_nights,
                      percentile=s.mnf_percentile)))
            elif not abnormal and z.open:
                z.open = False
                out.append(Detection(self.name, zone, CLEAR, at, "info", evidence,
                                     T("water.district_night_flow.cleared", zone=zone, flow=mnf)))
        if not abnormal:
            if len(z.history) >= ZONE_NIGHTS_KEPT:
                del z.history[0]
            z.history.append((night, mnf))


# --- the detector ----------------------------------------------------------------------------------------------------
class WaterDetector(Detector):
    """All water rules over water meters and district inflow meters, fed one uplink at a time."""

    kinds = frozenset({WATER_METER, DISTRICT_METER})
    # per meter: changed only by its own readings; per district: by any reading of it and by its nights closing
    state_maps = (StateMap("meters", value=Meter), StateMap("leak.state", value=_Leak, window="flows"),
                  StateMap("night.state", value=_Night), StateMap("burst.state", value=list[Any]),
                  StateMap("backflow.state", value=bool),
                  StateMap("alarms.active", tuple_key=True, value=(tuple[str, int],)),
                  StateMap("overconsumption.days", value=dict[int, float]), StateMap("overconsumption.open"),
                  StateMap("district.recent", value=list[tuple[float, float]]),
                  StateMap("overconsumption.zone_days", ANY, tuple_key=True,
                           value=(tuple[str, str], dict[int, list[float | int]])),
                  StateMap("district.mnf", ANY, tuple_key=True,
                           value=(tuple[str, int], dict[str, tuple[float, float]])),
                  StateMap("district.siv", ANY, tuple_key=True, value=(tuple[str, int], float)),
                  StateMap("district.billed", ANY, tuple_key=True, value=(tuple[str, int], float)),
                  StateMap("district.zones", ANY, value=_Zone),
                  StateMap("district.balances", ANY, value=list[dict[str, Any]]))
    state_attrs = ("out_of_order",)
    state_codec = "struct"  # tens of thousands of meters, each rewritten every batch it is heard in: typed, in C
    state_version = 2  # 2: the continuous-flow window is an array of doubles (1: a list of (time, flow) pairs)
    settings_attrs = (("s", "water"),)

    def settings_changed(self) -> None:
        self.half_step = self.s.index_resolution_m3 / 2

    def __init__(self, settings: WaterSettings | None = None, timezone: str = "Europe/Paris") -> None:
        self.s = s = settings or WaterSettings()
        self.clock = LocalClock(timezone)
        self.meters: dict[str, Meter] = {}
        self.leak = ContinuousFlow(s)
        self.night = NightFlow(s, self.clock, self.leak)
        self.burst = Burst(s)
        self.backflow = Backflow(s)
        self.alarms = MeterAlarms()
        self.overconsumption = Overconsumption(s, self.clock)
        self.district = DistrictNightFlow(s, self.clock)
        self.half_step = s.index_resolution_m3 / 2
        self.out_of_order = 0

    def bind(self, registry: Registry) -> None:
        super().bind(registry)
        self.district.registry = registry

    def observe(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        customer = dev.kind == WATER_METER
        if customer:
            self.alarms.observe(dev, t, values, out)
        v = values.get(Q_VOLUME)
        m = self.meters.get(dev.eui)
        if m is None:
            m = self.meters[dev.eui] = Meter()
        if v is None:
            flow = values.get(Q_FLOW)
            if flow is None or not customer:
                return
            # a meter without an index: integrate its flow (as a mean over the interval) into one
            v = m.v + max(flow, 0.0) * (t - m.t) / HOUR / 1000 if m.t is not None and t > m.t else m.v
        rev = values.get(Q_REVERSE)
        t0 = m.t
        if t0 is None:
            m.t, m.v, m.rev = t, v, rev
            if not customer:
                self.district.reading(dev, t, v)
            return
        if t <= t0:
            self.out_of_order += 1
            return
        dv = v - m.v
        drev = rev - m.rev if rev is not None and m.rev is not None else 0.0
        m.t, m.v, m.rev = t, v, rev
        dt = t - t0
        self._days(dev, m, t0, t, dv, out)
        if not customer:
            self.district.reading(dev, t, v)
            return
        if dt > self.s.max_reading_gap_s:
            self.leak.reset(dev.eui, t)
            self.night.reset(dev.eui, t)
            self.burst.reset(dev.eui, t)
            return
        dry = abs(dv) <= self.half_step
        flow = max(dv, 0.0) * 1000 / (dt / HOUR)
        self.leak.interval(dev, t0, t, dry, flow, out)
        self.night.interval(dev, t0, t, dry, flow, out)
        self.burst.interval(dev, t0, t, dry, flow, out)
        self.backflow.interval(dev, t, dv, drev, out)

    def _days(self, dev: DeviceMeta, m: Meter, t0: float, t1: float, dv: float, out: list[Detection]) -> None:
        """Split the interval's volume over local days (in proportion to time); close each completed day."""
        clock = self.clock
        if t1 - t0 > MAX_DAY_GAP_S:  # the days inside a long silence are unknown: a new series begins
            m.day, m.day_ok, m.day_vol, m.series_day = clock.hour(t1)[0], False, 0.0, None
            return
        if dv < -self.half_step:  # water went backwards: this day's volume is not a consumption
            m.day_ok = False
        dt = t1 - t0
        t = t0
        while True:
            day, _, start, end = clock.hour(t)
            seg = min(t1, end)
            if m.day != day:
                if m.day is not None and m.day_ok and m.day < day:
                    self._close(dev, m, m.day, m.day_vol, t1, out)
                m.day_ok = m.day is not None and t == start  # covered from the day's start
                m.day, m.day_vol = day, 0.0
            m.day_vol += dv * (seg - t) / dt
            if seg >= t1:
                break
            t = seg

    def _close(self, dev: DeviceMeta, m: Meter, day: int, volume: float, t: float, out: list[Detection]) -> None:
        if m.series_day is None:
            m.series_day = day
        if dev.kind == WATER_METER:
            self.overconsumption.day(dev, m, day, volume, t, out)
        self.district.day(dev, day, volume)

    def advance(self, watermark: float, out: list[Detection]) -> None:
        self.district.advance(watermark, out)
