"""The progress of long work: figures, periodic log lines without a terminal, a rich bar on one."""

from __future__ import annotations

import io
import logging

from clapas.progress import Tracker, progress
from tests.helpers import progress_lines


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_figures_count_rate_share_and_time_left(caplog) -> None:
    clock = Clock()
    tracker = Tracker("replay", 1_000, "messages", every_s=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="clapas.progress"):
        clock.t += 4.0
        tracker.advance(200)  # 4 s in: not yet time for a line
        assert progress_lines(caplog) == []
        clock.t += 6.0
        tracker.advance(200)  # 10 s in: 400 done at 40/s, 600 left → 15 s
    assert progress_lines(caplog) == [
        "replay: 400 messages, 40 % done, 40 messages/s, 0:00:15 left"]
    assert tracker.count == 400 and tracker.left_s == 15.0


def test_share_and_count_apart() -> None:
    """An export walks a period (the share) and counts rows (the rate)."""
    clock = Clock()
    tracker = Tracker("export weather", 1.0, "rows", every_s=10.0, clock=clock)
    clock.t += 30.0
    tracker.update(0.25, 6_000)
    assert tracker.line() == "export weather: 6,000 rows, 25 % done, 200 rows/s, 0:01:30 left"
    assert tracker.final_line() == "export weather: 6,000 rows in 30.0 s (200 rows/s)"


def test_no_total_no_time_left() -> None:
    tracker = Tracker("import", None, "messages", every_s=10.0)
    tracker.advance(5)
    assert tracker.left_s is None and "left" not in tracker.line() and "5 messages" in tracker.line()


def test_lines_without_a_terminal(caplog) -> None:
    stream = io.StringIO()  # not a terminal
    with caplog.at_level(logging.INFO, logger="clapas.progress"), \
            progress("retention", 30, unit="devices", every_s=0.0, stream=stream) as bar:
        for _ in range(3):
            bar.advance(10)
    lines = progress_lines(caplog)
    assert [line.split(",")[0] for line in lines[:3]] == ["retention: 10 devices", "retention: 20 devices",
                                                          "retention: 30 devices"]
    assert "100 % done" in lines[2]
    assert lines[3].startswith("retention: 30 devices in ")
    assert stream.getvalue() == ""  # no bar drawn


def test_a_bar_on_a_terminal(caplog) -> None:
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="clapas.progress"), \
            progress("export weather", 1.0, unit="rows", terminal=True, stream=stream) as bar:
        bar.update(0.5, 1_000)
        bar.update(1.0, 2_000)
    out = stream.getvalue()
    assert "export weather" in out and "2,000 rows" in out and "100%" in out and "rows/s" in out
    assert "\x1b[" in out  # drawn as on a terminal
    assert progress_lines(caplog) == []  # the bar says it; no log lines meanwhile


def test_quiet_draws_no_bar_but_logs(caplog) -> None:
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="clapas.progress"), \
            progress("replay", 2, unit="messages", quiet=True, terminal=True, every_s=0.0, stream=stream) as bar:
        bar.advance(2)
    assert stream.getvalue() == ""
    assert progress_lines(caplog)[0].split(",")[0] == "replay: 2 messages"
