"""Air-quality indices (domain-rules.md §4): the ATMO index, the European AQI and the information/alert thresholds.

Pure functions on plain series: no store, no detector, no clock. Every number lives in `AirQualitySettings` with its
source, so the config can override it later. Conventions shared by every function:

- concentrations are µg/m³; a series is a mapping (or pairs) of *period start* → value, with timezone-aware datetimes;
- hourly values are keyed by the UTC start of the hour; an hour with too few readings is simply absent;
- a day is the city's *local* day (zoneinfo): 23 hours on the spring DST day, 25 on the autumn one;
- figures come from the city's own, mostly low-cost, sensors: every index says `indicative` and carries the sensor
  count and the data completeness behind it, because it is not the AASQA's (Atmo Occitanie's) official index.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import IntEnum, StrEnum

import msgspec

HOUR = timedelta(hours=1)


class Pollutant(StrEnum):
    """The five pollutants of the ATMO index; values are the `air.*` quantity keys' suffixes (clapas.model)."""

    PM2_5 = "pm2_5"
    PM10 = "pm10"
    NO2 = "no2"
    O3 = "o3"
    SO2 = "so2"

    @property
    def quantity_key(self) -> str:
        return f"air.{self.value}"


class Aggregation(StrEnum):
    """How a day's hourly values become the daily value a sub-index is computed from."""

    MEAN = "mean"  # daily mean of the hourly values
    MAX = "max"  # maximum hourly value of the day


# ---------------------------------------------------------------------------------------------------------------------
# ATMO index — arrêté du 10 juillet 2020 (NOR TRER2017892A, JO 29/07/2020), in force 1 January 2021; Annex I.
# domain-rules.md §4.1. Each tuple holds the *inclusive upper bounds* of classes 1..5 in µg/m³; class 6 is everything
# above the last bound. Lower bounds are exclusive: "100 < c ≤ 200" is class 2 for SO2.
# SO2/NO2 rows and the O3 ≤ 50 / 50–100 cells are verbatim from Légifrance [S]; the remaining cells come from
# AASQA-style code (`AtmoScaleExplanation`) [S-code].


class AtmoClass(IntEnum):
    """ATMO classes (arrêté du 10 juillet 2020, Annex I); the index is one of these, or unavailable."""

    BON = 1
    MOYEN = 2
    DEGRADE = 3
    MAUVAIS = 4
    TRES_MAUVAIS = 5
    EXTREMEMENT_MAUVAIS = 6


ATMO_LABELS: Mapping[AtmoClass, str] = {
    AtmoClass.BON: "Bon",
    AtmoClass.MOYEN: "Moyen",
    AtmoClass.DEGRADE: "Dégradé",
    AtmoClass.MAUVAIS: "Mauvais",
    AtmoClass.TRES_MAUVAIS: "Très mauvais",
    AtmoClass.EXTREMEMENT_MAUVAIS: "Extrêmement mauvais",
}
ATMO_COLOURS: Mapping[AtmoClass, str] = {
    AtmoClass.BON: "#50F0E6",
    AtmoClass.MOYEN: "#50CCAA",
    AtmoClass.DEGRADE: "#F0E641",
    AtmoClass.MAUVAIS: "#FF5050",
    AtmoClass.TRES_MAUVAIS: "#960032",
    AtmoClass.EXTREMEMENT_MAUVAIS: "#872181",
}
ATMO_UNAVAILABLE_LABEL = "Indisponible"  # arrêté du 10 juillet 2020; Recosanté wording

ATMO_PM2_5_BOUNDS: tuple[float, ...] = (10, 20, 25, 50, 75)  # 24 h mean [S-code]
ATMO_PM10_BOUNDS: tuple[float, ...] = (20, 40, 50, 100, 150)  # 24 h mean [S-code]
ATMO_NO2_BOUNDS: tuple[float, ...] = (40, 90, 120, 230, 340)  # max hourly [S]
ATMO_O3_BOUNDS: tuple[float, ...] = (50, 100, 130, 240, 380)  # max hourly [S] for ≤ 50 / 50–100, [S-code] above
ATMO_SO2_BOUNDS: tuple[float, ...] = (100, 200, 350, 500, 750)  # max hourly [S]

# Annex I §1.1–1.3 [S]: SO2, NO2, O3 = maximum hourly value of the day; PM = daily mean [S-code; Annex text for PM
# truncated in the source consulted → verify].
ATMO_AGGREGATION: Mapping[Pollutant, Aggregation] = {
    Pollutant.PM2_5: Aggregation.MEAN,
    Pollutant.PM10: Aggregation.MEAN,
    Pollutant.NO2: Aggregation.MAX,
    Pollutant.O3: Aggregation.MAX,
    Pollutant.SO2: Aggregation.MAX,
}

# ---------------------------------------------------------------------------------------------------------------------
# European Air Quality Index (EEA), *legacy* bands — domain-rules.md §4.2 (Euronews/Copernicus table) [S]. Same
# numbers as ATMO. The table's top caps (O3 800, NO2 1000, …) are the scale's display range, not a class limit: above
# the fifth bound is "Extremely poor" whatever the value. Gases are hourly values; PM are 24 h running means — that
# averaging is marked [U] (unverified) in the domain rules. The revised WHO-2021-aligned EAQI is not implemented.


class EaqiLevel(IntEnum):
    GOOD = 1
    FAIR = 2
    MODERATE = 3
    POOR = 4
    VERY_POOR = 5
    EXTREMELY_POOR = 6


EAQI_LABELS: Mapping[EaqiLevel, str] = {
    EaqiLevel.GOOD: "Good",
    EaqiLevel.FAIR: "Fair",
    EaqiLevel.MODERATE: "Moderate",
    EaqiLevel.POOR: "Poor",
    EaqiLevel.VERY_POOR: "Very poor",
    EaqiLevel.EXTREMELY_POOR: "Extremely poor",
}
EAQI_PM2_5_BOUNDS: tuple[float, ...] = (10, 20, 25, 50, 75)
EAQI_PM10_BOUNDS: tuple[float, ...] = (20, 40, 50, 100, 150)
EAQI_NO2_BOUNDS: tuple[float, ...] = (40, 90, 120, 230, 340)
EAQI_O3_BOUNDS: tuple[float, ...] = (50, 100, 130, 240, 380)
EAQI_SO2_BOUNDS: tuple[float, ...] = (100, 200, 350, 500, 750)
# The scale's display range (§4.2 table, top of "Extremely poor"): no ambient air reaches it.
MAX_PLAUSIBLE: Mapping[Pollutant, float] = {
    Pollutant.PM2_5: 800, Pollutant.PM10: 1200, Pollutant.NO2: 1000, Pollutant.O3: 800, Pollutant.SO2: 1250,
}
# PM averaged as a 24 h running mean [U]; gases hourly.
EAQI_RUNNING_MEAN_POLLUTANTS: frozenset[Pollutant] = frozenset({Pollutant.PM2_5, Pollutant.PM10})

# ---------------------------------------------------------------------------------------------------------------------
# Data validity — domain-rules.md §4.3 "data-validity rules" (UK SI 2007/64 transposing directive 2008/50/EC) [S]:
# an hourly value needs 75 % of its readings (45 min); a daily figure needs 18 of 24 hourly values. The source states
# the 18/24 rule for the daily maximum 8-h mean; clapas applies the same 75 % to the daily mean and the daily hourly
# maximum (the arrêté of 2020 gives no sensor-level rule: the AASQA model their index).
HOURLY_MIN_COVERAGE = 0.75
DAILY_MIN_VALID_HOURS = 18
DAILY_REFERENCE_HOURS = 24

# ---------------------------------------------------------------------------------------------------------------------
# Information and alert thresholds — Code de l'environnement R221-1 (décret 2010-1250), arrêté du 7 avril 2016
# (replacing the arrêté du 26 mars 2014); domain-rules.md §4.3 [S]. An exceedance is a value strictly above the
# threshold ("niveau au-delà duquel", R221-1).


class Threshold(msgspec.Struct, frozen=True):
    """One regulatory threshold: exceeded when `min_periods` consecutive periods are all above `value`."""

    name: str
    pollutant: Pollutant
    value: float  # µg/m³
    daily: bool = False  # True: daily means (local days); False: hourly values
    min_periods: int = 1  # consecutive hours (or days) above the value
    # Alert severity when the episode is on; "" = by level: information → warning, alert → major (design: the law
    # has two procedures, the alert being the graver; the top progressive-measures levels are marked critical)
    severity: str = ""

    @property
    def level(self) -> str:
        """The procedure the threshold belongs to: `information` or `alert` ("o3.alert.2" → alert)."""
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 else parts[0]

    @property
    def alert_severity(self) -> str:
        return self.severity or THRESHOLD_SEVERITY.get(self.level, "warning")


THRESHOLD_SEVERITY: Mapping[str, str] = {"information": "warning", "alert": "major"}  # design (see Threshold.severity)


DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    # PM10 daily mean: information 50, alert 80 (lowered from 80/125 by the décret of 21 Oct 2010) [S]
    Threshold("pm10.information", Pollutant.PM10, 50, daily=True),
    Threshold("pm10.alert", Pollutant.PM10, 80, daily=True),
    # NO2: information 200 hourly; alert 400 hourly over 3 consecutive hours [S]. The second alert route (200 when the
    # information procedure ran on J-1 and J and is forecast for J+1) needs forecasts: not computed here.
    Threshold("no2.information", Pollutant.NO2, 200),
    Threshold("no2.alert", Pollutant.NO2, 400, min_periods=3),
    # O3: information 180 hourly; health alert 240 hourly; progressive-measures alert thresholds 240 and 300 over
    # 3 consecutive hours, 360 over one hour [S]
    Threshold("o3.information", Pollutant.O3, 180),
    Threshold("o3.alert", Pollutant.O3, 240),
    Threshold("o3.alert.1", Pollutant.O3, 240, min_periods=3),
    Threshold("o3.alert.2", Pollutant.O3, 300, min_periods=3, severity="critical"),
    Threshold("o3.alert.3", Pollutant.O3, 360, severity="critical"),
    # SO2: information 300 hourly; alert 500 over 3 consecutive hours [S]
    Threshold("so2.information", Pollutant.SO2, 300),
    Threshold("so2.alert", Pollutant.SO2, 500, min_periods=3),
)


class AirQualitySettings(msgspec.Struct, frozen=True):
    """Every air-quality number, overridable; defaults are the regulatory values with their sources above."""

    # ATMO band upper bounds per pollutant — arrêté du 10 juillet 2020, Annex I (§4.1)
    atmo_pm2_5: tuple[float, ...] = ATMO_PM2_5_BOUNDS
    atmo_pm10: tuple[float, ...] = ATMO_PM10_BOUNDS
    atmo_no2: tuple[float, ...] = ATMO_NO2_BOUNDS
    atmo_o3: tuple[float, ...] = ATMO_O3_BOUNDS
    atmo_so2: tuple[float, ...] = ATMO_SO2_BOUNDS
    # Pollutants the zone's index cannot do without, even when no sensor measures them (§4.1: the index covers five
    # pollutants; a city network rarely measures SO2). Empty: the index is the worst of the pollutants measured.
    atmo_required: tuple[Pollutant, ...] = ()
    # Legacy EAQI band upper bounds (§4.2, Euronews/Copernicus table)
    eaqi_pm2_5: tuple[float, ...] = EAQI_PM2_5_BOUNDS
    eaqi_pm10: tuple[float, ...] = EAQI_PM10_BOUNDS
    eaqi_no2: tuple[float, ...] = EAQI_NO2_BOUNDS
    eaqi_o3: tuple[float, ...] = EAQI_O3_BOUNDS
    eaqi_so2: tuple[float, ...] = EAQI_SO2_BOUNDS
    eaqi_running_mean_hours: int = 24  # PM running mean length [U] (§4.2)
    # Validity (§4.3 data-validity rules, UK SI 2007/64): share of expected readings an hourly value needs
    hourly_min_coverage: float = HOURLY_MIN_COVERAGE
    # … and valid hours a daily figure (or a 24 h running mean) needs, per `daily_reference_hours` hours; scaled to the
    # length of the local day (23 or 25 hours on DST days)
    daily_min_valid_hours: int = DAILY_MIN_VALID_HOURS
    daily_reference_hours: int = DAILY_REFERENCE_HOURS
    # Information/alert thresholds (§4.3, R221-1, arrêté du 7 avril 2016)
    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    # Low-cost city sensors, not reference analysers: every index is labelled indicative (issue 5)
    indicative: bool = True
    # --- streaming (the air detectors) ---
    # A sensor's uplink interval when its registry entry does not say (design: the usual 15-minute air-quality
    # device profile); the hourly 75 % rule counts readings against it
    expected_interval_s: int = 900
    # How long after an hour (or a local day) ends its readings may still arrive before it is decided (design: radio
    # retries and gateway backlogs are minutes; an hour leaves room for a batch delayed by the store)
    lateness_s: float = 3600.0
    # Readings outside [0, max] are sensor faults, not air: the top of the EAQI scale's display range (§4.2 table)
    max_plausible: Mapping[Pollutant, float] = msgspec.field(default_factory=lambda: dict(MAX_PLAUSIBLE))
    # Closed days of ATMO index kept per zone (design: a month, what the demo page and a monthly report show)
    atmo_days_kept: int = 31

    def atmo_bounds(self, pollutant: Pollutant) -> tuple[float, ...]:
        return getattr(self, f"atmo_{pollutant.value}")

    def eaqi_bounds(self, pollutant: Pollutant) -> tuple[float, ...]:
        return getattr(self, f"eaqi_{pollutant.value}")


DEFAULT_SETTINGS = AirQualitySettings()


# ---------------------------------------------------------------------------------------------------------------------
# Bands


def band(bounds: Sequence[float], concentration: float) -> int:
    """The 1-based class of `concentration` in a table of inclusive upper bounds (lower bounds exclusive).

    `bisect_left` finds the first bound ≥ c, which is exactly "previous bound < c ≤ this bound". Non-finite values
    are refused: a NaN would silently land in class 1.
    """
    if not math.isfinite(concentration):
        raise ValueError(f"concentration must be finite, got {concentration!r}")
    return bisect_left(bounds, concentration) + 1


def atmo_sub_index(
    pollutant: Pollutant | str, concentration: float, settings: AirQualitySettings = DEFAULT_SETTINGS
) -> int:
    """ATMO sub-index (1 Bon … 6 Extrêmement mauvais) of an already aggregated daily concentration (µg/m³)."""
    return band(settings.atmo_bounds(Pollutant(pollutant)), concentration)


def eaqi_sub_index(
    pollutant: Pollutant | str, concentration: float, settings: AirQualitySettings = DEFAULT_SETTINGS
) -> int:
    """Legacy EAQI level (1 Good … 6 Extremely poor) of an hourly gas value or a PM 24 h running mean."""
    return band(settings.eaqi_bounds(Pollutant(pollutant)), concentration)


# ---------------------------------------------------------------------------------------------------------------------
# Validity and local days


def min_readings_per_hour(expected_per_hour: int, settings: AirQualitySettings = DEFAULT_SETTINGS) -> int:
    """Readings an hour needs to be valid: 75 % of those expected, rounded up (4 of 4, 3 of 4 → valid; 8 of 12 not)."""
    return math.ceil(settings.hourly_min_coverage * expected_per_hour - 1e-9)


def hour_start(at: datetime, tz: tzinfo) -> datetime:
    """The UTC start of the local clock hour holding `at`.

    Floored in local time so zones with half-hour offsets get their own hours; `fold` survives `replace`, so the
    repeated hour of the autumn DST change stays two distinct hours.
    """
    if at.tzinfo is None:
        raise ValueError("naive datetime: air-quality series need timezone-aware timestamps")
    local = at.astimezone(tz)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def hourly_means(
    readings: Iterable[tuple[datetime, float]],
    expected_per_hour: int,
    tz: tzinfo,
    settings: AirQualitySettings = DEFAULT_SETTINGS,
) -> dict[datetime, float]:
    """One sensor's sub-hourly readings → its valid hourly means, keyed by UTC hour start; invalid hours are absent."""
    groups: dict[datetime, list[float]] = {}
    for at, value in readings:
        groups.setdefault(hour_start(at, tz), []).append(value)
    need = min_readings_per_hour(expected_per_hour, settings)
    return {h: math.fsum(vs) / len(vs) for h, vs in sorted(groups.items()) if len(vs) >= need}


def local_day_hours(day: date, tz: tzinfo) -> list[datetime]:
    """UTC starts of the hours of a local day: 24 usually, 23 on the spring DST day, 25 on the autumn one."""
    start = datetime.combine(day, time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
    return [start + i * HOUR for i in range((end - start) // HOUR)]


def min_valid_hours(hours_in_period: int, settings: AirQualitySettings = DEFAULT_SETTINGS) -> int:
    """Valid hours a period needs: 18 per 24, scaled and rounded up (23-hour day → 18, 25-hour day → 19)."""
    return math.ceil(settings.daily_min_valid_hours * hours_in_period / settings.daily_reference_hours - 1e-9)


# ---------------------------------------------------------------------------------------------------------------------
# Daily values and the ATMO index


class DailyValue(msgspec.Struct, frozen=True):
    """A pollutant's aggregated value for one local day, with what it rests on; `value` is None when unavailable."""

    pollutant: Pollutant
    aggregation: Aggregation
    value: float | None
    valid_hours: int
    hours: int  # hours in the local day (23, 24 or 25)
    required_hours: int
    sensors: int  # sensors with at least one valid hour in the day

    @property
    def available(self) -> bool:
        return self.value is not None

    @property
    def completeness(self) -> float:
        return self.valid_hours / self.hours


def zone_hourly(sensors: Mapping[str, Mapping[datetime, float]]) -> dict[datetime, float]:
    """Combine sensors' valid hourly values into the zone's: the mean of the sensors valid in that hour.

    A spatial mean (not the worst sensor) because the ATMO index describes a zone's background, not a hot spot; an
    hour counts as valid for the zone when at least one sensor has it.
    """
    merged: dict[datetime, list[float]] = {}
    for series in sensors.values():
        for h, v in series.items():
            merged.setdefault(h, []).append(v)
    return {h: math.fsum(vs) / len(vs) for h, vs in sorted(merged.items())}


def daily_value(
    pollutant: Pollutant | str,
    sensors: Mapping[str, Mapping[datetime, float]],
    day: date,
    tz: tzinfo,
    settings: AirQualitySettings = DEFAULT_SETTINGS,
    aggregation: Aggregation | None = None,
) -> DailyValue:
    """A pollutant's daily value for a local day from its sensors' valid hourly values (UTC hour starts).

    The ATMO aggregation by default; `aggregation` forces one (the daily thresholds are daily means).
    """
    pollutant = Pollutant(pollutant)
    hours = local_day_hours(day, tz)
    in_day = set(hours)
    day_sensors = {s: {h: v for h, v in series.items() if h in in_day} for s, series in sensors.items()}
    hourly = zone_hourly(day_sensors)
    required = min_valid_hours(len(hours), settings)
    aggregation = aggregation or ATMO_AGGREGATION[pollutant]
    value: float | None = None
    if len(hourly) >= required:
        values = list(hourly.values())
        value = math.fsum(values) / len(values) if aggregation is Aggregation.MEAN else max(values)
    return DailyValue(
        pollutant=pollutant,
        aggregation=aggregation,
        value=value,
        valid_hours=len(hourly),
        hours=len(hours),
        required_hours=required,
        sensors=sum(1 for series in day_sensors.values() if series),
    )


class AtmoDay(msgspec.Struct, frozen=True):
    """The ATMO index of a zone for one local day, with the evidence behind it."""

    day: date
    index: int | None  # 1..6, None = indisponible
    sub_indices: dict[Pollutant, int]  # available pollutants only
    drivers: tuple[Pollutant, ...]  # pollutant(s) whose sub-index is the index (ties: all of them)
    daily: dict[Pollutant, DailyValue]
    missing: tuple[Pollutant, ...]  # measured but insufficient, or required but not measured
    sensors: int  # distinct sensors behind the figure
    completeness: float  # the weakest pollutant's valid hours / hours in the day
    indicative: bool

    @property
    def available(self) -> bool:
        return self.index is not None

    @property
    def label(self) -> str:
        return ATMO_UNAVAILABLE_LABEL if self.index is None else ATMO_LABELS[AtmoClass(self.index)]

    @property
    def colour(self) -> str | None:
        return None if self.index is None else ATMO_COLOURS[AtmoClass(self.index)]


def atmo_index(
    hourly: Mapping[Pollutant | str, Mapping[str, Mapping[datetime, float]]],
    day: date,
    tz: tzinfo,
    settings: AirQualitySettings = DEFAULT_SETTINGS,
) -> AtmoDay:
    """The zone's ATMO index for a local day: the worst sub-index over the pollutants measured.

    `hourly` is pollutant → sensor id → UTC hour start → valid hourly mean. "Indisponible" when nothing is measured,
    when a measured pollutant lacks valid hours (its day could be the worst one), or when a pollutant of
    `settings.atmo_required` is not measured.
    """
    daily = {Pollutant(p): daily_value(p, sensors, day, tz, settings) for p, sensors in hourly.items()}
    missing = {p for p, d in daily.items() if not d.available}
    missing |= {p for p in settings.atmo_required if p not in daily}
    sub = {p: atmo_sub_index(p, d.value, settings) for p, d in daily.items() if d.value is not None}
    index = max(sub.values()) if sub and not missing else None
    sensor_ids = {s for sensors in hourly.values() for s, series in sensors.items() if series}
    return AtmoDay(
        day=day,
        index=index,
        sub_indices=sub,
        drivers=tuple(p for p in Pollutant if sub.get(p) == index) if index is not None else (),
        daily=daily,
        missing=tuple(p for p in Pollutant if p in missing),
        sensors=len(sensor_ids),
        completeness=min((d.completeness for d in daily.values()), default=0.0),
        indicative=settings.indicative,
    )


# ---------------------------------------------------------------------------------------------------------------------
# European AQI, hourly


def running_mean(
    hourly: Mapping[datetime, float], hour: datetime, settings: AirQualitySettings = DEFAULT_SETTINGS
) -> float | None:
    """Mean of the `eaqi_running_mean_hours` hours ending with `hour` (UTC start), None under 18 valid hours per 24."""
    n = settings.eaqi_running_mean_hours
    values = [hourly[h] for h in (hour - i * HOUR for i in range(n)) if h in hourly]
    return math.fsum(values) / len(values) if len(values) >= min_valid_hours(n, settings) else None


class EaqiHour(msgspec.Struct, frozen=True):
    """The legacy European AQI for one hour (UTC start), None when no pollutant has a usable value."""

    hour: datetime
    level: int | None
    sub_indices: dict[Pollutant, int]
    drivers: tuple[Pollutant, ...]
    indicative: bool

    @property
    def label(self) -> str | None:
        return None if self.level is None else EAQI_LABELS[EaqiLevel(self.level)]


def eaqi_hour(
    hourly: Mapping[Pollutant | str, Mapping[datetime, float]],
    hour: datetime,
    settings: AirQualitySettings = DEFAULT_SETTINGS,
) -> EaqiHour:
    """EAQI at `hour` from zone hourly series (pollutant → UTC hour start → value): worst level of those available.

    Unlike ATMO, the EEA publishes the index from whatever pollutants a station has, so a missing one does not make
    the hour unavailable.
    """
    sub: dict[Pollutant, int] = {}
    for p, series in hourly.items():
        p = Pollutant(p)
        value = running_mean(series, hour, settings) if p in EAQI_RUNNING_MEAN_POLLUTANTS else series.get(hour)
        if value is not None:
            sub[p] = eaqi_sub_index(p, value, settings)
    level = max(sub.values(), default=None)
    drivers = tuple(p for p in Pollutant if level is not None and sub.get(p) == level)
    return EaqiHour(hour=hour, level=level, sub_indices=sub, drivers=drivers, indicative=settings.indicative)


# ---------------------------------------------------------------------------------------------------------------------
# Information and alert thresholds


class Episode(msgspec.Struct, frozen=True):
    """A run of consecutive periods above a threshold, at least `min_periods` long; `end` is exclusive."""

    threshold: str
    pollutant: Pollutant
    start: datetime
    end: datetime
    peak: float
    peak_at: datetime
    periods: int


def _next_period(start: datetime, daily: bool) -> datetime:
    """Start of the following period: +1 h in UTC, or the next local midnight (23/25 h away on DST days)."""
    if daily:
        return datetime.combine(start.date() + timedelta(days=1), time(), start.tzinfo)
    return (start.astimezone(UTC) + HOUR).astimezone(start.tzinfo)


def threshold_episodes(series: Mapping[datetime, float], threshold: Threshold) -> list[Episode]:
    """Episodes of `series` above one threshold, respecting its duration rule.

    Hourly series are keyed by hour start; daily ones by local midnight (aware, in the city's zone). A missing period
    breaks a run: three consecutive hours cannot be asserted across a gap.
    """
    episodes: list[Episode] = []
    run: list[tuple[datetime, float]] = []

    def close() -> None:
        if len(run) >= threshold.min_periods:
            peak_at, peak = max(run, key=lambda item: item[1])
            episodes.append(
                Episode(
                    threshold=threshold.name,
                    pollutant=threshold.pollutant,
                    start=run[0][0],
                    end=_next_period(run[-1][0], threshold.daily),
                    peak=peak,
                    peak_at=peak_at,
                    periods=len(run),
                )
            )
        run.clear()

    for start, value in sorted(series.items()):
        if value <= threshold.value or (run and _next_period(run[-1][0], threshold.daily) != start):
            close()
        if value > threshold.value:
            run.append((start, value))
    close()
    return episodes


def exceedances(
    pollutant: Pollutant | str,
    series: Mapping[datetime, float],
    daily: bool = False,
    settings: AirQualitySettings = DEFAULT_SETTINGS,
) -> list[Episode]:
    """All episodes of a pollutant's series over its thresholds of the matching averaging (hourly or daily)."""
    pollutant = Pollutant(pollutant)
    found = [
        episode
        for threshold in settings.thresholds
        if threshold.pollutant is pollutant and threshold.daily == daily
        for episode in threshold_episodes(series, threshold)
    ]
    return sorted(found, key=lambda e: (e.start, e.threshold))


RUN_KEPT = 48  # periods of a long episode's current run an `EpisodeTracker` keeps for evidence


class EpisodeTracker:
    """`threshold_episodes` one period at a time, for a stream: says when an episode starts and when it ends.

    Periods are pushed in order (UTC hour starts, or local midnights for daily thresholds), valid ones only. An
    episode starts once `min_periods` consecutive periods are above the threshold; a missing period breaks a run
    that has not yet reached it (three consecutive hours cannot be asserted across a gap). Once started, the episode
    ends only on a valid period at or under the threshold: a gap is no evidence that the air got better, so an
    episode is not ended by missing data (where `threshold_episodes`, looking back at a series, splits it there).
    """

    __slots__ = ("active", "last", "peak", "peak_at", "run", "start", "threshold")

    def __init__(self, threshold: Threshold) -> None:
        self.threshold = threshold
        self.run: list[tuple[datetime, float]] = []  # current run of consecutive periods above, oldest first
        self.last: datetime | None = None  # last period pushed
        self.active = False
        self.start: datetime | None = None  # first period of the active episode
        self.peak = -math.inf
        self.peak_at: datetime | None = None

    def push(self, start: datetime, value: float) -> str | None:
        """One valid period; returns "start" when an episode starts with it, "end" when one ends, else None."""
        th = self.threshold
        if self.last is not None and start <= self.last:
            raise ValueError(f"periods must be pushed in order: {start} after {self.last}")
        contiguous = self.last is not None and _next_period(self.last, th.daily) == start
        self.last = start
        if not contiguous:
            self.run.clear()
        if value > th.value:
            self.run.append((start, value))
            if len(self.run) > max(th.min_periods, RUN_KEPT):
                del self.run[0]
            if self.active:
                if value > self.peak:
                    self.peak, self.peak_at = value, start
                return None
            if len(self.run) >= th.min_periods:
                self.active = True
                self.start = self.run[0][0]
                self.peak_at, self.peak = max(self.run, key=lambda item: item[1])
                return "start"
            return None
        self.run.clear()
        if self.active:
            self.active = False
            return "end"
        return None
