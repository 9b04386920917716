"""A small stream builder for the health rules: uplinks, status events and gateway events as committed batches."""

from __future__ import annotations

from datetime import UTC, datetime

from clapas.config import HealthSettings
from clapas.detectors.base import DetectorRunner, MemorySink, Registry
from clapas.detectors.health import HealthDetector
from clapas.store.base import Batch

T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


def eui(i: int) -> str:
    return f"{0x70b3d50000000000 + i:016x}"


class Stream:
    """Events in time order, cut into batches of `per_batch` events, through a HealthDetector."""

    def __init__(self, devices: list[dict], settings: HealthSettings | None = None, per_batch: int = 50) -> None:
        self.det = HealthDetector(settings or HealthSettings())
        self.sink = MemorySink()
        self.runner = DetectorRunner([self.det], self.sink, Registry(devices=devices, zones=[{"id": "z"}]))
        self.per_batch = per_batch
        self.batch = Batch()
        self.n = 0

    def _tick(self) -> None:
        self.n += 1
        if self.n >= self.per_batch:
            self.flush()

    def up(self, t: float, e: str, values: dict[int, float] | None = None, *, f_cnt: int | None = None, sf: int = 7,
           rx: tuple = (("gw-a", 8.0),), bw: int = 125_000, device_time: float | None = None) -> None:
        b = self.batch
        for q, v in (values or {6: 20.0}).items():
            b.o_time.append(datetime.fromtimestamp(t, UTC))
            b.o_eui.append(e)
            b.o_quantity.append(q)
            b.o_value.append(v)
        b.links.append((t, e, "up", f_cnt, sf, bw, rx, None, device_time))
        self._tick()

    def gateway(self, t: float, gid: str, kind: str = "stats", online: bool = True) -> None:
        self.batch.gw_events.append((t, gid, kind, online))
        self._tick()

    def flush(self) -> None:
        if self.n:
            self.runner.on_commit(self.batch)
        self.batch, self.n = Batch(), 0

    def opened(self, rule: str) -> list:
        self.flush()
        return self.sink.opened(rule)

    def transitions(self, rule: str) -> list:
        self.flush()
        return [d for d in self.sink.transitions if d.rule == rule]
