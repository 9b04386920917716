"""Gateways (domain-rules.md §7.2, §7.5): offline after ChirpStack's stats rule, debounced, and their blast radius.

A gateway is *bad* from the moment its last stats are older than `offline_factor × stats_interval` or its Gateway
Bridge said OFFLINE (retained `ConnState`). It is offline only if it stays bad for `debounce_checks` checks of the
stream's time: a flap shorter than that opens nothing (Milesight-IoT/beaver-iot#551). Its blast radius: the
devices heard only by it during the last `heard_window_s` (orphans: one incident lists them, their own silence is
not alerted) and those heard by it and one other (they lose their redundancy).
"""

from __future__ import annotations

import math


class GatewayState:
    """What is known of one gateway."""

    __slots__ = ("conn_offline_at", "last_seen", "offline_since", "orphans")

    def __init__(self) -> None:
        self.last_seen = -math.inf  # last stats (or ONLINE) received
        self.conn_offline_at: float | None = None  # the Bridge said OFFLINE then (and nothing since)
        self.offline_since: float | None = None  # the incident's opening time
        self.orphans: list[str] = []

    def bad_since(self, timeout_s: float) -> float | None:
        """When it became bad (stats too old, or OFFLINE); None if it has never reported."""
        if not math.isfinite(self.last_seen) and self.conn_offline_at is None:
            return None
        by_stats = self.last_seen + timeout_s if math.isfinite(self.last_seen) else math.inf
        return min(by_stats, self.conn_offline_at if self.conn_offline_at is not None else math.inf)


def offline_at(bad_since: float, check_s: float, debounce_checks: int) -> float:
    """The check at which a gateway bad since `bad_since` (and still bad) is declared offline: the first check
    after it went bad, plus `debounce_checks − 1` more."""
    first = (math.floor(bad_since / check_s) + 1) * check_s
    return first + (max(1, debounce_checks) - 1) * check_s


def blast_radius(gateway: str, heard: dict[str, dict[str, float]], since: float) -> tuple[list[str], list[str]]:
    """(orphans, losing redundancy): devices heard only by `gateway` since `since`, and those heard by it and by
    exactly one other gateway."""
    orphans, fragile = [], []
    for eui, gws in heard.items():
        if gws.get(gateway, -math.inf) < since:
            continue
        others = sum(1 for g, t in gws.items() if g != gateway and t >= since)
        if others == 0:
            orphans.append(eui)
        elif others == 1:
            fragile.append(eui)
    return sorted(orphans), sorted(fragile)
