"""Heat detectors: heatwave conditions at the reference station(s) and heat stress per weather station
(domain-rules.md §2). Every number is a `HeatSettings` field with its source.

Rules (names as in alerts and in `clapas score`):
- `heat.heatwave` (subject: the reference zone id): at each local day's close (the stream past the day's Tn/Tx
  windows plus `lateness_s`), the day's Tn/Tx from the reference stations (`daily_extremes` with its coverage rule,
  after range and spike checks), then the day's state (`heat_states`: IBMn/IBMx 3-day means against the
  département's thresholds). Opens (major) when heatwave conditions are met, escalates (critical) on "extreme"
  when an extreme criterion is configured, clears when the state is back to none. A one- or two-day heat peak is
  a state of its own and opens nothing. The daily states stay readable in `days` for the API. What this says is
  what the city's own sensors show: the official heatwave vigilance is Météo-France's, and every message says so.
- `heat.heat_stress` (subject: a weather station EUI): Humidex and the NWS heat index of every reading; opens when
  either reaches its configured category for `stress_sustain_h`, clears after `stress_clear_h` below both. Severity
  follows the category held for the whole sustain time, so a single noisy reading neither opens nor escalates.
  Where the station reports `wind.speed`, the evidence adds the UTCI (shade value, see `HeatSettings`).

Readings are judged by their observation times only: a reference reading whose day is already judged is dropped
(counted in `late_readings`), a station's reading older than its last one is ignored by the heat-stress rule.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import date
from typing import Any

import msgspec

from clapas.detectors.base import CLEAR, OPEN, Detection, Detector, DeviceMeta, Registry, utc
from clapas.detectors.localtime import HOUR, LocalClock
from clapas.detectors.state import ANY, StateMap
from clapas.i18n import T
from clapas.indices.heat import (
    EXTREME,
    HEATWAVE,
    NONE,
    DailyExtremes,
    HeatDay,
    HeatSettings,
    Reading,
    c_to_f,
    daily_extremes,
    despike,
    heat_index_category,
    heat_index_f,
    heat_states,
    humidex_category,
    humidex_from_rh,
    ibm_window,
    utci_c,
    utci_category,
    wind_at_10m,
)
from clapas.model import QUANTITY_BY_KEY

Q_TEMP = QUANTITY_BY_KEY["air.temperature"].id
Q_RH = QUANTITY_BY_KEY["air.humidity"].id
Q_WIND = QUANTITY_BY_KEY["wind.speed"].id
WEATHER_STATION = "weather_station"
OFFICIAL = T("heat.official")  # every heatwave message says whose vigilance is the official one

# Severity of each category (rank 1 info … 4 critical). The opening category is configured; a higher category held
# as long raises the severity.
SEVERITIES = ("", "info", "warning", "major", "critical")
HUMIDEX_RANK = {"little discomfort": 0, "some discomfort": 1, "great discomfort": 2, "dangerous": 3,
                "heat stroke imminent": 4}
HEAT_INDEX_RANK = {"caution": 1, "extreme caution": 2, "danger": 3, "extreme danger": 4}


def _iso(t: float) -> str:
    return utc(t).isoformat()


# --- heat.heatwave ---------------------------------------------------------------------------------------------------
class _RefZone:
    """A reference zone's stations' pending readings, the days already judged and the daily values."""

    __slots__ = ("daily", "days", "next_day", "open", "rows", "severity", "stations")

    def __init__(self, history: int) -> None:
        self.rows: dict[str, list[Reading]] = {}  # station → readings of days not yet judged
        self.stations: set[str] = set()
        self.next_day: int | None = None  # local day ordinal to judge next
        self.daily: dict[date, DailyExtremes] = {}
        self.days: deque[HeatDay] = deque(maxlen=history)
        self.open = False
        self.severity = ""


class Heatwave:
    """`heat.heatwave`: the day's Tn/Tx at the reference station(s), IBM means, state, alert."""

    name = "heat.heatwave"

    def __init__(self, s: HeatSettings) -> None:
        self.s = s
        self.clock = LocalClock(s.window_timezone or s.timezone)
        self.zones: dict[str, _RefZone] = {}
        self._ref: dict[str, str | None] = {}  # eui → reference zone (None: not a reference station)
        self.registry: Registry | None = None
        self.late_readings = 0
        self.rejected = 0
        # a day's state is final once the last day of its IBM window is judged
        d0 = date(2000, 1, 1)
        self.lag_days = (ibm_window(d0, s.ibm_days, s.ibm_alignment)[-1] - d0).days

    def reference_zone(self, dev: DeviceMeta) -> str | None:
        z = self._ref.get(dev.eui, "")
        if z != "":
            return z
        s = self.s
        if s.reference_stations or s.reference_zones:
            ref = dev.eui in s.reference_stations or dev.zone in s.reference_zones
        else:
            ref = self.registry is not None and self.registry.zone_kind(dev.zone) == s.reference_zone_kind
        z = self._ref[dev.eui] = (dev.zone or dev.eui) if ref else None
        return z

    def _days_of(self, t: float) -> tuple[int, int]:
        """(Tn day, Tx day) ordinals of a reading: day D's window is [D 00:00 + offset, D+1 00:00 + offset)."""
        day, hour, _, _ = self.clock.hour(t)
        return day + (hour - self.s.tn_offset_h) // 24, day + (hour - self.s.tx_offset_h) // 24

    def _wall(self, day: int, hour: int) -> float:
        return self.clock.at(day + hour // 24, hour % 24)

    def closes_at(self, day: int) -> float:
        """When both windows of `day` have ended (epoch s)."""
        return max(self._wall(day + 1, self.s.tn_offset_h), self._wall(day + 1, self.s.tx_offset_h))

    def observe(self, dev: DeviceMeta, t: float, temp: float) -> None:
        zone = self.reference_zone(dev)
        if zone is None:
            return
        s = self.s
        if not (s.plausible_min_c <= temp <= s.plausible_max_c):  # also false for NaN
            self.rejected += 1
            return
        z = self.zones.get(zone)
        if z is None:
            z = self.zones[zone] = _RefZone(s.history_days)
        tn_day, tx_day = self._days_of(t)
        if z.next_day is None:
            z.next_day = min(tn_day, tx_day)
        elif max(tn_day, tx_day) < z.next_day:
            self.late_readings += 1
            return
        z.stations.add(dev.eui)
        z.rows.setdefault(dev.eui, []).append((t, temp))

    def advance(self, watermark: float, out: list[Detection]) -> None:
        lateness = self.s.lateness_s
        keep = self.s.history_days + self.s.ibm_days
        for zone in sorted(self.zones):
            z = self.zones[zone]
            if z.next_day is None:
                continue
            # a long silence (or a device's clock far ahead): the days before the first pending reading would all
            # be unavailable; judge only the last `keep` of them, the states kept anyway
            last = self.clock.hour(watermark - lateness)[0] - 1
            if last - z.next_day > keep:
                pending = min((min(self._days_of(t)) for rows in z.rows.values() for t, _ in rows), default=last)
                z.next_day = max(z.next_day, min(pending, last) - keep)
            while self.closes_at(z.next_day) + lateness <= watermark:
                self._close(zone, z, z.next_day, out)
                z.next_day += 1

    def _station_day(self, rows: list[Reading], day: date) -> tuple[DailyExtremes, float | None]:
        s = self.s
        clean = despike(rows, s.spike_c, s.spike_gap_s)
        x = daily_extremes(clean, s).get(day, DailyExtremes(day, None, None))
        last = max((t for t, _ in clean if day.toordinal() in self._days_of(t)), default=None)
        return x, last

    def _close(self, zone: str, z: _RefZone, day: int, out: list[Detection]) -> None:
        """Judge local day `day`: its Tn/Tx, then the state of the day whose IBM window it completes."""
        d = self.clock.date(day)
        tns: list[float] = []
        txs: list[float] = []
        last: float | None = None
        for eui in sorted(z.stations):
            rows = z.rows.get(eui, [])
            x, t_last = self._station_day(rows, d)
            if x.tn is not None:
                tns.append(x.tn)
            if x.tx is not None:
                txs.append(x.tx)
            if t_last is not None:
                last = t_last if last is None else max(last, t_last)
            z.rows[eui] = [r for r in rows if max(self._days_of(r[0])) > day]
        # several reference stations in a zone: the mean of those whose windows are covered (design)
        z.daily[d] = DailyExtremes(d, sum(tns) / len(tns) if tns else None, sum(txs) / len(txs) if txs else None)
        keep = self.s.history_days + self.s.ibm_days
        for old in [k for k in z.daily if (d - k).days >= keep]:
            del z.daily[old]
        judged = self.clock.date(day - self.lag_days)
        if judged not in z.daily:
            return
        hd = next(h for h in heat_states(z.daily, self.s) if h.day == judged)
        z.days.append(hd)
        self._transition(zone, z, hd, utc(last if last is not None else self.closes_at(day)), out)

    def _transition(self, zone: str, z: _RefZone, hd: HeatDay, at: Any, out: list[Detection]) -> None:
        th = self.s.thresholds()
        evidence = {
            "day": hd.day.isoformat(), "state": hd.state, "tn_c": _r(hd.tn), "tx_c": _r(hd.tx),
            "ibmn_c": _r(hd.ibmn), "ibmx_c": _r(hd.ibmx), "ibmn_threshold_c": hd.ibmn_threshold,
            "ibmx_threshold_c": hd.ibmx_threshold, "department": f"{th.code} {th.name}",
            "window": [w.isoformat() for w in hd.window], "run_days": hd.run_days,
            "daily": [{"day": w.isoformat(), "tn_c": _r(z.daily[w].tn) if w in z.daily else None,
                       "tx_c": _r(z.daily[w].tx) if w in z.daily else None} for w in hd.window],
            "stations": sorted(z.stations), "source": "city sensors (indicative)",
            "official_vigilance": "Météo-France",
        }
        if hd.state in (HEATWAVE, EXTREME):
            severity = "critical" if hd.state == EXTREME else "major"
            if z.open and (severity == z.severity or z.severity == "critical"):
                return
            z.open, z.severity = True, severity
            out.append(Detection(
                self.name, zone, OPEN, at, severity, evidence,
                T("heat.heatwave.extreme" if hd.state == EXTREME else "heat.heatwave.opened", day=hd.day.isoformat(),
                  zone=zone, ibmn=hd.ibmn, ibmn_threshold=hd.ibmn_threshold, ibmx=hd.ibmx,
                  ibmx_threshold=hd.ibmx_threshold, department=th.name, days=hd.run_days, official=OFFICIAL)))
        elif hd.state == NONE and z.open:
            z.open, z.severity = False, ""
            out.append(Detection(
                self.name, zone, CLEAR, at, "info", evidence,
                T("heat.heatwave.cleared", day=hd.day.isoformat(), zone=zone, ibmn=hd.ibmn, ibmx=hd.ibmx,
                  official=OFFICIAL)))


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


# --- heat.heat_stress ----------------------------------------------------------------------------------------------
class _Stress:
    __slots__ = ("below_since", "last_t", "open", "peak_hi_c", "peak_humidex", "rank", "since", "wind")

    def __init__(self) -> None:
        self.last_t = -math.inf
        self.since: list[float | None] = [None] * len(SEVERITIES)  # start of the current run at ≥ each rank
        self.below_since: float | None = None
        self.open = False
        self.rank = 0  # severity rank of the open alert
        self.peak_humidex = -math.inf
        self.peak_hi_c = -math.inf
        self.wind: tuple[float, float] | None = None  # (time, speed m/s at the station's height)


class HeatStress:
    """`heat.heat_stress`: Humidex / heat index categories sustained at one weather station."""

    name = "heat.heat_stress"

    def __init__(self, s: HeatSettings) -> None:
        self.s = s
        self.open_humidex = HUMIDEX_RANK[s.stress_humidex_category]
        self.open_hi = HEAT_INDEX_RANK[s.stress_heat_index_category]
        self.sustain = s.stress_sustain_h * HOUR
        self.clear_after = s.stress_clear_h * HOUR
        self.state: dict[str, _Stress] = {}
        self.out_of_order = 0

    def rank(self, humidex: float, hi_f: float) -> int:
        """Severity rank of a reading (0: below both opening categories)."""
        h = HUMIDEX_RANK.get(humidex_category(humidex) or "", 0)
        i = HEAT_INDEX_RANK.get(heat_index_category(hi_f) or "", 0)
        return max(h if h >= self.open_humidex else 0, i if i >= self.open_hi else 0)

    def wind(self, dev: DeviceMeta, t: float, speed: float) -> None:
        st = self.state.get(dev.eui)
        if st is None:
            st = self.state[dev.eui] = _Stress()
        if speed >= 0 and (st.wind is None or t >= st.wind[0]):
            st.wind = (t, speed)

    def observe(self, dev: DeviceMeta, t: float, temp: float, rh: float, out: list[Detection]) -> None:
        s = self.s
        st = self.state.get(dev.eui)
        if st is None:
            st = self.state[dev.eui] = _Stress()
        if t <= st.last_t:
            self.out_of_order += 1
            return
        if not (s.plausible_min_c <= temp <= s.plausible_max_c and 0.0 < rh <= 100.0):
            return  # a faulty reading says nothing about the heat
        if t - st.last_t > s.stress_max_gap_s:  # a silence: the runs cannot be told to go on
            st.since = [None] * len(SEVERITIES)
            st.below_since = None
            st.peak_humidex = st.peak_hi_c = -math.inf
        st.last_t = t
        hx = humidex_from_rh(temp, rh)
        hi_f = heat_index_f(c_to_f(temp), rh)
        rank = self.rank(hx, hi_f)
        for k in range(1, len(SEVERITIES)):
            if k <= rank:
                if st.since[k] is None:
                    st.since[k] = t
            else:
                st.since[k] = None
        if rank:
            st.below_since = None
            if st.since[1] == t:
                st.peak_humidex = st.peak_hi_c = -math.inf
            st.peak_humidex = max(st.peak_humidex, hx)
            st.peak_hi_c = max(st.peak_hi_c, (hi_f - 32.0) * 5.0 / 9.0)
        elif st.below_since is None:
            st.below_since = t
        held = max((k for k in range(1, len(SEVERITIES)) if st.since[k] is not None
                    and t - st.since[k] >= self.sustain), default=0)  # type: ignore[operator]
        if held > st.rank:
            opened = not st.open
            st.open, st.rank = True, held
            out.append(Detection(
                self.name, dev.eui, OPEN, utc(t), SEVERITIES[held],
                self._evidence(dev, st, t, temp, rh, hx, hi_f, held),
                T("heat.heat_stress.opened" if opened else "heat.heat_stress.worse", eui=dev.eui, zone=dev.zone,
                  hours=(t - st.since[held]) / HOUR, humidex=hx,  # type: ignore[operator]
                  humidex_category=humidex_category(hx) or "none", heat_index=(hi_f - 32) * 5 / 9,
                  heat_index_category=heat_index_category(hi_f) or "none")))
        elif st.open and st.below_since is not None and t - st.below_since >= self.clear_after:
            st.open, st.rank = False, 0
            out.append(Detection(
                self.name, dev.eui, CLEAR, utc(t), "info",
                {"below_since": _iso(st.below_since), "humidex": round(hx, 1), "zone": dev.zone},
                T("heat.heat_stress.cleared", eui=dev.eui, humidex=hx, hours=(t - st.below_since) / HOUR)))

    def _evidence(self, dev: DeviceMeta, st: _Stress, t: float, temp: float, rh: float, hx: float, hi_f: float,
                  held: int) -> dict[str, Any]:
        s = self.s
        ev: dict[str, Any] = {
            "zone": dev.zone, "air_temperature_c": round(temp, 2), "relative_humidity": round(rh, 1),
            "humidex": round(hx, 1), "humidex_category": humidex_category(hx),
            "heat_index_c": round((hi_f - 32) * 5 / 9, 1), "heat_index_category": heat_index_category(hi_f),
            "peak_humidex": round(st.peak_humidex, 1), "peak_heat_index_c": round(st.peak_hi_c, 1),
            "sustained_since": _iso(st.since[held]), "sustain_h": s.stress_sustain_h,  # type: ignore[arg-type]
            "opening": {"humidex": s.stress_humidex_category, "heat_index": s.stress_heat_index_category},
            "sources": "Humidex: Masterton & Richardson 1979, MSC categories; heat index: NWS (Rothfusz 1990)",
        }
        if st.wind is not None and t - st.wind[0] <= s.stress_max_gap_s:
            v10 = wind_at_10m(st.wind[1], s.wind_height_m)
            u = utci_c(temp, rh, v10, temp + s.mrt_offset_c)
            if u is not None:
                ev.update({"utci_c": round(u, 1), "utci_category": utci_category(u), "wind_10m_ms": round(v10, 2),
                           "utci_tmrt": "air temperature" if s.mrt_offset_c == 0 else
                           f"air temperature + {s.mrt_offset_c:g} °C",
                           "utci_source": "Bröde et al. 2012 via ECMWF thermofeel; shade value"})
        return ev


# --- the detector ----------------------------------------------------------------------------------------------------
class HeatDetector(Detector):
    """Both heat rules over the weather stations, fed one uplink at a time."""

    kinds = frozenset({WEATHER_STATION})
    state_maps = (StateMap("heatwave.zones", ANY), StateMap("stress.state"))
    state_attrs = ("heatwave.late_readings", "heatwave.rejected", "stress.out_of_order")
    state_modules = ("clapas.indices.heat",)
    settings_attrs = (("s", "heat"),)

    def settings_of(self, settings: Any) -> dict[str, Any]:
        """The heat section on the city's clock, as the detector was built."""
        return {"s": msgspec.structs.replace(settings.heat, timezone=self.s.timezone)}

    def __init__(self, settings: HeatSettings | None = None, timezone: str = "Europe/Paris") -> None:
        # the city's time zone makes the local days (the windows may use another clock: `window_timezone`)
        self.s = s = msgspec.structs.replace(settings or HeatSettings(), timezone=timezone)
        self.heatwave = Heatwave(s)
        self.stress = HeatStress(s)

    @property
    def days(self) -> dict[str, deque[HeatDay]]:
        """Read-only daily states per reference zone (none / heat_peak / heatwave / extreme / unavailable)."""
        return {zone: z.days for zone, z in self.heatwave.zones.items()}

    def bind(self, registry: Registry) -> None:
        super().bind(registry)
        self.heatwave.registry = registry

    def observe(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        wind = values.get(Q_WIND)
        if wind is not None:
            self.stress.wind(dev, t, wind)
        temp = values.get(Q_TEMP)
        if temp is None:
            return
        self.heatwave.observe(dev, t, temp)
        rh = values.get(Q_RH)
        if rh is not None:
            self.stress.observe(dev, t, temp, rh, out)

    def advance(self, watermark: float, out: list[Detection]) -> None:
        self.heatwave.advance(watermark, out)
