"""Fixed minute and day windows, Kong's headers."""

from __future__ import annotations

from clapas.charter.ratelimit import RateLimiter

T = 1_780_000_000 - 1_780_000_000 % 86_400 + 3600  # 01:00 UTC on some day


def test_minute_window_refuses_then_resets() -> None:
    rl = RateLimiter()
    got = [rl.hit("k", 2, 0, T + i) for i in range(3)]
    assert [d.allowed for d in got] == [True, True, False]
    assert [d.headers["X-RateLimit-Remaining-Minute"] for d in got] == ["1", "0", "0"]
    assert got[2].retry_after == 58 and got[2].headers["Retry-After"] == "58"
    assert "X-RateLimit-Limit-Day" not in got[0].headers
    assert rl.hit("k", 2, 0, T + 60).allowed  # the next minute
    assert rl.hit("other", 2, 0, T + 2).allowed  # each identity counts on its own


def test_day_window_is_the_tightest_and_refusals_do_not_count() -> None:
    rl = RateLimiter()
    first = rl.hit("k", 100, 2, T).headers
    assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("2", "1")  # fewest remaining: the day
    assert first["X-RateLimit-Remaining-Minute"] == "99"
    d = rl.hit("k", 100, 2, T + 1)
    assert d.allowed and d.headers["RateLimit-Limit"] == "2" and d.headers["RateLimit-Remaining"] == "0"
    refused = rl.hit("k", 100, 2, T + 120)
    assert not refused.allowed and refused.retry_after == 86_400 - 3600 - 120
    assert refused.headers["RateLimit-Reset"] == str(refused.retry_after)
    assert rl.hit("k", 100, 2, T + 86_400).allowed  # the next day
    assert rl.hit("k", 0, 0, T).allowed and rl.hit("k", 0, 0, T).headers == {}  # no limit, no headers
