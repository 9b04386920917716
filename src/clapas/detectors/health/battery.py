"""Batteries (domain-rules.md §7.3): DevStatus levels as ChirpStack maps them, payload voltages per chemistry, and
the date a battery reaches its threshold.

Why the voltage is preferred: a lithium cell's voltage stays flat most of its life then falls fast, and DevStatus
"can not be reliably used" (RadioBridge) and may be days old. So a device that reports a voltage (or a vendor's
low-battery flag) is judged on it; DevStatus only for the others. A flat-then-falling cell is caught at its knee:
the 24-hour mean falling `knee_drop_v` below its plateau (the highest daily mean of the last weeks).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

DAY = 86400.0
MAX_FORECAST_S = 20 * 365 * DAY  # design: beyond a cell's shelf life a trend says nothing (and no date is given)
EXTERNAL, UNKNOWN = "external", "unknown"


def devstatus_battery(byte: int) -> float | str:
    """The DevStatusAns battery byte as ChirpStack maps it (maccommand/dev_status.rs): 0 external power, 255 unable
    to measure, else b / 254 × 100 %."""
    if byte == 0:
        return EXTERNAL
    if byte == 255:
        return UNKNOWN
    if not 0 < byte < 255:
        raise ValueError(f"a DevStatus battery byte is 0…255, not {byte}")
    return byte / 254 * 100


def status_battery(event: dict) -> float | str:
    """What a ChirpStack `status` event says of the battery: its percentage (ChirpStack already mapped the byte),
    or `external` / `unknown`."""
    if event.get("externalPowerSource"):
        return EXTERNAL
    if event.get("batteryLevelUnavailable"):
        return UNKNOWN
    return float(event.get("batteryLevel", 0.0))


def slope_per_s(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t, v) points (V/s); None with fewer than two distinct times."""
    n = len(points)
    if n < 2:
        return None
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den <= 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / den


def forecast(points: list[tuple[float, float]], threshold: float) -> float | None:
    """When (epoch s) the trend of `points` reaches `threshold`; None if it is not falling."""
    s = slope_per_s(points)
    if s is None or s >= 0:
        return None
    t, v = points[-1]
    when = t + max(0.0, (v - threshold) / -s)
    return when if when - t <= MAX_FORECAST_S else None


def iso_day(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).date().isoformat()


class BatteryTrack:
    """A device's battery readings: the mean voltage over about 24 h (exponential, time constant `window_s`), the
    daily means, the last DevStatus and flag."""

    __slots__ = ("daily", "day", "day_n", "day_sum", "flag", "keep", "mean_t", "mean_v", "percent", "power", "state")

    def __init__(self, days: int) -> None:
        self.mean_v: float | None = None  # the 24-h mean, kept as an exponential mean (one number a device)
        self.mean_t = 0.0
        self.daily: list[tuple[float, float]] = []  # (day start, mean V), the last `keep` days
        self.keep = days
        self.day = -1
        self.day_sum = 0.0
        self.day_n = 0
        self.percent: float | None = None
        self.power = ""  # battery, external, unknown (DevStatus)
        self.flag = False  # the vendor's low-battery flag
        self.state = ""  # "", warning, critical

    def add_voltage(self, t: float, v: float, window_s: float) -> None:
        if self.mean_v is None or t - self.mean_t > window_s:
            self.mean_v = v
        elif t > self.mean_t:
            self.mean_v += (v - self.mean_v) * (1 - math.exp(-(t - self.mean_t) / window_s))
        self.mean_t = max(self.mean_t, t)
        day = int(t // DAY)
        if day != self.day:
            if self.day_n:
                self.daily.append((self.day * DAY, self.day_sum / self.day_n))
                if len(self.daily) > self.keep:
                    del self.daily[0]
            self.day, self.day_sum, self.day_n = day, 0.0, 0
        self.day_sum += v
        self.day_n += 1

    def mean(self) -> float | None:
        return self.mean_v

    def points(self) -> list[tuple[float, float]]:
        """Daily means, today's so far last."""
        pts = list(self.daily)
        if self.day_n:
            pts.append((self.day * DAY, self.day_sum / self.day_n))
        return pts
