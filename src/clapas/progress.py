"""Progress of long work (replay, imports, exports, score, state rebuild, retention), one way for every command.

On a terminal: a rich bar on standard error (standard output may be the work's own output, `export -o -`) with the
count, the rate and the time left. Otherwise (cron, systemd, CI logs): a plain log line every `every_s` seconds with
the same figures, and one at the end, so that a log says how far a night's job got and how fast it went.

The work says how much is done with `advance(n)` (items) or `update(done, count)` when what measures the way done
is not what is counted (an export walks a period and counts rows; the score walks simulated time and counts
messages): the rate is of the count, the share done and the time left are of `done` against `total`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TextIO

log = logging.getLogger("clapas.progress")

LOG_EVERY_S = 10.0  # design: a line every 10 s keeps a night's retention or replay log readable (≈ 360 lines/hour)


class Tracker:
    """How far the work is: `count` items (for the rate), `done` of `total` (for the share and the time left)."""

    def __init__(self, label: str, total: float | None, unit: str, every_s: float, bar: Any = None,
                 task: Any = None, clock: Any = time.monotonic) -> None:
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self.count = 0
        self.done = 0.0
        self._clock = clock
        self._t0 = self._last = clock()
        self._bar, self._task = bar, task

    # what the work calls ------------------------------------------------------------------------------
    def advance(self, n: int = 1) -> None:
        """`n` more items done (they measure the way done too)."""
        self.update(self.done + n, self.count + n)

    def update(self, done: float, count: int | None = None, total: float | None = None) -> None:
        """The way done so far (in the unit of `total`), and the items counted so far when they differ."""
        self.done = float(done)
        self.count = int(done) if count is None else int(count)
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total, count=self.count)
            return
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            log.info("%s", self.line())

    # figures ------------------------------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        return max(self._clock() - self._t0, 1e-9)

    @property
    def rate(self) -> float:
        """Items a second since the start."""
        return self.count / self.elapsed_s

    @property
    def left_s(self) -> float | None:
        """Seconds left at the pace so far; None without a total or before anything is done."""
        if not self.total or self.done <= 0:
            return None
        return max(self.total - self.done, 0.0) * self.elapsed_s / self.done

    def line(self) -> str:
        """`replay: 12,000 messages, 40 % done, 2,400 messages/s, 0:00:07 left`."""
        parts = [f"{self.label}: {self.count:,} {self.unit}"]
        if self.total:
            parts.append(f"{100 * min(self.done / self.total, 1.0):.0f} % done")
        parts.append(f"{self.rate:,.0f} {self.unit}/s")
        left = self.left_s
        if left is not None:
            parts.append(f"{timedelta(seconds=round(left))} left")
        return ", ".join(parts)

    def final_line(self) -> str:
        return f"{self.label}: {self.count:,} {self.unit} in {self.elapsed_s:.1f} s ({self.rate:,.0f} {self.unit}/s)"


def _rich_bar(label: str, unit: str, stream: TextIO, force_terminal: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), TaskProgressColumn(),
                    TextColumn(f"{{task.fields[count]:,}} {unit}"), TextColumn("{task.fields[rate]}"),
                    TimeRemainingColumn(),
                    console=Console(file=stream, force_terminal=force_terminal or None), transient=False)


@contextmanager
def progress(label: str, total: float | None = None, *, unit: str = "items", quiet: bool = False,
             terminal: bool | None = None, every_s: float = LOG_EVERY_S, stream: TextIO | None = None,
             ) -> Iterator[Tracker]:
    """A `Tracker` for the work done inside the block: a bar when `stream` (standard error) is a terminal (or
    `terminal=True`, which forces one), periodic log lines otherwise; `quiet`: the bar is not drawn, the lines
    still go to the log (a log is never too quiet about a job that ran)."""
    stream = stream or sys.stderr
    tty = (stream.isatty() if terminal is None else terminal) and not quiet
    if not tty:
        tracker = Tracker(label, total, unit, every_s)
        yield tracker
        log.info("%s", tracker.final_line())
        return
    bar = _rich_bar(label, unit, stream, terminal is True)
    with bar:
        task = bar.add_task(label, total=total, count=0, rate="")
        tracker = Tracker(label, total, unit, every_s, bar=_RateBar(bar, unit), task=task)
        yield tracker


class _RateBar:
    """The rich bar's updates with the rate of the count (rich's own speed is of `completed`)."""

    def __init__(self, bar: Any, unit: str) -> None:
        self._bar, self._unit = bar, unit
        self._t0 = time.monotonic()

    def update(self, task: Any, *, completed: float, total: float | None, count: int) -> None:
        rate = count / max(time.monotonic() - self._t0, 1e-9)
        self._bar.update(task, completed=completed, total=total, count=count, rate=f"{rate:,.0f} {self._unit}/s")
