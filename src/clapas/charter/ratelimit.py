"""Rate limits per caller: fixed minute and day windows, counted in this process.

The windows and headers are those of Kong's rate-limiting plugin (../shared/domain-rules.md §8.5): windows aligned
on the clock (UTC minutes and days), `X-RateLimit-Limit-Minute` / `X-RateLimit-Remaining-Minute` (and `-Day`) for
each window, `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` for the most constraining one, and a
refusal with 429 and `Retry-After`. Counts live in memory: with several `clapas serve` processes each counts its
own callers (let the gateway count when that matters, and turn these off: `[auth] rate_limits = false`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

MINUTE, DAY = 60, 86_400
_PRUNE_EVERY = 10_000  # hits between two sweeps of the callers whose day is over


@dataclass(slots=True)
class Decision:
    allowed: bool
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: int = 0


class RateLimiter:
    """Counts hits per caller identity (a key id, a token subject, a client address)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}  # identity → [minute, hits in it, day, hits in it]
        self._hits = 0

    def hit(self, ident: str, per_minute: int, per_day: int, now: float) -> Decision:
        """Count one request unless it is over a limit (0: no limit); refused requests are not counted."""
        if per_minute <= 0 and per_day <= 0:
            return Decision(True)
        t = int(now)
        minute, day = t // MINUTE, t // DAY
        with self._lock:
            c = self._counts.get(ident)
            if c is None:
                c = self._counts[ident] = [minute, 0, day, 0]
            if c[0] != minute:
                c[0], c[1] = minute, 0
            if c[2] != day:
                c[2], c[3] = day, 0
            windows = [(name, limit, used, (start + 1) * size - t)
                       for name, limit, used, start, size in (("Minute", per_minute, c[1], minute, MINUTE),
                                                              ("Day", per_day, c[3], day, DAY)) if limit > 0]
            over = [w for w in windows if w[2] >= w[1]]
            if not over:
                c[1] += 1
                c[3] += 1
            self._hits += 1
            if self._hits % _PRUNE_EVERY == 0:
                self._counts = {k: v for k, v in self._counts.items() if v[2] == day}
        used_now = 0 if over else 1
        headers: dict[str, str] = {}
        tightest = None
        for name, limit, used, reset in windows:
            remaining = max(0, limit - used - used_now)
            headers[f"X-RateLimit-Limit-{name}"] = str(limit)
            headers[f"X-RateLimit-Remaining-{name}"] = str(remaining)
            if tightest is None or remaining < tightest[1]:
                tightest = (limit, remaining, reset)
        assert tightest is not None
        headers["RateLimit-Limit"], headers["RateLimit-Remaining"], headers["RateLimit-Reset"] = map(str, tightest)
        if over:
            retry = max(w[3] for w in over)
            headers["Retry-After"] = str(retry)
            return Decision(False, headers, retry)
        return Decision(True, headers)
