"""Museum and collections climate: ASHRAE classes, Bizot guidelines, the EN 15757 historic-climate band, breach
episodes, 24-hour fluctuation and mould-risk hours.

Numbers from ../shared/domain-rules.md §5 ([S] stated by the source, [U] unverified: the EN 15757 and ASHRAE texts
were not at hand, so every number here is a default to be overridden). Readings are `(epoch seconds, value)` pairs in
time order; nothing here does I/O.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence

import msgspec

Reading = tuple[float, float]  # (epoch seconds, value)
DAY_S = 86400.0
HOUR_S = 3600.0


# --- target classes (§5) -------------------------------------------------------------------------------------------


class ClimateClass(msgspec.Struct, frozen=True, kw_only=True):
    """A control class: short-term fluctuation limits around the set point, seasonal adjustments, absolute bounds.

    None = the class sets no limit of that kind. Set point = the historic annual average, or 50 %RH / 15–25 °C."""

    name: str
    rh_short_pm: float | None = None  # ± %RH around the (seasonal) set point
    t_short_pm_k: float | None = None  # ± K
    rh_season_up: float | None = None  # seasonal set-point shift allowed, %RH (0 = no change)
    rh_season_down: float | None = None
    t_season_up_k: float | None = None
    t_season_down_k: float | None = None
    rh_min: float | None = None  # absolute bounds
    rh_max: float | None = None
    t_min_c: float | None = None
    t_max_c: float | None = None
    rh_max_24h_range: float | None = None  # largest RH swing within 24 h
    t_max_24h_range_k: float | None = None  # largest T swing within 24 h (no source gives one: None by default)
    source: str = ""

    def rh_range_limit(self) -> float | None:
        """The 24-h RH range this class allows: its own figure, else (design reading) the whole width of its
        short-term band, 2 × ±: a wider swing cannot have stayed within ± of any set point."""
        if self.rh_max_24h_range is not None:
            return self.rh_max_24h_range
        return 2 * self.rh_short_pm if self.rh_short_pm is not None else None

    def t_range_limit(self) -> float | None:
        if self.t_max_24h_range_k is not None:
            return self.t_max_24h_range_k
        return 2 * self.t_short_pm_k if self.t_short_pm_k is not None else None


_ASHRAE = "ASHRAE Handbook – HVAC Applications, Museums… chapter; table [U] (domain-rules §5)"
# Class table [U]. B: "T up 10 K but not above 30 °C"; its downward T shift is not given in §5 (left None).
# C: "T rarely > 30 °C, usually < 25 °C" → hard bound 30 °C; D: "RH reliably < 75 %".
ASHRAE_CLASSES: Mapping[str, ClimateClass] = {
    c.name: c
    for c in (
        ClimateClass(name="AA", rh_short_pm=5, t_short_pm_k=2, rh_season_up=0, rh_season_down=0, t_season_up_k=5,
                     t_season_down_k=5, source=_ASHRAE),
        ClimateClass(name="A1", rh_short_pm=5, t_short_pm_k=2, rh_season_up=10, rh_season_down=10, t_season_up_k=5,
                     t_season_down_k=10, source=_ASHRAE),
        ClimateClass(name="A2", rh_short_pm=10, t_short_pm_k=2, rh_season_up=0, rh_season_down=0, t_season_up_k=5,
                     t_season_down_k=10, source=_ASHRAE),
        ClimateClass(name="B", rh_short_pm=10, t_short_pm_k=5, rh_season_up=10, rh_season_down=10, t_season_up_k=10,
                     t_max_c=30, source=_ASHRAE),
        ClimateClass(name="C", rh_min=25, rh_max=75, t_max_c=30, source=_ASHRAE),
        ClimateClass(name="D", rh_max=75, source=_ASHRAE),
    )
}
# Bizot Green Protocol / NMDC interim guidelines (2009; Bizot 2014/2015) [U]: stable 40–60 %RH, 16–25 °C,
# fluctuations ≤ ±10 %RH per 24 h. Read literally, ±10 around the day's level is a 24-h max − min of at most
# 20 %RH; some institutions read it as 10 %RH max − min: override `rh_max_24h_range` for the stricter reading.
BIZOT = ClimateClass(name="Bizot", rh_min=40, rh_max=60, t_min_c=16, t_max_c=25, rh_max_24h_range=20,
                     source="Bizot Green Protocol / NMDC interim guidelines [U] (domain-rules §5)")


CLASSES: Mapping[str, ClimateClass] = {**ASHRAE_CLASSES, "Bizot": BIZOT}
# "ASHRAE A" without a variant: A1 (seasonal RH shifts allowed), the variant the Handbook lists first (design).
CLASS_ALIASES: Mapping[str, str] = {"A": "A1", "BIZOT": "Bizot"}


def climate_class(name: str) -> ClimateClass:
    """A class by name (AA, A1, A2, A = A1, B, C, D, Bizot; case-insensitive); ValueError names the known ones."""
    key = name.strip()
    found = CLASSES.get(key) or CLASSES.get(CLASS_ALIASES.get(key.upper(), key.upper()))
    if found is None:
        raise ValueError(f"unknown climate class {name!r}: use one of {', '.join(CLASSES)} (or A for A1)")
    return found


# --- settings ------------------------------------------------------------------------------------------------------


class MuseumSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """EN 15757 and breach settings. Sources: domain-rules §5 (EN 15757 method details [U])."""

    ma_days: float = 30.0  # seasonal cycle = 30-day centred moving average [U]
    # A centred average is only final with its whole window on both sides (±15 days of data) [U/design].
    require_full_window: bool = True
    p_low: float = 7.0  # safe band = 7th–93rd percentiles of the fluctuations (86 % of data) [U]
    p_high: float = 93.0
    # If the band is narrower than ±10 %RH, ±10 %RH may be used [U]; applied per side (design reading). None for T.
    min_half_band: float | None = 10.0
    abs_min: float | None = 30.0  # absolute limits, brief: 30–75 %RH [U]
    abs_max: float | None = 75.0
    # Breach episodes shorter than this are dropped (design: "debounce (e.g. ≥ 1 h)", §5).
    min_breach_s: float = 3600.0
    # A longer silence between two readings ends an episode (design: the gap cannot be judged).
    max_gap_s: float = 3 * 3600.0
    fluctuation_window_s: float = DAY_S  # 24-hour fluctuation = max − min over any 24 h (§5)
    # Mould risk: "weeks > 75 %RH → mould on nutritious surfaces" (Padfield) [S]; < 70 % at 20 °C usually safe.
    # The source gives "weeks", no exact figure: one week by default (design).
    mould_rh: float = 75.0
    mould_min_sustained_s: float = 7 * DAY_S

    # --- target classes, set points (detector and monthly report) ---
    # Each room's class: room zone id → class name (AA, A1, A2, A, B, C, D, Bizot). A room not listed takes its
    # zone's `climate_class` property, else `default_class`: the Bizot interim guidelines (§5), the common
    # European loan requirement.
    default_class: str = "Bizot"
    rooms: dict[str, str] = {}
    # ASHRAE set point = the historic annual average, "or 50 %RH / 15–25 °C" [U]. The annual set point is the
    # room's own mean once it has `set_point_min_history_s` of data (up to a year); before that RH uses
    # `rh_default_set_point` and T has no relative limit (the source gives a range, 15–25 °C, not a point).
    rh_default_set_point: float = 50.0
    t_default_range_c: tuple[float, float] = (15.0, 25.0)  # the annual T set point is clipped into it [U]
    # The seasonal set point = trailing mean over `ma_days` (real-time stand-in for the centred 30-day average,
    # §5 "provisional trailing MA"), kept within the class's seasonal shifts of the annual set point.
    set_point_min_history_s: float = 7 * DAY_S  # design: a week of data before the room's mean is trusted
    annual_window_s: float = 365 * DAY_S

    # --- room values (design) ---
    # A room's value = mean of its sensors, on a fixed step; each sensor's last value is carried for a while so a
    # lost uplink does not move the room's mean by the sensors' offsets.
    step_s: float = 900.0  # 15 min, the usual uplink interval of indoor thermohygrometers (design)
    sensor_stale_s: float = 2 * HOUR_S  # a sensor silent longer no longer counts (design)
    lateness_s: float = 900.0  # a step is judged once the stream is this far past its end (design)

    # --- detector (design values: the sources give no alerting durations) ---
    # museum.climate opens after `min_breach_s` out of band (the episodes' debounce above) and clears after
    # `climate_clear_s` back in band.
    climate_clear_s: float = HOUR_S
    # Severity by the largest excess beyond the band: warning below, major from, critical from (design).
    rh_major_excess: float = 5.0  # %RH
    rh_critical_excess: float = 10.0
    t_major_excess_k: float = 2.0
    t_critical_excess_k: float = 4.0
    # museum.fluctuation: major when the 24-h range exceeds the limit by this factor (design).
    fluctuation_major_factor: float = 1.5
    # museum.fluctuation clears once the 24-h range has stayed within the limit this long (design).
    fluctuation_clear_s: float = 6 * HOUR_S
    # museum.mould_risk clears after RH has stayed at or below `mould_rh` this long (design: drying out takes time).
    mould_clear_s: float = DAY_S

    def __post_init__(self) -> None:  # an unknown class name fails when the settings are read
        for name in (self.default_class, *self.rooms.values()):
            climate_class(name)

    def class_of(self, room: str, zone_class: str | None = None) -> ClimateClass:
        """The settings' class for the room, else the zone's property, else the default; a zone property naming
        no known class falls back to the default (the registry is not validated like the settings)."""
        if room in self.rooms:
            return climate_class(self.rooms[room])
        if zone_class:
            try:
                return climate_class(zone_class)
            except ValueError:
                pass
        return climate_class(self.default_class)


DEFAULT_MUSEUM = MuseumSettings()


# --- EN 15757 ------------------------------------------------------------------------------------------------------


def centred_moving_average(readings: Sequence[Reading], days: float = 30.0,
                           require_full_window: bool = True) -> list[float | None]:
    """Mean of the readings within ±days/2 of each reading (both ends inclusive, so the window is symmetric).

    None where the window runs past the data and `require_full_window` is set: a truncated centred mean is biased
    toward one side of the seasonal cycle. Sliding sums: O(n)."""
    half = days * DAY_S / 2.0
    n = len(readings)
    out: list[float | None] = []
    lo = hi = 0  # window = readings[lo:hi]
    total = 0.0
    first, last = (readings[0][0], readings[-1][0]) if n else (0.0, 0.0)
    for t, _ in readings:
        while hi < n and readings[hi][0] <= t + half:
            total += readings[hi][1]
            hi += 1
        while readings[lo][0] < t - half:
            total -= readings[lo][1]
            lo += 1
        full = t - half >= first and t + half <= last
        out.append(total / (hi - lo) if full or not require_full_window else None)
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile by linear interpolation between order statistics (Hyndman & Fan type 7, numpy's default
    and `statistics.quantiles(method="inclusive")`): the standard names no estimator [U], this one is the common one."""
    xs = sorted(values)
    h = (len(xs) - 1) * p / 100.0
    i = math.floor(h)
    if i + 1 >= len(xs):
        return xs[-1]
    return xs[i] + (h - i) * (xs[i + 1] - xs[i])


class HistoricBand(msgspec.Struct, frozen=True):
    """The EN 15757 band around the seasonal cycle: target at time t = [ma(t) + lower, ma(t) + upper] ∩ absolute."""

    p_low: float  # percentile of the residuals, before the floor
    p_high: float
    lower: float  # offsets applied to the moving average
    upper: float
    floor_applied: bool
    moving_average: list[float | None]
    residuals: list[float | None]


def historic_band(readings: Sequence[Reading], settings: MuseumSettings = DEFAULT_MUSEUM) -> HistoricBand:
    """EN 15757 historic-climate band from (ideally ≥ 1 year of) readings: 30-day centred moving average, residuals,
    7th–93rd percentiles of the residuals, widened to the ±10 %RH minimum band where narrower."""
    ma = centred_moving_average(readings, settings.ma_days, settings.require_full_window)
    res = [None if m is None else v - m for (_, v), m in zip(readings, ma, strict=True)]
    known = [r for r in res if r is not None]
    if not known:
        raise ValueError("no reading has a full moving-average window: EN 15757 needs more data")
    lo, hi = percentile(known, settings.p_low), percentile(known, settings.p_high)
    lower, upper = lo, hi
    if settings.min_half_band is not None:
        lower, upper = min(lo, -settings.min_half_band), max(hi, settings.min_half_band)
    return HistoricBand(lo, hi, lower, upper, (lower, upper) != (lo, hi), ma, res)


def band_limits(ma: float, band: HistoricBand, settings: MuseumSettings = DEFAULT_MUSEUM) -> tuple[float, float]:
    """Allowed [low, high] around a moving-average value, clipped to the absolute limits."""
    low, high = ma + band.lower, ma + band.upper
    if settings.abs_min is not None:
        low = max(low, settings.abs_min)
    if settings.abs_max is not None:
        high = min(high, settings.abs_max)
    return low, high


# --- breach episodes -----------------------------------------------------------------------------------------------

Limits = Callable[[int, float], tuple[float | None, float | None]]  # (index, time) → (low, high)


def constant_limits(low: float | None, high: float | None) -> Limits:
    return lambda _i, _t: (low, high)


def band_limits_of(band: HistoricBand, settings: MuseumSettings = DEFAULT_MUSEUM) -> Limits:
    """Limits along the readings the band was computed from; readings without a moving average get only the
    absolute limits."""
    def limits(i: int, _t: float) -> tuple[float | None, float | None]:
        m = band.moving_average[i]
        return band_limits(m, band, settings) if m is not None else (settings.abs_min, settings.abs_max)
    return limits


class Episode(msgspec.Struct, frozen=True):
    """A breach: from the first reading outside the limits to the first one back inside (or the last outside one
    when the data stop), with the reading furthest beyond its limit."""

    start: float
    end: float
    peak_time: float
    peak_value: float
    peak_excess: float  # how far beyond the limit, in the value's unit
    direction: str  # "high" or "low"

    @property
    def duration_s(self) -> float:
        return self.end - self.start


def _excess(v: float, low: float | None, high: float | None) -> tuple[float, str]:
    if high is not None and v > high:
        return v - high, "high"
    if low is not None and v < low:
        return low - v, "low"
    return 0.0, ""


def breach_episodes(readings: Sequence[Reading], limits: Limits,
                    settings: MuseumSettings = DEFAULT_MUSEUM) -> list[Episode]:
    """Episodes outside the limits lasting at least `min_breach_s` (the debounce: one stray reading is no breach).
    A gap longer than `max_gap_s` ends an episode at its last reading."""
    out: list[Episode] = []
    cur: list[float] | None = None  # [start, last_out_time, peak_time, peak_value, peak_excess]
    direction = ""
    prev_t: float | None = None

    def close(end: float) -> None:
        if cur is not None and end - cur[0] >= settings.min_breach_s:
            out.append(Episode(cur[0], end, cur[2], cur[3], cur[4], direction))

    for i, (t, v) in enumerate(readings):
        if cur is not None and prev_t is not None and t - prev_t > settings.max_gap_s:
            close(cur[1])
            cur = None
        ex, d = _excess(v, *limits(i, t))
        if ex > 0:
            if cur is None:
                cur, direction = [t, t, t, v, ex], d
            cur[1] = t
            if ex > cur[4]:
                cur[2:5] = [t, v, ex]
                direction = d
        elif cur is not None:
            close(t)
            cur = None
        prev_t = t
    if cur is not None:
        close(cur[1])
    return out


# --- 24-hour fluctuation -------------------------------------------------------------------------------------------


class Fluctuation(msgspec.Struct, frozen=True):
    """The largest max − min within any window of the given length, and where it happened."""

    range: float
    min_time: float
    max_time: float


def max_fluctuation(readings: Sequence[Reading], window_s: float = DAY_S) -> Fluctuation | None:
    """Largest max − min over any `window_s` span (monotonic deques: O(n)). The window closes at each reading and
    reaches back `window_s` inclusive."""
    mins: deque[Reading] = deque()
    maxs: deque[Reading] = deque()
    best: Fluctuation | None = None
    for t, v in readings:
        while mins and mins[-1][1] >= v:
            mins.pop()
        mins.append((t, v))
        while maxs and maxs[-1][1] <= v:
            maxs.pop()
        maxs.append((t, v))
        while mins[0][0] < t - window_s:
            mins.popleft()
        while maxs[0][0] < t - window_s:
            maxs.popleft()
        r = maxs[0][1] - mins[0][1]
        if best is None or r > best.range:
            best = Fluctuation(r, mins[0][0], maxs[0][0])
    return best


# --- mould risk ----------------------------------------------------------------------------------------------------


class MouldRun(msgspec.Struct, frozen=True):
    start: float
    end: float

    @property
    def hours(self) -> float:
        return (self.end - self.start) / HOUR_S


def mould_runs(readings: Sequence[Reading], settings: MuseumSettings = DEFAULT_MUSEUM) -> list[MouldRun]:
    """Runs of RH above `mould_rh` lasting at least `mould_min_sustained_s` (Padfield: weeks above 75 %RH).
    A run ends at the first reading at or below the threshold, or at a data gap longer than `max_gap_s`."""
    runs: list[MouldRun] = []
    start: float | None = None
    last: float | None = None

    def close(end: float) -> None:
        if start is not None and end - start >= settings.mould_min_sustained_s:
            runs.append(MouldRun(start, end))

    for t, rh in readings:
        if start is not None and last is not None and t - last > settings.max_gap_s:
            close(last)
            start = None
        if rh > settings.mould_rh:
            start = t if start is None else start
        elif start is not None:
            close(t)
            start = None
        last = t
    if start is not None and last is not None:
        close(last)
    return runs


def mould_risk_hours(readings: Sequence[Reading], settings: MuseumSettings = DEFAULT_MUSEUM) -> float:
    """Hours spent in sustained high-RH runs (the mould-risk exposure of a room)."""
    return sum(r.hours for r in mould_runs(readings, settings))


# --- class bands ---------------------------------------------------------------------------------------------------


def seasonal_set_point(trailing_mean: float | None, annual: float | None, up: float | None,
                       down: float | None) -> float | None:
    """The seasonal set point: the room's trailing mean kept within [annual − down, annual + up]; a class without
    seasonal figures leaves it free; with no trailing mean the annual set point itself."""
    if trailing_mean is None:
        return annual
    if annual is None:
        return trailing_mean
    lo = annual - down if down is not None else -math.inf
    hi = annual + up if up is not None else math.inf
    return min(max(trailing_mean, lo), hi)


def rh_limits(cls: ClimateClass, seasonal: float | None) -> tuple[float | None, float | None]:
    """[low, high] %RH at a time: ± the short-term fluctuation around the seasonal set point, within the class's
    absolute bounds (either may be None: no limit on that side)."""
    low, high = cls.rh_min, cls.rh_max
    if cls.rh_short_pm is not None and seasonal is not None:
        low = seasonal - cls.rh_short_pm if low is None else max(low, seasonal - cls.rh_short_pm)
        high = seasonal + cls.rh_short_pm if high is None else min(high, seasonal + cls.rh_short_pm)
    return low, high


def t_limits(cls: ClimateClass, seasonal: float | None) -> tuple[float | None, float | None]:
    """[low, high] °C at a time, as `rh_limits`."""
    low, high = cls.t_min_c, cls.t_max_c
    if cls.t_short_pm_k is not None and seasonal is not None:
        low = seasonal - cls.t_short_pm_k if low is None else max(low, seasonal - cls.t_short_pm_k)
        high = seasonal + cls.t_short_pm_k if high is None else min(high, seasonal + cls.t_short_pm_k)
    return low, high


SetPoints = tuple[float | None, float | None, float | None, float | None]  # annual T, annual RH, seasonal T, RH


def set_points(days: Sequence[Sequence[float]], day: int,
               settings: MuseumSettings = DEFAULT_MUSEUM) -> SetPoints:
    """A room's set points for a UTC day (ordinal of epoch days) from the sums of its values on earlier days,
    `[day, ΣT, nT, ΣRH, nRH]` rows in day order: annual = mean over up to `annual_window_s` (T clipped into
    `t_default_range_c`), seasonal = mean over the last `ma_days` days; both only once the history reaches back
    `set_point_min_history_s`, else RH takes `rh_default_set_point` and the rest is unknown (None)."""
    s = settings
    past = [d for d in days if day - s.annual_window_s / DAY_S <= d[0] < day]
    if not past or (day - past[0][0]) * DAY_S < s.set_point_min_history_s:
        return None, s.rh_default_set_point, None, None

    def mean(rows: list[Sequence[float]], i: int) -> float | None:
        n = sum(r[i + 1] for r in rows)
        return sum(r[i] for r in rows) / n if n else None

    season = [d for d in past if d[0] >= day - s.ma_days]
    annual_t, annual_rh = mean(past, 1), mean(past, 3)
    if annual_t is not None:
        annual_t = min(max(annual_t, s.t_default_range_c[0]), s.t_default_range_c[1])
    return (annual_t, annual_rh if annual_rh is not None else s.rh_default_set_point, mean(season, 1),
            mean(season, 3))


def class_limits(cls: ClimateClass, sp: SetPoints) -> tuple[tuple[float | None, float | None],
                                                            tuple[float | None, float | None]]:
    """The (T, RH) bands of a class for given set points."""
    annual_t, annual_rh, season_t, season_rh = sp
    return (t_limits(cls, seasonal_set_point(season_t, annual_t, cls.t_season_up_k, cls.t_season_down_k)),
            rh_limits(cls, seasonal_set_point(season_rh, annual_rh, cls.rh_season_up, cls.rh_season_down)))


def in_band(v: float, limits: tuple[float | None, float | None]) -> bool:
    low, high = limits
    return (low is None or v >= low) and (high is None or v <= high)


# --- a room's value ------------------------------------------------------------------------------------------------


def room_series(sensors: Sequence[Sequence[Reading]], start: float, end: float, step_s: float = 900.0,
                stale_s: float = 2 * HOUR_S) -> list[Reading]:
    """A room's value on a fixed step over [start, end): the mean over its sensors of each one's mean in the step,
    or, for a sensor without a reading in the step, its mean of its last step with readings if that last reading is
    no older than `stale_s` at the step's end (so a lost uplink does not shift the room's mean by the sensors'
    offsets). Steps without any fresh sensor are left out. Stamped at the step's start; the detector computes the
    same values incrementally."""
    out: list[Reading] = []
    idx = [0] * len(sensors)
    last: list[Reading | None] = [None] * len(sensors)
    n = max(0, math.ceil((end - start) / step_s))
    for k in range(n):
        t0 = start + k * step_s
        t1 = t0 + step_s
        acc: list[float] = []
        for j, rs in enumerate(sensors):
            i = idx[j]
            sum_v = 0.0
            cnt = 0
            newest = -math.inf
            while i < len(rs) and rs[i][0] < t1:
                if rs[i][0] >= t0:
                    sum_v += rs[i][1]
                    cnt += 1
                    newest = rs[i][0]
                i += 1
            idx[j] = i
            if cnt:
                last[j] = (newest, sum_v / cnt)
            held = last[j]
            if held is not None and (cnt or t1 - held[0] <= stale_s):
                acc.append(held[1])
        if acc:
            out.append((t0, sum(acc) / len(acc)))
    return out
