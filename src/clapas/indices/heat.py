"""Heat: daily Tn/Tx, Météo-France IBM means and heatwave state, NWS heat index, Humidex, heat and cool islands.

Every number comes from ../shared/domain-rules.md §2 ([S] stated by the source, [U] unverified, "not found" a
documented setting). The official heatwave vigilance is Météo-France's: these functions say what the city's own
sensors show, nothing more. Readings are `(epoch seconds, value)` pairs; nothing here does I/O.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

Reading = tuple[float, float]  # (epoch seconds, value)


# --- departmental thresholds (§2.1) --------------------------------------------------------------------------------


class DepartmentThresholds(msgspec.Struct, frozen=True, kw_only=True):
    """IBMn / IBMx canicule thresholds of one département, °C."""

    code: str = ""
    name: str = ""
    ibmn_c: float
    ibmx_c: float


# Source: domain-rules §2.1 [S]: Hérault "IBMn ≥ 22 °C et IBMx ≥ 35 °C", evaluated on the Montpellier station only
# (meteobeziers; infoccitanie); neighbours as listed there. Built from the 98th percentiles of Tmin/Tmax (SACS 2004).
DEPARTMENT_THRESHOLDS: Mapping[str, DepartmentThresholds] = {
    d.code: d
    for d in (
        DepartmentThresholds(code="34", name="Hérault", ibmn_c=22.0, ibmx_c=35.0),
        DepartmentThresholds(code="30", name="Gard", ibmn_c=23.0, ibmx_c=36.0),
        DepartmentThresholds(code="13", name="Bouches-du-Rhône", ibmn_c=24.0, ibmx_c=35.0),
        DepartmentThresholds(code="75", name="Paris", ibmn_c=21.0, ibmx_c=31.0),
        DepartmentThresholds(code="69", name="Rhône", ibmn_c=20.0, ibmx_c=34.0),
        DepartmentThresholds(code="22", name="Côtes-d'Armor", ibmn_c=18.0, ibmx_c=31.0),
        DepartmentThresholds(code="03", name="Allier", ibmn_c=18.0, ibmx_c=34.0),
    )
}
DEFAULT_DEPARTMENT = "34"  # Hérault: clapas's seed city is Montpellier

# IBM window of day D: trailing D−2..D, centred D−1..D+1, leading D..D+2 (for 3 days).
Alignment = Literal["trailing", "centred", "leading"]


class HeatSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of the heatwave computation. Sources: domain-rules §2.1."""

    timezone: str = "Europe/Paris"  # the city's local days
    department: str = DEFAULT_DEPARTMENT
    # Tn / Tx windows: "exact Tn/Tx time windows not found" (§2.1) → settings. The window of day D is
    # [D 00:00 + offset, D+1 00:00 + offset) on the clock of `window_timezone` (empty: the city's). Default: the
    # civil local day for both. A climatological convention often quoted (Tn 18 UTC D−1 → 18 UTC D, Tx 06 UTC D →
    # 06 UTC D+1) [U] is window_timezone="UTC", tn_offset_h=-6, tx_offset_h=6.
    window_timezone: str = ""
    tn_offset_h: int = 0
    tx_offset_h: int = 0
    # Distinct clock hours of the 24 with at least one reading, below which the day's Tn/Tx is unknown (design: a
    # missed afternoon would understate Tx; 18 of 24 tolerates short outages).
    min_hours_covered: int = 18
    # IBM = 3-day moving mean of Tn / Tx (SACS 2005) [S]. Window alignment [U]: Météo-France uses J, J+1, J+2 on
    # forecasts ("leading"); observations can only be judged on J−2..J in real time, hence "trailing" by default.
    ibm_days: int = 3
    ibm_alignment: Alignment = "trailing"
    # "Extreme" (rouge, canicule extrême: exceptional duration/intensity/extent, §2.1): the source gives no number,
    # so no silent default: extreme is never declared unless one of these is set. Intensity: both IBMs at least this
    # many °C above their thresholds; duration: heatwave conditions met on at least this many consecutive days.
    extreme_excess_c: float | None = None
    extreme_min_days: int | None = None

    # --- heat.heatwave detector: which stations, when a day is closed, what is kept ---------------------------------
    # Reference stations: these EUIs and the weather stations of these zones; when both are empty, the weather
    # stations of every zone whose kind is `reference_zone_kind` (the "complete reference weather station at the
    # periphery" of the Cerema/ADEME protocol, §2.2). Météo-France judges Hérault on one station (§2.1).
    reference_stations: tuple[str, ...] = ()
    reference_zones: tuple[str, ...] = ()
    reference_zone_kind: str = "rural"
    # A day is judged once the stream is this far past the end of its Tn/Tx windows, for late uplinks (design, as
    # the water rules' lateness).
    lateness_s: float = 7200.0
    # Daily states kept per reference zone for the API (design: two summer months).
    history_days: int = 62
    # Plausibility (design): readings outside this range are sensor faults, not weather (French records: −41.0 °C,
    # +46.0 °C); a reading that jumps more than `spike_c` away from both neighbours (within `spike_gap_s`) is a
    # spike and does not make a Tn/Tx. WMO-No. 8 recommends such range and step checks without fixing these numbers
    # for 10-minute data [U].
    plausible_min_c: float = -45.0
    plausible_max_c: float = 60.0
    spike_c: float = 4.0
    spike_gap_s: float = 3600.0

    # --- heat.heat_stress detector (per weather station) -----------------------------------------------------------
    # Opening categories: Humidex "great discomfort" (≥ 40, Meteorological Service of Canada, §2.3) [S]; NWS heat
    # index "danger" (≥ 103 °F, §2.3) [S]. Either one reached opens the alert.
    stress_humidex_category: str = "great discomfort"
    stress_heat_index_category: str = "danger"
    # Sustained for this long to open (design: one sensor's noise or a sunny gust must not alert; 2 h is the span
    # of a hot afternoon's peak), below both categories for this long to clear (design: the night between two hot
    # afternoons lasts about 18 h below the category, so a hot spell is one alert per station, not one a day; the
    # clear comes the day after its last hot afternoon).
    stress_sustain_h: float = 2.0
    stress_clear_h: float = 20.0
    # A silence longer than this restarts the count: nobody knows what happened inside it (design).
    stress_max_gap_s: float = 3600.0
    # UTCI inputs (§2.3, Bröde et al. 2012): the polynomial wants the wind at 10 m; stations measure it at
    # `wind_height_m`, scaled to 10 m by the log law with z0 = 0.01 m (Bröde et al. 2012, as thermofeel). The mean
    # radiant temperature is not measured by the city's stations: Tmrt = air temperature + `mrt_offset_c`, 0 being
    # the shade (design: a sunny street's Tmrt can exceed Ta by 20–30 °C, so UTCI here is a shade value).
    wind_height_m: float = 10.0
    mrt_offset_c: float = 0.0
    # The city's own table of départements (code → name, IBMn, IBMx), over the built-in one: for a département the
    # table above lacks, or after Météo-France revises its thresholds. `[heat.departments.84]` in the TOML file.
    departments: dict[str, DepartmentThresholds] = msgspec.field(default_factory=dict)

    def department_table(self) -> dict[str, DepartmentThresholds]:
        return {**DEPARTMENT_THRESHOLDS, **{c: msgspec.structs.replace(d, code=c) for c, d in self.departments.items()}}

    def thresholds(self) -> DepartmentThresholds:
        return self.department_table()[self.department]


DEFAULT_HEAT = HeatSettings()


# --- daily extremes ------------------------------------------------------------------------------------------------


class DailyExtremes(msgspec.Struct, frozen=True):
    """A day's Tn and Tx (°C); None when the window's readings cover too few hours."""

    day: date
    tn: float | None
    tx: float | None


def _window_days(readings: Iterable[Reading], tz: ZoneInfo, offset_h: int) -> dict[date, list[Reading]]:
    """Group readings by the day D whose window [D + offset, D+1 + offset) (wall clock of `tz`) holds them."""
    days: dict[date, list[Reading]] = defaultdict(list)
    shift = timedelta(hours=offset_h)
    for t, v in readings:
        wall = datetime.fromtimestamp(t, UTC).astimezone(tz).replace(tzinfo=None)
        days[(wall - shift).date()].append((t, v))
    return days


def _covered(rows: list[Reading], min_hours: int) -> bool:
    """Whether the readings fall in at least `min_hours` distinct clock hours (why: an outage hides the extreme)."""
    return len({int(t // 3600) for t, _ in rows}) >= min_hours


def daily_extremes(readings: Iterable[Reading], settings: HeatSettings = DEFAULT_HEAT) -> dict[date, DailyExtremes]:
    """Tn (minimum) and Tx (maximum) per day over their configured windows, from hourly or sub-hourly readings."""
    rows = list(readings)
    tz = ZoneInfo(settings.window_timezone or settings.timezone)
    by_tn = _window_days(rows, tz, settings.tn_offset_h)
    by_tx = _window_days(rows, tz, settings.tx_offset_h)
    out: dict[date, DailyExtremes] = {}
    for d in sorted(set(by_tn) | set(by_tx)):
        tn_rows, tx_rows = by_tn.get(d, []), by_tx.get(d, [])
        tn = min(v for _, v in tn_rows) if _covered(tn_rows, settings.min_hours_covered) else None
        tx = max(v for _, v in tx_rows) if _covered(tx_rows, settings.min_hours_covered) else None
        out[d] = DailyExtremes(d, tn, tx)
    return out


# --- IBM and heatwave state ----------------------------------------------------------------------------------------


def ibm_window(day: date, days: int = 3, alignment: Alignment = "trailing") -> tuple[date, ...]:
    """The days averaged into the IBM of `day` (calendar arithmetic: month and year boundaries are plain days)."""
    start = {"trailing": 1 - days, "centred": -(days // 2), "leading": 0}[alignment]
    return tuple(day + timedelta(days=start + i) for i in range(days))


def ibm(
    values: Mapping[date, float | None], day: date, days: int = 3, alignment: Alignment = "trailing"
) -> float | None:
    """IBM of `day`: mean of the daily values over its window; None if any day of the window is missing."""
    window = [values.get(d) for d in ibm_window(day, days, alignment)]
    if any(v is None for v in window):
        return None
    return sum(window) / days  # type: ignore[arg-type]


NONE = "none"
PEAK = "heat_peak"  # jaune "pic de chaleur" (1–2 days)
HEATWAVE = "heatwave"  # orange "canicule": IBM ≥ thresholds for 3 days and 3 nights
EXTREME = "extreme"  # rouge "canicule extrême"
UNAVAILABLE = "unavailable"  # the day's window lacks data: no statement


class HeatDay(msgspec.Struct, frozen=True):
    """The heat state of one day with what made it: the window's days, daily values, IBMs and thresholds."""

    day: date
    state: str
    tn: float | None
    tx: float | None
    ibmn: float | None
    ibmx: float | None
    ibmn_threshold: float
    ibmx_threshold: float
    window: tuple[date, ...]
    run_days: int  # consecutive days with heatwave conditions met, ending this day


def _is_extreme(ibmn: float, ibmx: float, run: int, th: DepartmentThresholds, s: HeatSettings) -> bool:
    """Extreme only on a configured criterion: the source gives no number (see HeatSettings)."""
    hot = s.extreme_excess_c is not None and (
        ibmn - th.ibmn_c >= s.extreme_excess_c and ibmx - th.ibmx_c >= s.extreme_excess_c
    )
    long = s.extreme_min_days is not None and run >= s.extreme_min_days
    return hot or long


def heat_states(daily: Mapping[date, DailyExtremes], settings: HeatSettings = DEFAULT_HEAT) -> list[HeatDay]:
    """The state of every day of `daily`, in order.

    Heatwave conditions met: IBMn ≥ Sn and IBMx ≥ Sx (simultaneous exceedance, SACS [S]); the 3-day IBM window is
    what makes it "3 days and 3 nights". Heat peak (design reading of "pic de chaleur"): the day's own Tn ≥ Sn or
    Tx ≥ Sx while the IBM condition is not met. Unavailable: the day's Tn/Tx or its IBM window is incomplete.
    """
    th = settings.thresholds()
    tn = {d: x.tn for d, x in daily.items()}
    tx = {d: x.tx for d, x in daily.items()}
    out: list[HeatDay] = []
    run = 0
    prev: date | None = None
    for d in sorted(daily):
        x = daily[d]
        n = ibm(tn, d, settings.ibm_days, settings.ibm_alignment)
        m = ibm(tx, d, settings.ibm_days, settings.ibm_alignment)
        met = n is not None and m is not None and n >= th.ibmn_c and m >= th.ibmx_c
        run = (run + 1 if prev == d - timedelta(days=1) else 1) if met else 0
        prev = d if met else None
        if met:
            state = EXTREME if _is_extreme(n, m, run, th, settings) else HEATWAVE  # type: ignore[arg-type]
        elif x.tn is None or x.tx is None:
            state = UNAVAILABLE
        elif x.tn >= th.ibmn_c or x.tx >= th.ibmx_c:
            state = PEAK
        elif n is None or m is None:
            state = UNAVAILABLE
        else:
            state = NONE
        window = ibm_window(d, settings.ibm_days, settings.ibm_alignment)
        out.append(HeatDay(d, state, x.tn, x.tx, n, m, th.ibmn_c, th.ibmx_c, window, run))
    return out


# --- NWS heat index (§2.3) -----------------------------------------------------------------------------------------

# Rothfusz (1990, NWS SR 90-23) regression coefficients, T in °F, RH in % [S-code].
_ROTHFUSZ = (-42.379, 2.04901523, 10.14333127, -0.22475541, -6.83783e-3, -5.481717e-2, 1.22874e-3, 8.5282e-4, -1.99e-6)
HI_REGRESSION_FROM_F = 80.0  # the regression applies when (HI_simple + T)/2 ≥ 80 °F
# Categories (NWS) [S], lower bounds in °F. The source leaves 124–125 °F open; Danger runs up to 125 here.
HI_CATEGORIES_F: tuple[tuple[float, str], ...] = (
    (80.0, "caution"),
    (90.0, "extreme caution"),
    (103.0, "danger"),
    (125.0, "extreme danger"),
)


def c_to_f(c: float) -> float:
    return c * 9.0 / 5.0 + 32.0


def f_to_c(f: float) -> float:
    return (f - 32.0) * 5.0 / 9.0


def heat_index_f(t_f: float, rh: float) -> float:
    """NWS heat index (°F) from air temperature (°F) and relative humidity (%), exactly as domain-rules §2.3.

    The low-RH adjustment is ((13−RH)/4)·sqrt((17−|T−95|)/17): thermofeel writes sqrt(17 − |T−95|/17), an operator
    precedence bug that yields a far larger correction; the NWS form is used here.
    """
    simple = 0.5 * (t_f + 61.0 + (t_f - 68.0) * 1.2 + 0.094 * rh)
    if (simple + t_f) / 2.0 < HI_REGRESSION_FROM_F:
        return simple
    c = _ROTHFUSZ
    hi = (
        c[0]
        + c[1] * t_f
        + c[2] * rh
        + c[3] * t_f * rh
        + c[4] * t_f**2
        + c[5] * rh**2
        + c[6] * t_f**2 * rh
        + c[7] * t_f * rh**2
        + c[8] * t_f**2 * rh**2
    )
    if rh < 13.0 and 80.0 < t_f < 112.0:
        hi -= ((13.0 - rh) / 4.0) * math.sqrt((17.0 - abs(t_f - 95.0)) / 17.0)
    elif rh > 85.0 and 80.0 < t_f < 87.0:
        hi += ((rh - 85.0) / 10.0) * ((87.0 - t_f) / 5.0)
    return hi


def heat_index_c(t_c: float, rh: float) -> float:
    """NWS heat index in °C (the formula itself is in °F)."""
    return f_to_c(heat_index_f(c_to_f(t_c), rh))


def heat_index_category(hi_f: float) -> str | None:
    """NWS category of a heat index in °F; None below 80 °F."""
    label = None
    for bound, name in HI_CATEGORIES_F:
        if hi_f >= bound:
            label = name
    return label


# --- Humidex (§2.3) ------------------------------------------------------------------------------------------------

# Masterton & Richardson (1979) [S-code]: e = 6.11·exp(5417.7530·(1/273.16 − 1/(273.16+Td))) hPa.
_HUMIDEX_E0_HPA = 6.11
_HUMIDEX_L_OVER_RV = 5417.7530
_T0_K = 273.16
_HUMIDEX_FACTOR = 0.5555
# Magnus dew point with the Alduchov & Eskridge (1996) coefficients (error < 0.4 °C over −40…50 °C): the dew point
# formula used when only RH is measured (design choice; domain-rules gives Humidex from Td only).
MAGNUS_A = 17.625
MAGNUS_B_C = 243.04


def vapour_pressure_hpa(dew_point_c: float) -> float:
    return _HUMIDEX_E0_HPA * math.exp(_HUMIDEX_L_OVER_RV * (1.0 / _T0_K - 1.0 / (_T0_K + dew_point_c)))


def humidex(t_c: float, dew_point_c: float) -> float:
    """Humidex from air temperature and dew point (°C), Masterton & Richardson 1979."""
    return t_c + _HUMIDEX_FACTOR * (vapour_pressure_hpa(dew_point_c) - 10.0)


def dew_point_c(t_c: float, rh: float) -> float:
    """Dew point (°C) from temperature (°C) and RH (%), Magnus form (Alduchov & Eskridge 1996 coefficients)."""
    gamma = math.log(rh / 100.0) + MAGNUS_A * t_c / (MAGNUS_B_C + t_c)
    return MAGNUS_B_C * gamma / (MAGNUS_A - gamma)


def humidex_from_rh(t_c: float, rh: float) -> float:
    """Humidex when the sensor gives RH rather than dew point."""
    return humidex(t_c, dew_point_c(t_c, rh))


# Meteorological Service of Canada [S]: ≥ 40 great discomfort, > 45 dangerous, ≥ 54 heat stroke imminent; the lower
# bands (20–30 little, 30–40 some discomfort) from the thermofeel table [S-code].
HUMIDEX_LITTLE = 20.0
HUMIDEX_SOME = 30.0
HUMIDEX_GREAT = 40.0
HUMIDEX_DANGEROUS = 45.0  # strictly above
HUMIDEX_HEAT_STROKE = 54.0


def humidex_category(h: float) -> str | None:
    """Discomfort category of a Humidex value; None below 20."""
    if h >= HUMIDEX_HEAT_STROKE:
        return "heat stroke imminent"
    if h > HUMIDEX_DANGEROUS:
        return "dangerous"
    if h >= HUMIDEX_GREAT:
        return "great discomfort"
    if h >= HUMIDEX_SOME:
        return "some discomfort"
    if h >= HUMIDEX_LITTLE:
        return "little discomfort"
    return None


# --- UTCI (§2.3) ---------------------------------------------------------------------------------------------------

# Validity of the Bröde et al. (2012) operational polynomial [S-code]: Ta −50…+50 °C, 10 m wind 0.5…17 m/s,
# Tmrt − Ta −30…+70 °C, vapour pressure up to 50 hPa.
UTCI_TA_RANGE_C = (-50.0, 50.0)
UTCI_WIND_RANGE_MS = (0.5, 17.0)
UTCI_DMRT_RANGE_C = (-30.0, 70.0)
UTCI_MAX_VAPOUR_HPA = 50.0
# Log-law wind profile used by the UTCI procedure: roughness length 0.01 m, reference height 10 m (Bröde 2012).
UTCI_Z0_M = 0.01
UTCI_WIND_REF_M = 10.0
# Stress classes (Bröde et al. 2012; thermofeel) [S-code], lower bounds in °C, hottest first.
UTCI_CATEGORIES: tuple[tuple[float, str], ...] = (
    (46.0, "extreme heat stress"),
    (38.0, "very strong heat stress"),
    (32.0, "strong heat stress"),
    (26.0, "moderate heat stress"),
    (9.0, "no thermal stress"),
    (0.0, "slight cold stress"),
    (-13.0, "moderate cold stress"),
    (-27.0, "strong cold stress"),
    (-40.0, "very strong cold stress"),
)


def wind_at_10m(speed_ms: float, height_m: float) -> float:
    """A wind speed measured at `height_m` brought to the 10 m the UTCI polynomial expects (log law, z0 = 0.01 m)."""
    if height_m == UTCI_WIND_REF_M:
        return speed_ms
    return speed_ms * math.log10(UTCI_WIND_REF_M / UTCI_Z0_M) / math.log10(height_m / UTCI_Z0_M)


def utci_c(t_c: float, rh: float, wind_10m_ms: float, tmrt_c: float | None = None) -> float | None:
    """UTCI (°C) by ECMWF thermofeel's implementation of the Bröde et al. (2012) polynomial; None outside its
    validity (the polynomial extrapolates silently there).

    `tmrt_c` defaults to the air temperature: the shade value, when the station measures no radiation. Winds below
    0.5 m/s (calm, common at street stations) are taken as 0.5 m/s, the polynomial's lower bound (design: the
    index is defined down to there, and calm air is no cooler than that).
    """
    tmrt = t_c if tmrt_c is None else tmrt_c
    if not (UTCI_TA_RANGE_C[0] <= t_c <= UTCI_TA_RANGE_C[1]):
        return None
    if not (UTCI_DMRT_RANGE_C[0] <= tmrt - t_c <= UTCI_DMRT_RANGE_C[1]) or wind_10m_ms > UTCI_WIND_RANGE_MS[1]:
        return None
    # imported here: numpy's import is not paid by the many users of this module that never ask for UTCI
    import numpy as np
    from thermofeel import thermofeel as tf

    t_k = np.asarray([t_c + 273.15])
    e_hpa = tf.calculate_saturation_vapour_pressure(t_k) * min(max(rh, 0.0), 100.0) / 100.0
    if float(e_hpa[0]) > UTCI_MAX_VAPOUR_HPA:
        return None
    va = np.asarray([max(wind_10m_ms, UTCI_WIND_RANGE_MS[0])])
    out = tf.calculate_utci(t_k, va, np.asarray([tmrt + 273.15]), ehPa=e_hpa)
    return float(out[0]) - 273.15


def utci_category(u: float) -> str:
    """UTCI stress class of a UTCI value (°C)."""
    for bound, name in UTCI_CATEGORIES:
        if u > bound:
            return name
    return "extreme cold stress"


# --- reading quality -----------------------------------------------------------------------------------------------


def despike(readings: Iterable[Reading], spike: float, max_gap_s: float) -> list[Reading]:
    """Readings in time order without isolated spikes: a value further than `spike` from both its neighbours, on the
    same side, with both neighbours within `max_gap_s`. Why: one faulty sample would otherwise be a day's Tn or Tx.
    A real front moves every later reading too, so it stays."""
    rows = sorted(readings)
    out: list[Reading] = []
    for i, (t, v) in enumerate(rows):
        if 0 < i < len(rows) - 1:
            (tp, vp), (tn, vn) = rows[i - 1], rows[i + 1]
            if t - tp <= max_gap_s and tn - t <= max_gap_s and (
                (v - vp > spike and v - vn > spike) or (vp - v > spike and vn - v > spike)
            ):
                continue
        out.append((t, v))
    return out


# --- heat and cool islands (§2.2) ----------------------------------------------------------------------------------


class IslandSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Day and night windows (local hours) for island intensities. The protocol ("Plus fraîche ma ville", Cerema/
    ADEME, §2.2) asks for day and night air temperature at an hourly step [S] but fixes no hours: design defaults."""

    timezone: str = "Europe/Paris"
    day_start_hour: int = 7  # day = [07:00, 19:00)
    night_start_hour: int = 19  # night = [19:00, 07:00 next day), dated by the evening it begins
    min_hours: int = 6  # paired hours needed for a day's or night's figure (design)


DEFAULT_ISLANDS = IslandSettings()


class IslandIntensity(msgspec.Struct, frozen=True):
    """Mean and maximum of the hourly differences over one day or night period."""

    day: date
    period: str  # "day" or "night"
    mean: float
    max: float
    hours: int


def _hourly_means(readings: Iterable[Reading]) -> dict[int, float]:
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for t, v in readings:
        s = sums[int(t // 3600)]
        s[0] += v
        s[1] += 1
    return {h: s[0] / s[1] for h, s in sums.items()}


def _period_of(hour_epoch: int, tz: ZoneInfo, s: IslandSettings) -> tuple[date, str]:
    wall = datetime.fromtimestamp(hour_epoch * 3600, UTC).astimezone(tz)
    if s.day_start_hour <= wall.hour < s.night_start_hour:
        return wall.date(), "day"
    dated = wall.date() if wall.hour >= s.night_start_hour else wall.date() - timedelta(days=1)
    return dated, "night"


def island_intensity(
    minuend: Iterable[Reading], subtrahend: Iterable[Reading], settings: IslandSettings = DEFAULT_ISLANDS
) -> list[IslandIntensity]:
    """Per local day and night, the mean and max of the hourly differences minuend − subtrahend.

    Readings are first averaged per clock hour, so sensors with different periods pair by hour (the protocol's
    hourly step)."""
    a, b = _hourly_means(minuend), _hourly_means(subtrahend)
    tz = ZoneInfo(settings.timezone)
    groups: dict[tuple[date, str], list[float]] = defaultdict(list)
    for h in sorted(set(a) & set(b)):
        groups[_period_of(h, tz, settings)].append(a[h] - b[h])
    return [
        IslandIntensity(d, p, sum(v) / len(v), max(v), len(v))
        for (d, p), v in sorted(groups.items())
        if len(v) >= settings.min_hours
    ]


def uhi_intensity(
    urban: Iterable[Reading], rural: Iterable[Reading], settings: IslandSettings = DEFAULT_ISLANDS
) -> list[IslandIntensity]:
    """Urban heat-island intensity ΔT = T_urban − T_rural (Oke 1981) [S], by day and by night."""
    return island_intensity(urban, rural, settings)


def park_cool_island(
    surroundings: Iterable[Reading], park: Iterable[Reading], settings: IslandSettings = DEFAULT_ISLANDS
) -> list[IslandIntensity]:
    """Park cool-island intensity PCI = T_surroundings − T_park (Spronken-Smith & Oke) [S], by day and by night."""
    return island_intensity(surroundings, park, settings)
