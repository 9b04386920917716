"""The core generator: every device's events, in time order, from a start to an end (or forever).

`Simulation(city, start, end, seed, incidents).messages()` yields `(sim_time, topic, payload)` with `sim_time` in
epoch seconds (UTC). Devices are scheduled on a heap by their next uplink time; each uplink's readings cover the
time since the device's previous one. Lost uplinks still advance the frame counter and the meters, as on a real
network; silent devices send nothing at all.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import datetime

from clapas.simulator import formats
from clapas.simulator.city import City, SimDevice
from clapas.simulator.incidents import GATEWAY_KINDS, Incident
from clapas.simulator.messages import MessageFactory, gateway_conn, gateway_stats
from clapas.simulator.noise import key
from clapas.simulator.signals import Signals

DAY = 86400.0
JITTER_SHARE = 0.01  # devices' clocks and random transmit delays, as a share of the interval
MAX_JITTER_S = 8.0
LOSS_RATE = 0.008  # uplinks lost on a good link (collisions)
WEAK_LINK_MARGIN_DB = 5.0
WEAK_LINK_LOSS_RATE = 0.04
STATUS_EVERY_S = DAY  # ChirpStack's device-status request frequency: once a day
GATEWAY_STATS_S = 30.0  # the Gateway Bridge's default stats_interval (domain-rules §7.2)


class Simulation:
    """A deterministic run over [start, end); `end=None` runs forever (in time order, lazily)."""

    def __init__(self, city: City, start: datetime, end: datetime | None, seed: int = 0,
                 incidents: list[Incident] | None = None, fmt: str = "json", joins: bool = True,
                 gateway_events: bool = False, gateway_stats_s: float = GATEWAY_STATS_S) -> None:
        """`gateway_events`: also the Gateway Bridge's connection states and stats of every gateway, every
        `gateway_stats_s` (the health rules' input; off by default: they are many messages no other use reads)."""
        self.city, self.seed = city, seed
        self.t_start = start.timestamp()
        self.t_end = end.timestamp() if end is not None else float("inf")
        self.incidents = list(incidents or [])
        self.signals = Signals(city, seed, self.incidents, self.t_start)
        self.factory = MessageFactory(city, seed, fmt)
        self.fmt = fmt
        self.joins = joins
        self.gateway_events = gateway_events
        self.gateway_stats_s = gateway_stats_s
        self.silent: dict[str, list[tuple[float, float]]] = {}
        self.outages: list[tuple[float, float, str]] = []  # (start, end, gateway)
        self.antenna: dict[str, list[Incident]] = {}  # degrading antennas: extra loss ramping up
        self.stuck: dict[str, list[Incident]] = {}  # sensors whose readings froze
        for inc in self.incidents:
            if inc.kind == "silent":
                for eui in inc.devices:
                    self.silent.setdefault(eui, []).append((inc.t0, inc.t1))
            elif inc.kind in GATEWAY_KINDS:
                self.outages += [(inc.t0, inc.t1, g) for g in inc.devices]
            elif inc.kind in ("antenna_degradation", "stuck_sensor"):
                for eui in inc.devices:
                    (self.antenna if inc.kind == "antenna_degradation" else self.stuck).setdefault(eui, []).append(inc)
        self.encoders = {d.device.decoder: formats.encoder_for(d.device.decoder) for d in city.devices}
        self.generated = 0
        self.sim_time = self.t_start  # time of the last uplink generated: how far a run has got
        self._frozen_readings: dict[tuple[str, float], dict[str, float]] = {}

    def _loss(self, d: SimDevice) -> float:
        weak = self.factory.radio[d.index].link_margin() < WEAK_LINK_MARGIN_DB
        return WEAK_LINK_LOSS_RATE if weak else LOSS_RATE

    def messages(self) -> Iterator[tuple[float, str, bytes]]:
        if not self.gateway_events:
            return self._device_messages()
        return heapq.merge(self._device_messages(), self._gateway_messages(), key=lambda e: e[0])

    def _gateway_messages(self) -> Iterator[tuple[float, str, bytes]]:
        """Every gateway's retained ONLINE at the start, its stats, OFFLINE/ONLINE around outages."""
        fmt, t0, t_end, every = self.fmt, self.t_start, self.t_end, self.gateway_stats_s
        heap: list[tuple[float, int, str, str]] = []  # (time, order, gateway, what)
        for k, g in enumerate(self.city.gateways):
            heap.append((t0, k, g.id, "online"))
            heap.append((t0 + (k * 7.3) % every, k, g.id, "stats"))
        for a, b, gid in self.outages:
            heap += [(a, 0, gid, "offline"), (b, 0, gid, "online")]
        heapq.heapify(heap)
        received = dict.fromkeys((g.id for g in self.city.gateways), 0)
        while heap:
            t, k, gid, what = heapq.heappop(heap)
            if t >= t_end:
                continue
            if what == "stats":
                heapq.heappush(heap, (t + every, k, gid, "stats"))
                if any(a <= t < b for a, b, g in self.outages if g == gid):
                    continue
                received[gid] += 1
                yield (t, *gateway_stats(gid, t, received[gid], fmt))
            else:
                yield (t, *gateway_conn(gid, what == "online", fmt))

    def _extra_loss(self, eui: str, t: float) -> float:
        for inc in self.antenna.get(eui, ()):
            if inc.active(t):
                ramp = inc.params.get("ramp_s", DAY / 2)
                return inc.params["loss_db"] * min(1.0, (t - inc.t0) / ramp)
        return 0.0

    def _frozen(self, eui: str, t: float, readings: dict[str, float]) -> dict[str, float]:
        """A stuck sensor repeats what it read when it froze (its battery still reports)."""
        for inc in self.stuck.get(eui, ()):
            if inc.active(t):
                frozen = self._frozen_readings.setdefault((eui, inc.t0), dict(readings))
                return {**frozen, **{k: v for k, v in readings.items() if k.startswith("battery")}}
        return readings

    def _device_messages(self) -> Iterator[tuple[float, str, bytes]]:
        devices = self.city.devices
        factory, signals = self.factory, self.signals
        interval = [float(d.device.expected_interval_s or 3600) for d in devices]
        first = [self.t_start + d.params["phase"] * interval[d.index] for d in devices]
        jitter = [2 * min(MAX_JITTER_S, JITTER_SHARE * iv) for iv in interval]
        # scheduling and loss draws come from their own sequential generators: deterministic (the order of
        # events is), and the same whatever the output format
        jitter_draw = random.Random(key(self.seed, "jitter")).random
        loss_draw = random.Random(key(self.seed, "loss")).random
        heap = [(first[i] + jitter[i] * (jitter_draw() - 0.5), i, 0) for i in range(len(devices))]
        heapq.heapify(heap)
        prev = [self.t_start] * len(devices)
        f_cnt = [0] * len(devices)
        next_status = [self.t_start + d.params["phase"] * STATUS_EVERY_S for d in devices]
        status_n = [0] * len(devices)
        loss = [self._loss(d) for d in devices]
        is_object = [d.device.decoder == formats.CHIRPSTACK_OBJECT for d in devices]
        encode = [self.encoders[d.device.decoder] for d in devices]
        topics = [(t["up"], t["status"], t["join"]) for t in factory.topics]
        silent = self.silent
        outages, antenna, stuck = self.outages, self.antenna, self.stuck
        t_end = self.t_end
        readings_of, up, to_object = signals.readings, factory.up, formats.to_object
        heapreplace, heappop = heapq.heapreplace, heapq.heappop
        while heap:
            t, i, n = heap[0]
            if t >= t_end:
                heappop(heap)
                continue
            d = devices[i]
            n1 = n + 1
            heapreplace(heap, (first[i] + n1 * interval[i] + jitter[i] * (jitter_draw() - 0.5), i, n1))
            if silent and d.eui in silent and any(a <= t < b for a, b in silent[d.eui]):
                prev[i] = t
                continue
            if n == 0 and self.joins:
                self.generated += 1
                yield t, topics[i][2], factory.join(d, t)
            readings = readings_of(d, prev[i], t)
            if stuck and d.eui in stuck:
                readings = self._frozen(d.eui, t, readings)
            prev[i] = t
            self.sim_time = t
            fc = f_cnt[i]
            f_cnt[i] = fc + 1
            if outages:
                factory.down = {g for a, b, g in outages if a <= t < b}
            if loss_draw() < loss[i] or (outages and not factory.heard(d)):
                continue
            extra = self._extra_loss(d.eui, t) if antenna and d.eui in antenna else 0.0
            f_port, payload = encode[i](readings)
            self.generated += 1
            yield t, topics[i][0], up(d, t, fc, f_port, payload, to_object(readings) if is_object[i] else None,
                                      extra)
            if t >= next_status[i]:
                next_status[i] += STATUS_EVERY_S * (1 + int((t - next_status[i]) // STATUS_EVERY_S))
                battery = None if d.mains else signals.battery(d, t)
                self.generated += 1
                yield t, topics[i][1], factory.status(d, t, status_n[i], battery)
                status_n[i] += 1
