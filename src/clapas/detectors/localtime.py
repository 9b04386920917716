"""The city's local time for rules that speak of it (night windows, days), cached per UTC hour.

Converting every reading's time with zoneinfo would cost microseconds per uplink; a reading only needs its local
day and hour, which are constant within a UTC hour for the whole-hour offsets of European cities. (Zones with
half-hour offsets would need a finer cache: not needed yet.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

HOUR = 3600.0


class LocalClock:
    def __init__(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)
        self._hours: dict[int, tuple[int, int, float, float]] = {}
        self._at: dict[tuple[int, int], float] = {}

    def hour(self, t: float) -> tuple[int, int, float, float]:
        """(local day ordinal, local hour, local day start, local day end) of epoch time `t`."""
        h = int(t // HOUR)
        c = self._hours.get(h)
        if c is None:
            local = datetime.fromtimestamp(h * HOUR, UTC).astimezone(self.tz)
            day = local.date().toordinal()
            c = (day, local.hour, self.at(day, 0), self.at(day + 1, 0))
            if len(self._hours) > 200_000:
                self._hours.clear()
            self._hours[h] = c
        return c

    def at(self, day: int, hour: int) -> float:
        """Epoch time of `hour`:00 local on the local day `day` (an ordinal)."""
        k = (day, hour)
        v = self._at.get(k)
        if v is None:
            d = date.fromordinal(day)
            v = datetime(d.year, d.month, d.day, hour, tzinfo=self.tz).timestamp()
            if len(self._at) > 200_000:
                self._at.clear()
            self._at[k] = v
        return v

    def date(self, day: int) -> date:
        return date.fromordinal(day)
