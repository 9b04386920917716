"""Floods: rain accumulations over sliding windows, a river level's rate of rise, a level's vigilance class.

Every number is a `FloodSettings` field with its source (../shared/domain-rules.md §3; [S] stated by the source,
[U] unverified, "not found" a design value). Nothing here does I/O; the detector (`clapas.detectors.flood`) keeps one
`RainSeries` per rain gauge and one `LevelSeries` per river gauge and asks them at each uplink.

Rain gauges report `rain.amount`, the millimetres counted *since the previous uplink*. An increment is spread evenly
over the interval it covers, from the gauge's previous uplink to this one, so a window's accumulation prorates the
increment that straddles its start, and an increment that follows a silence (lost uplinks, an outage) is spread
over the whole silence: a gap can make an accumulation smaller than the truth, never larger, nor an intensity
sharper. The first increment of a gauge covers an unknown interval and is not counted (it anchors the series).
Increments arriving late are inserted where they belong (rain adds up: dropping it would lose water); an uplink
seen twice counts once.

River gauges report `water.level` (m). Ultrasonic gauges are noisy and sometimes return a stray echo, so the level
the rules use is the median of three consecutive readings (one reading behind the gauge): one wild reading moves
nothing. A rate over a window W is (level now − level at now−W) / W, the past level interpolated
between the readings around it: a lost uplink only widens the interpolation, it cannot make a rise. A silence
longer than `level_max_gap_s` restarts the series: no rate until W of data has accumulated again. Readings older
than the gauge's newest are ignored (a level is a snapshot; the newer one supersedes it).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping

import msgspec

HOUR = 3600.0

# Vigilance classes of a level (Vigicrues colours, §3 [S]: vert, jaune, orange, rouge).
GREEN, YELLOW, ORANGE, RED = 0, 1, 2, 3
CLASS_NAMES = ("green", "yellow", "orange", "red")
# Rain tiers: below, heavy (≈ 2-year), intense (10-year, APIC "pluies intenses"), very intense (50-year, APIC
# "pluies très intenses").
NO_RAIN, HEAVY, INTENSE, VERY_INTENSE = 0, 1, 2, 3
TIER_NAMES = ("none", "heavy", "intense", "very_intense")
SEVERITIES = ("info", "warning", "major", "critical")  # by class or tier 0..3


class GaugeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One river gauge's overrides (by EUI). None keeps the registry tag (`threshold_yellow|orange|red`, m, same
    datum as water.level) or the city-wide rate."""

    yellow_m: float | None = None
    orange_m: float | None = None
    red_m: float | None = None
    rise_1h_m_per_h: float | None = None
    rise_3h_m_per_h: float | None = None


class RainGaugeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One rain gauge's overrides (by EUI): depths (mm) per window of `FloodSettings.rain_windows_h`, per tier."""

    heavy_mm: tuple[float, ...] | None = None
    intense_mm: tuple[float, ...] | None = None
    very_intense_mm: tuple[float, ...] | None = None


class FloodSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every flood number, overridable (config section `[flood]`). Sources: domain-rules §3."""

    # --- rain -----------------------------------------------------------------------------------------------
    # APIC accumulates over 1, 2, 3, 4, 6, 12 and 24 h [S]; the issue asks for 1, 3, 6, 12 and 24 h.
    rain_windows_h: tuple[int, ...] = (1, 3, 6, 12, 24)
    # Depths per window, by tier (return-period style: RIC thresholds come from 2-, 10- and 50-year recurrences
    # [S]; APIC calls rain "intense" beyond a 10-year and "very intense" beyond a 50-year return period [S]).
    # The station depths are NOT in the sources (Météo-France sells them per station as "durées de retour" /
    # Montana coefficients; "not found"): these are [U] orders of magnitude for the Montpellier plain, to be
    # replaced by the station's values. The 6-24 h "intense" depths sit at the > 100 mm an "épisode méditerranéen"
    # is informally said to bring (F. Nathan, Météo-France) [S, informal].
    rain_heavy_mm: tuple[float, ...] = (30.0, 45.0, 55.0, 65.0, 80.0)  # ≈ 2-year [U]
    rain_intense_mm: tuple[float, ...] = (50.0, 80.0, 100.0, 120.0, 145.0)  # ≈ 10-year [U]
    rain_very_intense_mm: tuple[float, ...] = (75.0, 120.0, 150.0, 180.0, 220.0)  # ≈ 50-year [U]
    # Heavy rain over this many windows at once is at least "major" (design: rain that is heavy over 1-3 h *and*
    # over 12-24 h is soaking the catchment, not a passing shower).
    rain_major_windows: int = 3
    rain_gauges: dict[str, RainGaugeSettings] = {}

    # --- river levels ---------------------------------------------------------------------------------------
    # Station thresholds are tronçon-specific, set by the SPC's RIC; numeric values "not found" (§3): they come
    # from each gauge's registry tags, or from here per EUI.
    gauges: dict[str, GaugeSettings] = {}
    # Hysteresis of `flood.river_level` (design): clears once the level has stayed this far below yellow this long.
    level_clear_margin_m: float = 0.10
    level_clear_hold_s: float = 3600.0
    # Rate of rise: "no official French numeric threshold found — configurable dH/dt over 1 h / 3 h per station"
    # (§3). Design defaults: 30 cm in an hour (about the foot per hour of rapid-rise alarms [U]), or 75 cm in three
    # hours: the 3-hour rate is kept close to the 1-hour one so that only a *sustained* fast rise counts, not the
    # 50-60 cm a heavy shower gives a small river. Both far above a gauge's noise (±5 mm: a 1-hour rate is good
    # to about 1 cm/h after the median).
    rise_1h_m_per_h: float = 0.30
    rise_3h_m_per_h: float = 0.25
    # The river has "stopped rising" when its 1-hour rate is at most this (design: a few times the rate noise).
    rise_stop_m_per_h: float = 0.02
    # A silence longer than this restarts the level series (design: twice the slowest usual reporting interval,
    # producers update every 5-60 min per Hub'Eau §3 [S]).
    level_max_gap_s: float = 7200.0
    # A rate over W may use a series that starts up to this much after now−W (design: radio jitter and one lost
    # uplink at the start of the series).
    rate_tolerance_s: float = 900.0

    # --- combined warning per catchment ---------------------------------------------------------------------
    catchment_zone_kind: str = "catchment"
    # Heavy rain and a rising river within this of each other (design: Vigicrues Flash watches basins that respond
    # in under 6 h [S]).
    warning_window_s: float = 6 * HOUR
    # Lifted once every gauge of the zone has been below yellow and not rising this long (design).
    warning_lift_s: float = 3 * HOUR

    def __post_init__(self) -> None:
        n = len(self.rain_windows_h)
        if n == 0 or list(self.rain_windows_h) != sorted(set(self.rain_windows_h)) or self.rain_windows_h[0] <= 0:
            raise ValueError("rain_windows_h: positive hours, increasing")
        tiers = [self.rain_heavy_mm, self.rain_intense_mm, self.rain_very_intense_mm]
        tiers += [t for g in self.rain_gauges.values() for t in (g.heavy_mm, g.intense_mm, g.very_intense_mm)
                  if t is not None]
        if any(len(t) != n for t in tiers):
            raise ValueError(f"rain thresholds: one depth per window of rain_windows_h ({n})")

    def rain_thresholds(self, eui: str) -> tuple[tuple[float, ...], ...]:
        """(heavy, intense, very intense) depths per window for a rain gauge, its overrides applied."""
        g = self.rain_gauges.get(eui)
        if g is None:
            return self.rain_heavy_mm, self.rain_intense_mm, self.rain_very_intense_mm
        return (g.heavy_mm or self.rain_heavy_mm, g.intense_mm or self.rain_intense_mm,
                g.very_intense_mm or self.rain_very_intense_mm)

    def level_thresholds(self, eui: str, tags: Mapping[str, str]) -> tuple[float | None, float | None, float | None]:
        """(yellow, orange, red) heights (m) for a gauge: the settings' override, else its registry tags."""
        g = self.gauges.get(eui)
        out: list[float | None] = []
        for name in ("yellow", "orange", "red"):
            v = getattr(g, f"{name}_m") if g is not None else None
            out.append(v if v is not None else _float(tags.get(f"threshold_{name}")))
        return out[0], out[1], out[2]

    def rise_thresholds(self, eui: str) -> tuple[float, float]:
        """(1-hour, 3-hour) rates of rise (m/h) for a gauge."""
        g = self.gauges.get(eui)
        r1 = g.rise_1h_m_per_h if g is not None and g.rise_1h_m_per_h is not None else self.rise_1h_m_per_h
        r3 = g.rise_3h_m_per_h if g is not None and g.rise_3h_m_per_h is not None else self.rise_3h_m_per_h
        return r1, r3


def _float(v: str | None) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


# --- rain ---------------------------------------------------------------------------------------------------------
class RainSeries:
    """A rain gauge's increments as a cumulative curve over the last `keep_s`, for window accumulations.

    `ends[i]` is an uplink time and `cums[i]` the rain counted up to it; increment i (i ≥ 1) fell evenly over
    (ends[i-1], ends[i]]. Index 0 is the anchor (the first uplink, whose own increment has no known start).
    """

    __slots__ = ("cums", "ends", "ignored", "keep_s")

    def __init__(self, keep_s: float = 24 * HOUR) -> None:
        self.keep_s = keep_s
        self.ends: list[float] = []
        self.cums: list[float] = []
        self.ignored = 0  # duplicates and increments older than the series

    @property
    def latest(self) -> float | None:
        return self.ends[-1] if self.ends else None

    def add(self, t: float, mm: float) -> bool:
        """Add the increment reported at `t`; False when it was ignored (duplicate, or older than the series)."""
        mm = max(mm, 0.0)
        ends, cums = self.ends, self.cums
        if not ends:
            ends.append(t)
            cums.append(0.0)
            return True
        if t > ends[-1]:
            ends.append(t)
            cums.append(cums[-1] + mm)
            self._trim()
            return True
        i = bisect.bisect_left(ends, t)
        if i == 0 or ends[i] == t:  # before the anchor (or trimmed away), or the same uplink again
            self.ignored += 1
            return False
        # a late uplink: it covers (ends[i-1], t]; the next one now covers (t, ends[i]] with the same millimetres
        ends.insert(i, t)
        cums.insert(i, cums[i - 1] + mm)
        for j in range(i + 1, len(cums)):
            cums[j] += mm
        return True

    def _trim(self) -> None:
        ends = self.ends
        horizon = ends[-1] - self.keep_s
        k = bisect.bisect_left(ends, horizon) - 1  # keep the last uplink before the horizon: it starts the window
        if k > 64:
            del ends[:k]
            del self.cums[:k]

    def cumulative(self, x: float) -> float:
        """Rain counted up to time `x`, prorating the increment that contains `x`."""
        ends, cums = self.ends, self.cums
        if not ends or x <= ends[0]:
            return cums[0] if cums else 0.0
        if x >= ends[-1]:
            return cums[-1]
        i = bisect.bisect_left(ends, x)
        t0, t1 = ends[i - 1], ends[i]
        return cums[i - 1] + (cums[i] - cums[i - 1]) * (x - t0) / (t1 - t0)

    def total(self, at: float, window_s: float) -> float:
        """Rain over (at − window, at]."""
        return self.cumulative(at) - self.cumulative(at - window_s)

    def accumulations(self, windows_h: Iterable[int], at: float | None = None) -> dict[int, float]:
        """{window hours: mm} at `at` (default: the latest uplink)."""
        if at is None:
            at = self.latest if self.latest is not None else 0.0
        return {h: self.total(at, h * HOUR) for h in windows_h}


def accumulations(increments: Iterable[tuple[float, float]], at: float,
                  windows_h: Iterable[int] = (1, 3, 6, 12, 24)) -> dict[int, float]:
    """Rain (mm) over each window ending at `at`, from (uplink time, mm since the previous uplink) pairs in any
    order. The first uplink anchors the series (its own increment is not counted)."""
    windows_h = tuple(windows_h)
    s = RainSeries(keep_s=max(windows_h, default=24) * HOUR + 7 * 24 * HOUR)
    for t, mm in sorted(increments):
        s.add(t, mm)
    return s.accumulations(windows_h, at)


def rain_tiers(acc: Mapping[int, float], windows_h: Iterable[int],
               thresholds: tuple[tuple[float, ...], ...]) -> dict[int, int]:
    """The tier (NO_RAIN … VERY_INTENSE) each window's accumulation reaches (at or above the depth)."""
    out: dict[int, int] = {}
    for k, h in enumerate(windows_h):
        mm = acc.get(h, 0.0)
        out[h] = sum(1 for tier in thresholds if mm >= tier[k])
    return out


def rain_severity(tiers: Mapping[int, int], major_windows: int) -> int:
    """0 (none) … 3: the worst window's tier, raised to INTENSE's when heavy over `major_windows` windows."""
    worst = max(tiers.values(), default=NO_RAIN)
    heavy = sum(1 for v in tiers.values() if v >= HEAVY)
    if heavy >= major_windows > 0:
        worst = max(worst, INTENSE)
    return worst


# --- river levels -------------------------------------------------------------------------------------------------
def level_class(level: float, yellow: float | None, orange: float | None, red: float | None) -> int:
    """GREEN … RED: the highest threshold at or below the level (a missing threshold is never reached)."""
    cls = GREEN
    for k, th in enumerate((yellow, orange, red), start=1):
        if th is not None and level >= th:
            cls = k
    return cls


class LevelSeries:
    """A river gauge's de-spiked levels over the last `keep_s`, for rates of rise.

    Each point is the median of three consecutive readings, placed at the middle reading's time: on a steady rise
    the median *is* the middle reading, so rates stay exact however the readings are spaced (lost uplinks), and one
    wild reading is never passed on. The series thus runs one reading behind the gauge, and starts at the third
    reading after a (re)start.
    """

    __slots__ = ("_raw", "keep_s", "levels", "max_gap_s", "restarts", "times")

    def __init__(self, keep_s: float = 4 * HOUR, max_gap_s: float = 7200.0) -> None:
        self.keep_s, self.max_gap_s = keep_s, max_gap_s
        self._raw: list[tuple[float, float]] = []  # the last three raw readings of the current run
        self.times: list[float] = []
        self.levels: list[float] = []
        self.restarts = 0

    @property
    def latest(self) -> float | None:
        """Time of the newest raw reading."""
        return self._raw[-1][0] if self._raw else None

    @property
    def current(self) -> float | None:
        """The newest de-spiked level, None before three readings."""
        return self.levels[-1] if self.levels else None

    def add(self, t: float, level: float) -> bool:
        """Add a reading; False (ignored) when it is not newer than the last one."""
        raw = self._raw
        if raw:
            if t <= raw[-1][0]:
                return False
            if t - raw[-1][0] > self.max_gap_s:
                self.restart()
        raw.append((t, level))
        if len(raw) > 3:
            del raw[0]
        if len(raw) < 3:
            return True
        times = self.times
        times.append(raw[1][0])
        self.levels.append(sorted(v for _, v in raw)[1])
        k = bisect.bisect_left(times, times[-1] - self.keep_s) - 1
        if k > 32:
            del times[:k]
            del self.levels[:k]
        return True

    def restart(self) -> None:
        self._raw.clear()
        self.times.clear()
        self.levels.clear()
        self.restarts += 1

    def level_at(self, x: float) -> float | None:
        """The de-spiked level at `x`, interpolated; None outside the series."""
        times, levels = self.times, self.levels
        if not times or x < times[0] or x > times[-1]:
            return None
        i = bisect.bisect_left(times, x)
        if times[i] == x:
            return levels[i]
        t0, t1 = times[i - 1], times[i]
        return levels[i - 1] + (levels[i] - levels[i - 1]) * (x - t0) / (t1 - t0)

    def rate(self, window_s: float, tolerance_s: float = 900.0) -> float | None:
        """Rise (m/h) over the window ending at the newest de-spiked level; None without enough history."""
        times = self.times
        if len(times) < 2:
            return None
        now = times[-1]
        start = now - window_s
        if times[0] > start + tolerance_s:
            return None
        if times[0] > start:  # the series starts a little late: the rate over what there is
            start = times[0]
        then = self.level_at(start)
        if then is None or now - start <= 0:
            return None
        return (self.levels[-1] - then) / ((now - start) / HOUR)


def rate_of_rise(readings: Iterable[tuple[float, float]], window_s: float, *, max_gap_s: float = 7200.0,
                 tolerance_s: float = 900.0) -> float | None:
    """Rise (m/h) over the window ending at the last of the (time, level) readings (in time order; older or
    repeated readings are ignored), as the detector computes it."""
    s = LevelSeries(keep_s=window_s + max_gap_s + tolerance_s, max_gap_s=max_gap_s)
    for t, v in readings:
        s.add(t, v)
    return s.rate(window_s, tolerance_s)
