"""Radio margin and frame counters (domain-rules.md §7.1, §7.4): the pure functions and what a device keeps of them.

Margin = max over the gateways of the uplink's SNR − the demodulation floor of its spreading factor and bandwidth.
Per device: the day's margins, folded at each UTC day's end into a daily median; the 7-day and 30-day medians of
those give the device's radio state. Frame counters: received uplinks per segment, a segment ending at a reset
(the counter going down: a reboot, a rejoin) or a jump beyond LoRaWAN's maximum gap.
"""

from __future__ import annotations

import statistics

# Demodulation floor (dB SNR) per SF and bandwidth: TTN lorawan-stack pkg/networkserver/mac/margin_table.go [S-code]
SNR_FLOOR_DB: dict[int, dict[int, float]] = {
    125_000: {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0},
    250_000: {7: -4.5, 8: -7.0, 9: -9.5, 10: -12.0, 11: -14.5, 12: -17.0},
    500_000: {7: -1.5, 8: -4.0, 9: -6.5, 10: -9.0, 11: -11.5, 12: -11.5},  # "need to be verified" upstream
}
MAX_FCNT_GAP = 16_384  # LoRaWAN ≤ 1.0.3 MAX_FCNT_GAP (Lora-net/LoRaMac-node#138) [S]
DAY = 86400.0
NONE, DEGRADING, CRITICAL = "", "degrading", "critical"


def margin_db(sf: int, snr: float, bandwidth_hz: int | None = None) -> float | None:
    """Link margin of one uplink heard at `snr` (the best gateway's); None for an SF without a known floor."""
    floor = SNR_FLOOR_DB.get(bandwidth_hz or 125_000, SNR_FLOOR_DB[125_000]).get(sf)
    return None if floor is None else round(snr - floor, 2)


def radio_state(short_median: float, long_median: float, sf: int | None, *, degrading_db: float = 10.0,
                drop_db: float = 6.0, critical_db: float = 3.0, sf12_critical_db: float = 5.0) -> str:
    """§7.1: critical below 3 dB (or SF12 below 5 dB), degrading below the 10-dB installation margin or 6 dB below
    the 30-day median."""
    if short_median < critical_db or (sf == 12 and short_median < sf12_critical_db):
        return CRITICAL
    if short_median < degrading_db or long_median - short_median >= drop_db:
        return DEGRADING
    return NONE


class RadioTrack:
    """A device's margins: today's, and the daily medians of the last `long_days` days."""

    __slots__ = ("day", "days", "keep", "sf", "today")

    def __init__(self, long_days: int) -> None:
        self.day = -1
        self.today: list[int] = []  # today's margins, in half dB
        self.days: list[float] = []  # a list, not a deque: 80,000 devices each hold one (a deque costs 600 bytes)
        self.keep = long_days
        self.sf: int | None = None

    def add(self, t: float, margin: float, sf: int | None) -> bool:
        """One uplink's margin; True when a day was closed (the state is then judged again)."""
        day = int(t // DAY)
        closed = False
        if day != self.day:
            if self.today:
                self.days.append(statistics.median(self.today) / 2)
                if len(self.days) > self.keep:
                    del self.days[0]
                closed = True
            self.day, self.today = day, []
        self.today.append(round(margin * 2))  # half-dB steps: small ints, which Python shares (80,000 devices)
        self.sf = sf
        return closed

    def medians(self, short_days: int) -> tuple[float, float] | None:
        if not self.days:
            return None
        return statistics.median(self.days[-short_days:]), statistics.median(self.days)


class FrameCounter:
    """Uplinks received per frame-counter segment; retransmissions and resets counted apart."""

    __slots__ = ("first", "last", "received", "resets", "retransmissions", "segments")

    def __init__(self) -> None:
        self.first: int | None = None
        self.last = 0
        self.received = 0
        self.resets = 0
        self.retransmissions = 0
        self.segments: list[tuple[int, int, int]] = []  # closed segments (first, last, received), the last few

    def add(self, f_cnt: int) -> str:
        """One uplink's fCnt: 'new', 'ok', 'retransmission' or 'reset'."""
        if self.first is None:
            self.first, self.last, self.received = f_cnt, f_cnt, 1
            return "new"
        if f_cnt == self.last:
            self.retransmissions += 1
            return "retransmission"
        if f_cnt < self.last or f_cnt - self.last > MAX_FCNT_GAP:
            self.segments = [*self.segments[-4:], (self.first, self.last, self.received)]
            self.resets += 1
            self.first, self.last, self.received = f_cnt, f_cnt, 1
            return "reset"
        self.last = f_cnt
        self.received += 1
        return "ok"

    def loss(self) -> float | None:
        """Share of the current segment's uplinks that never arrived (0 … 1, never negative)."""
        return None if self.first is None else segment_loss(self.first, self.last, self.received)


def segment_loss(first: int, last: int, received: int) -> float:
    """§7.4: 1 − received / (fCnt_last − fCnt_first + 1), clamped to [0, 1]."""
    expected = last - first + 1
    return 0.0 if expected <= 0 else min(1.0, max(0.0, (expected - received) / expected))
