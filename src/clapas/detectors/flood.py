"""Flood detectors: river levels against their stations' thresholds, rates of rise, rain accumulations, and the
combined warning of a catchment. Every number is a `FloodSettings` field with its source (domain-rules.md §3).

The official flood vigilance is Vigicrues' (SPC Méditerranée Ouest for Montpellier) and the rain vigilance
Météo-France's: these rules say what the city's own gauges show, nothing more. Each rule is evaluated at the uplink
that changes it, with that uplink's time: the answers depend on the observations only. How rain increments and
levels are turned into accumulations and rates (gaps, noise, late or repeated uplinks) is in `clapas.indices.flood`.

Rules (names as in alerts and in `clapas score`):
- `flood.river_level` (river gauge EUI): the de-spiked level at or above the gauge's yellow height opens it
  (warning); reaching orange (major) or red (critical) re-opens it with the higher severity (an escalation; it never
  de-escalates while open). It clears once the level has stayed `level_clear_margin_m` below yellow for
  `level_clear_hold_s`. Heights come from the gauge's registry tags `threshold_yellow|orange|red` (m, the datum of
  water.level), overridable per EUI; a gauge without a yellow height has no level rule.
- `flood.river_rise` (river gauge EUI): the level rising faster than `rise_1h_m_per_h` over the last hour or
  `rise_3h_m_per_h` over the last three (severity warning; major when both). It clears when the river stops
  rising (1-hour rate at most `rise_stop_m_per_h`); after that only a new rise re-opens it: the 1-hour rule at once,
  the 3-hour rule once the rise that made it has left its window.
- `flood.rain` (rain gauge EUI): accumulations over 1, 3, 6, 12 and 24 h against depths per window in three tiers,
  heavy (≈ 2-year), intense (10-year) and very intense (50-year); severity warning / major / critical by the worst
  window, at least major when heavy over `rain_major_windows` windows; escalates, clears when no window is heavy.
- `flood.warning` (catchment zone id, zone kind `catchment`): heavy rain at a rain gauge of the zone and a river
  gauge of the zone rising (the `flood.river_rise` condition) or at/above yellow, within `warning_window_s` of
  each other. Severity major, critical once a gauge of the zone is at red or the rain very intense. Lifted (clear)
  once every river gauge of the zone has been below yellow and not rising for `warning_lift_s`; after a lift only
  new rain and river conditions re-open it.

A gauge that falls silent keeps its last state (and its alerts): silence is the silence detector's business.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from clapas.detectors.base import CLEAR, OPEN, Detection, Detector, DeviceMeta, Registry, utc
from clapas.detectors.state import ANY, StateMap
from clapas.i18n import EMPTY, T, Text
from clapas.indices.flood import (
    CLASS_NAMES,
    GREEN,
    HEAVY,
    HOUR,
    RED,
    SEVERITIES,
    TIER_NAMES,
    VERY_INTENSE,
    YELLOW,
    FloodSettings,
    LevelSeries,
    RainSeries,
    level_class,
    rain_severity,
    rain_tiers,
)
from clapas.model import QUANTITY_BY_KEY

Q_LEVEL = QUANTITY_BY_KEY["water.level"].id
Q_RAIN = QUANTITY_BY_KEY["rain.amount"].id
WATER_LEVEL, RAIN_GAUGE = "water_level", "rain_gauge"
RIVER_LEVEL, RIVER_RISE, RAIN, WARNING = "flood.river_level", "flood.river_rise", "flood.rain", "flood.warning"


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


class _Gauge:
    """A river gauge's series and the state of its two rules."""

    __slots__ = ("below_since", "cls", "eui", "level", "level_open", "r1", "r3", "rise_armed3", "rise_open",
                 "rise_since", "rising", "series", "t", "thresholds", "zone")

    def __init__(self, dev: DeviceMeta, s: FloodSettings) -> None:
        self.eui, self.zone = dev.eui, dev.zone
        self.series = LevelSeries(keep_s=3 * HOUR + s.rate_tolerance_s + HOUR, max_gap_s=s.level_max_gap_s)
        self.thresholds = s.level_thresholds(dev.eui, dev.tags)
        self.t = 0.0
        self.level = 0.0
        self.r1: float | None = None
        self.r3: float | None = None
        self.cls = GREEN
        self.level_open = GREEN  # the open alert's class (GREEN: no alert)
        self.below_since: float | None = None
        self.rising = False
        self.rise_open = False
        self.rise_armed3 = True
        self.rise_since: float | None = None


class _RainGauge:
    __slots__ = ("acc", "eui", "open", "series", "severity", "t", "thresholds", "tiers", "zone")

    def __init__(self, dev: DeviceMeta, s: FloodSettings) -> None:
        self.eui, self.zone = dev.eui, dev.zone
        self.series = RainSeries(keep_s=max(s.rain_windows_h) * HOUR)
        self.thresholds = s.rain_thresholds(dev.eui)
        self.t = 0.0
        self.acc: dict[int, float] = {}
        self.tiers: dict[int, int] = {}
        self.severity = 0
        self.open = 0  # the open alert's severity (0: no alert)


class _Zone:
    __slots__ = ("calm_since", "gauges", "lifted_at", "open", "rain", "rain_gauges", "rain_t", "river", "river_t")

    def __init__(self) -> None:
        self.gauges: dict[str, _Gauge] = {}
        self.rain_gauges: dict[str, _RainGauge] = {}
        self.rain_t: float | None = None  # last time a rain gauge of the zone saw heavy rain
        self.rain: dict[str, Any] = {}  # …and what it saw
        self.river_t: float | None = None  # last time a river gauge of the zone was rising or at/above yellow
        self.river: dict[str, Any] = {}
        self.open = 0  # severity index of the open warning (0: none)
        self.lifted_at = float("-inf")
        self.calm_since: float | None = None


class FloodDetector(Detector):
    """The four flood rules over river gauges (`water_level`) and rain gauges (`rain_gauge`)."""

    kinds = frozenset({WATER_LEVEL, RAIN_GAUGE})
    state_maps = (StateMap("gauges"), StateMap("rain_gauges"), StateMap("zones", ANY))
    state_attrs = ("out_of_order",)
    state_modules = ("clapas.indices.flood",)
    settings_attrs = (("s", "flood"),)

    def settings_changed(self) -> None:
        """A gauge's heights (its override, else its registry tags) and a rain gauge's depths, read again."""
        for eui, g in self.gauges.items():
            meta = self.registry.by_eui.get(eui) if self.registry is not None else None
            g.thresholds = self.s.level_thresholds(eui, meta.tags if meta is not None else {})
        for eui, r in self.rain_gauges.items():
            r.thresholds = self.s.rain_thresholds(eui)

    def state_loaded(self) -> None:
        """A catchment's gauges are the detector's own (saved with the zone as copies): link them again."""
        for z in self.zones.values():
            z.gauges = {e: self.gauges[e] for e in z.gauges if e in self.gauges}
            z.rain_gauges = {e: self.rain_gauges[e] for e in z.rain_gauges if e in self.rain_gauges}

    def __init__(self, settings: FloodSettings | None = None, timezone: str = "Europe/Paris") -> None:
        self.s = settings or FloodSettings()
        self.tz = ZoneInfo(timezone)
        self.gauges: dict[str, _Gauge] = {}
        self.rain_gauges: dict[str, _RainGauge] = {}
        self.zones: dict[str, _Zone] = {}
        self.out_of_order = 0
        self.registry: Registry | None = None

    def _local(self, t: float) -> str:
        return datetime.fromtimestamp(t, self.tz).strftime("%d/%m %H:%M")

    def _zone(self, zone: str) -> _Zone | None:
        """The warning's state of a catchment zone; None when the zone is not a catchment."""
        z = self.zones.get(zone)
        if z is None:  # asked again until the registry knows the zone as a catchment (it may be reloaded)
            if not zone or self.registry is None or self.registry.zone_kind(zone) != self.s.catchment_zone_kind:
                return None
            z = self.zones[zone] = _Zone()
        return z

    def observe(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        if dev.kind == WATER_LEVEL:
            v = values.get(Q_LEVEL)
            if v is not None:
                self._level(dev, t, v, out)
        else:
            v = values.get(Q_RAIN)
            if v is not None:
                self._rain(dev, t, v, out)

    # --- river gauges ---------------------------------------------------------------------------------------
    def _level(self, dev: DeviceMeta, t: float, raw: float, out: list[Detection]) -> None:
        s = self.s
        g = self.gauges.get(dev.eui)
        if g is None:
            g = self.gauges[dev.eui] = _Gauge(dev, s)
        if not g.series.add(t, raw):
            self.out_of_order += 1
            return
        level = g.series.current
        if level is None:
            return  # the first readings after a (re)start
        g.t, g.level = t, level
        g.r1 = g.series.rate(HOUR, s.rate_tolerance_s)
        g.r3 = g.series.rate(3 * HOUR, s.rate_tolerance_s)
        yellow, orange, red = g.thresholds
        g.cls = level_class(level, yellow, orange, red)
        self._river_level(dev, g, out)
        self._river_rise(dev, g, out)
        z = self._zone(dev.zone)
        if z is not None:
            z.gauges[g.eui] = g
            if g.rising or g.cls >= YELLOW:
                z.river_t = t
                z.river = self._river_evidence(g)
            self._warning(dev.zone, z, t, out)

    def _river_evidence(self, g: _Gauge) -> dict[str, Any]:
        yellow, orange, red = g.thresholds
        r1, r3 = self.s.rise_thresholds(g.eui)
        return {"gauge": g.eui, "at": utc(g.t).isoformat(), "level_m": _r(g.level), "class": CLASS_NAMES[g.cls],
                "threshold_yellow_m": yellow, "threshold_orange_m": orange, "threshold_red_m": red,
                "rise_1h_m_per_h": _r(g.r1), "rise_3h_m_per_h": _r(g.r3),
                "rise_threshold_1h_m_per_h": r1, "rise_threshold_3h_m_per_h": r3}

    def _river_level(self, dev: DeviceMeta, g: _Gauge, out: list[Detection]) -> None:
        s = self.s
        yellow = g.thresholds[0]
        if yellow is None:
            return
        t = g.t
        if g.cls > g.level_open:
            escalation = g.level_open > GREEN
            g.level_open, g.below_since = g.cls, None
            rising = T("flood.rising", rate=g.r1) if g.r1 is not None and g.r1 > s.rise_stop_m_per_h else EMPTY
            out.append(Detection(
                RIVER_LEVEL, g.eui, OPEN, utc(t), SEVERITIES[g.cls],
                {**self._river_evidence(g), "zone": dev.zone, "river": dev.tags.get("river", "")},
                T("flood.river_level.escalated" if escalation else "flood.river_level.opened",
                  gauge=self._river_name(dev), level=g.level, at=self._local(t), colour=CLASS_NAMES[g.cls],
                  threshold=g.thresholds[g.cls - 1], rising=rising)))
            return
        if g.level_open == GREEN:
            return
        if g.level < yellow - s.level_clear_margin_m:
            if g.below_since is None:
                g.below_since = t
            if t - g.below_since >= s.level_clear_hold_s:
                peak, since = CLASS_NAMES[g.level_open], g.below_since
                g.level_open, g.below_since = GREEN, None
                out.append(Detection(
                    RIVER_LEVEL, g.eui, CLEAR, utc(t), "info",
                    {"level_m": _r(g.level), "threshold_yellow_m": yellow, "peak_class": peak,
                     "below_since": utc(since).isoformat()},
                    T("flood.river_level.cleared", gauge=self._river_name(dev), level=g.level, threshold=yellow,
                      hours=s.level_clear_hold_s / HOUR)))
        else:
            g.below_since = None

    def _river_rise(self, dev: DeviceMeta, g: _Gauge, out: list[Detection]) -> None:
        s = self.s
        t1, t3 = s.rise_thresholds(g.eui)
        r1, r3 = g.r1, g.r3
        moving = r1 is not None and r1 > s.rise_stop_m_per_h
        fast1 = r1 is not None and r1 >= t1
        fast3 = r3 is not None and r3 >= t3
        if not fast3:
            g.rise_armed3 = True
        g.rising = moving and (fast1 or fast3)
        if not g.rise_open:
            if moving and (fast1 or (fast3 and g.rise_armed3)):
                g.rise_open, g.rise_since = True, g.t
                parts = [*([T("flood.rise_1h", rise=r1)] if r1 is not None else []),
                         *([T("flood.rise_3h", rise=r3 * 3)] if r3 is not None else [])]
                out.append(Detection(
                    RIVER_RISE, g.eui, OPEN, utc(g.t), "major" if fast1 and fast3 else "warning",
                    {**self._river_evidence(g), "zone": dev.zone, "river": dev.tags.get("river", "")},
                    T("flood.river_rise.opened", gauge=self._river_name(dev), at=self._local(g.t), rises=parts,
                      level=g.level)))
        elif not moving:
            g.rise_open, g.rise_armed3 = False, False
            since = g.rise_since
            out.append(Detection(
                RIVER_RISE, g.eui, CLEAR, utc(g.t), "info",
                {"level_m": _r(g.level), "rise_1h_m_per_h": _r(g.r1),
                 "rising_since": utc(since).isoformat() if since is not None else None},
                T("flood.river_rise.cleared", gauge=self._river_name(dev), level=g.level)))

    @staticmethod
    def _river_name(dev: DeviceMeta) -> Text:
        river = dev.tags.get("river", "")
        return T("flood.gauge.named", river=river, eui=dev.eui) if river else T("flood.gauge.unnamed", eui=dev.eui)

    # --- rain gauges ----------------------------------------------------------------------------------------
    def _rain(self, dev: DeviceMeta, t: float, mm: float, out: list[Detection]) -> None:
        s = self.s
        r = self.rain_gauges.get(dev.eui)
        if r is None:
            r = self.rain_gauges[dev.eui] = _RainGauge(dev, s)
        latest = r.series.latest
        if not r.series.add(t, mm) or (latest is not None and t < latest):
            self.out_of_order += 1  # late increments are counted from the gauge's next uplink on
            return
        r.t = t
        r.acc = r.series.accumulations(s.rain_windows_h, t)
        r.tiers = rain_tiers(r.acc, s.rain_windows_h, r.thresholds)
        r.severity = rain_severity(r.tiers, s.rain_major_windows)
        if r.severity > r.open:
            escalation = r.open > 0
            r.open = r.severity
            over = [h for h in s.rain_windows_h if r.tiers[h] >= HEAVY]
            worst = max(r.tiers.values())
            amounts = [T("flood.rain_amount", mm=r.acc[h], hours=h) for h in over]
            out.append(Detection(
                RAIN, r.eui, OPEN, utc(t), SEVERITIES[r.severity], {**self._rain_evidence(r), "zone": dev.zone},
                T("flood.rain.escalated" if escalation else "flood.rain.opened", eui=r.eui, zone=dev.zone,
                  at=self._local(t), amounts=amounts, tier=TIER_NAMES[worst])))
        elif r.open and r.severity == 0:
            r.open = 0
            out.append(Detection(RAIN, r.eui, CLEAR, utc(t), "info", self._rain_evidence(r),
                                 T("flood.rain.cleared", eui=r.eui)))
        z = self._zone(dev.zone)
        if z is not None:
            z.rain_gauges[r.eui] = r
            if r.severity >= HEAVY:
                z.rain_t = t
                z.rain = self._rain_evidence(r)
            self._warning(dev.zone, z, t, out)

    def _rain_evidence(self, r: _RainGauge) -> dict[str, Any]:
        windows = self.s.rain_windows_h
        heavy, intense, very = r.thresholds
        return {"gauge": r.eui, "at": utc(r.t).isoformat(),
                "accumulations_mm": {f"{h}h": round(r.acc.get(h, 0.0), 1) for h in windows},
                "tiers": {f"{h}h": TIER_NAMES[r.tiers.get(h, 0)] for h in windows},
                "heavy_mm": dict(zip((f"{h}h" for h in windows), heavy, strict=True)),
                "intense_mm": dict(zip((f"{h}h" for h in windows), intense, strict=True)),
                "very_intense_mm": dict(zip((f"{h}h" for h in windows), very, strict=True))}

    # --- catchment warning ----------------------------------------------------------------------------------
    def _warning(self, zone: str, z: _Zone, t: float, out: list[Detection]) -> None:
        s = self.s
        if not z.open:
            if z.rain_t is None or z.river_t is None:
                return
            if min(z.rain_t, z.river_t) <= z.lifted_at or abs(z.rain_t - z.river_t) > s.warning_window_s:
                return
            z.open, z.calm_since = self._warning_severity(z, t), None
            out.append(self._warning_detection(zone, z, t))
            return
        sev = self._warning_severity(z, t)
        if sev > z.open:
            z.open = sev
            out.append(self._warning_detection(zone, z, t))
        calm = bool(z.gauges) and all(self._calm(g) for g in z.gauges.values())
        if not calm:
            z.calm_since = None
            return
        if z.calm_since is None:
            z.calm_since = t
        if t - z.calm_since >= s.warning_lift_s:
            z.open, z.lifted_at = 0, t
            levels = {g.eui: _r(g.level) for g in z.gauges.values()}
            out.append(Detection(
                WARNING, zone, CLEAR, utc(t), "info",
                {"levels_m": levels, "calm_since": utc(z.calm_since).isoformat()},
                T("flood.warning.cleared", zone=zone, at=self._local(t), hours=s.warning_lift_s / HOUR)))
            z.calm_since = None

    def _calm(self, g: _Gauge) -> bool:
        """Below yellow and not rising."""
        yellow = g.thresholds[0]
        below = yellow is None or g.level < yellow
        return below and (g.r1 is None or g.r1 <= self.s.rise_stop_m_per_h)

    def _warning_severity(self, z: _Zone, t: float) -> int:
        """Major; critical once a river gauge of the zone is at red or a rain gauge's rain very intense."""
        red = any(g.cls >= RED for g in z.gauges.values())
        very = any(r.severity >= VERY_INTENSE and r.t >= t - self.s.warning_window_s for r in z.rain_gauges.values())
        return 3 if red or very else 2

    def _warning_detection(self, zone: str, z: _Zone, t: float) -> Detection:
        rain, river = z.rain, z.river
        acc = rain.get("accumulations_mm", {})
        heavy = [k for k, v in rain.get("tiers", {}).items() if v != "none"]
        amounts = [T("flood.rain_amount", mm=acc[k], hours=k[:-1]) for k in heavy] or [T("flood.heavy_rain")]
        if river.get("class", "green") != "green":
            river_txt = T("flood.warning.river_level", gauge=river["gauge"], level=river["level_m"],
                          colour=river["class"])
        else:
            river_txt = T("flood.warning.river_rising", gauge=river["gauge"],
                          rate=river.get("rise_1h_m_per_h") or 0.0)
        sev = SEVERITIES[z.open]
        return Detection(
            WARNING, zone, OPEN, utc(t), sev,
            {"zone": zone, "rain": rain, "river": river, "window_h": self.s.warning_window_s / HOUR},
            T("flood.warning.escalated" if sev == "critical" else "flood.warning.opened", zone=zone,
              at=self._local(t), gauge=rain.get("gauge", "?"), amounts=amounts, river=river_txt))
