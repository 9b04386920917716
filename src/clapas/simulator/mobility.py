"""Simulated mobility: bike-share stations with a GBFS feed (v2.3 or v3.0 documents, served over HTTP by the demo),
and LoRaWAN bike counters (ChirpStack uplinks with cumulative totals and per-direction period counts), with
incidents and their ground truth for `clapas score --uses mobility`.

Incidents: a station stuck empty or full for hours (alert expected), a station briefly empty (a near miss: under
the contract's hour, no alert), a GBFS feed failing (polls refused) or frozen (`last_updated` no longer moving), a
counter failing to zero for days, a counter reset (its total back to a small number). Everything is a pure function
of (seed, time): the same seed gives the same city and the same feed.
"""

from __future__ import annotations

import base64
import json
import math
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from clapas.connectors.counts import counter_eui
from clapas.connectors.gbfs import messages as gbfs_messages
from clapas.connectors.gbfs import normalize
from clapas.model import Device, Message, Zone
from clapas.simulator.incidents import Incident

HOUR, DAY = 3600.0, 86400.0
SYSTEM = "velomagg-sim"
POLL_S = 300.0  # the simulated feed's ttl
CENTRE = (43.6108, 3.8767)  # place de la Comédie
STUCK_HOURS = (2.0, 5.0)  # a station stuck empty / full: well over the contract's 60 min
BRIEF_MIN = (20.0, 40.0)  # a brief empty: under it
OUTAGE_MIN = (25.0, 45.0)  # feed failing: ≥ 3 failed polls at 5 min
FROZEN_MIN = (30.0, 60.0)  # feed frozen: last_updated older than 5 min for half an hour or more
ZERO_DAYS = (1.5, 3.0)
COUNTER_START_DAY = 8  # counter incidents after a week of reference (same weekday)


@dataclass
class SimStation:
    station_id: str
    eui: str
    name: str
    lat: float
    lon: float
    capacity: int
    zone: str
    mid: float
    phase: float


@dataclass
class SimCounter:
    eui: str
    name: str
    lat: float
    lon: float
    zone: str
    per_hour: float


@dataclass
class MobilityCity:
    stations: list[SimStation]
    counters: list[SimCounter]
    zones: list[Zone]
    system: str = SYSTEM
    seed: int = 0
    devices: list[Any] = field(default_factory=list)

    def registry_devices(self) -> list[Device]:
        out = [Device(eui=s.eui, name=s.name, kind="bike_station", zone=s.zone, lat=s.lat, lon=s.lon,
                      profile=gbfs_messages.PROFILE, tags={"gbfs_system": self.system, "station_id": s.station_id,
                                                           "capacity": str(s.capacity)}) for s in self.stations]
        out += [Device(eui=c.eui, name=c.name, kind="bike_counter", zone=c.zone, lat=c.lat, lon=c.lon,
                       expected_interval_s=3600, tags={"time_step": "3600"}) for c in self.counters]
        out.append(Device(eui=gbfs_messages.system_eui(self.system), name=f"GBFS {self.system}",
                          kind="bikeshare_system", tags={"gbfs_system": self.system}))
        return out


def _square(zid: str, lat: float, lon: float, half: float) -> Zone:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half],
            [lon - half, lat - half]]
    return Zone(id=zid, name=zid, kind="district", geometry={"type": "Polygon", "coordinates": [ring]})


def build_mobility(seed: int = 0, stations: int = 30, counters: int = 10) -> MobilityCity:
    rnd = random.Random(seed * 7919 + 12)
    zones = [_square(f"mob-{i}{j}", CENTRE[0] + (i - 0.5) * 0.02, CENTRE[1] + (j - 0.5) * 0.02, 0.01)
             for i in range(2) for j in range(2)]
    out = []
    for k in range(stations):
        lat = CENTRE[0] + rnd.uniform(-0.0195, 0.0195)
        lon = CENTRE[1] + rnd.uniform(-0.0195, 0.0195)
        zone = f"mob-{int(lat >= CENTRE[0])}{int(lon >= CENTRE[1])}"
        cap = rnd.choice([12, 16, 20, 24, 30])
        sid = f"{k + 1:03d}"
        out.append(SimStation(sid, gbfs_messages.station_eui(SYSTEM, sid), f"Station {sid}", round(lat, 6),
                              round(lon, 6), cap, zone, cap * rnd.uniform(0.4, 0.6), rnd.uniform(0, 2 * math.pi)))
    cs = []
    for k in range(counters):
        lat, lon = CENTRE[0] + rnd.uniform(-0.018, 0.018), CENTRE[1] + rnd.uniform(-0.018, 0.018)
        cs.append(SimCounter(counter_eui(f"sim-counter-{seed}-{k}"), f"Compteur vélo {k + 1}", lat, lon,
                             f"mob-{int(lat >= CENTRE[0])}{int(lon >= CENTRE[1])}", rnd.uniform(30, 120)))
    return MobilityCity(out, cs, zones, seed=seed)


def mobility_incidents(city: MobilityCity, start: datetime, end: datetime, seed: int = 0) -> list[Incident]:
    """Stations stuck empty / full and brief empties on distinct stations; feed outages and freezes apart in time;
    counter zeros and resets after the counters' first week."""
    rnd = random.Random(seed * 104729 + 5)
    span = (end - start).total_seconds()
    out: list[Incident] = []

    def at(t: float, seconds: float, kind: str, devices: list[str], zone: str = "", expected: bool = True,
           **params: Any) -> None:
        a = start + timedelta(seconds=t)
        out.append(Incident(kind=kind, start=a, end=a + timedelta(seconds=seconds), devices=devices, zone=zone,
                            params=params, expected_alert=expected))

    stations = list(city.stations)
    rnd.shuffle(stations)
    # feed incidents first: station incidents stay clear of them (a feed outage hides the stations' state)
    feed_windows: list[tuple[float, float]] = []
    sys_eui = gbfs_messages.system_eui(city.system)
    n_feed = max(2, int(span // (2 * DAY)))
    for k in range(n_feed):
        t = (k + 0.5) * span / n_feed + rnd.uniform(-3, 3) * HOUR
        kind = "feed_outage" if k % 2 == 0 else "feed_frozen"
        minutes = rnd.uniform(*(OUTAGE_MIN if kind == "feed_outage" else FROZEN_MIN))
        at(t, minutes * 60, kind, [sys_eui])
        feed_windows.append((t - 2 * HOUR, t + minutes * 60 + 2 * HOUR))

    def free(t0: float, t1: float) -> bool:
        return all(t1 < a or t0 > b for a, b in feed_windows)

    for k, st in enumerate(stations):
        kind = ("station_empty", "station_full", "brief_empty")[k % 3]
        for _ in range(20):
            t = rnd.uniform(0.5 * DAY, span - 0.5 * DAY)
            dur = rnd.uniform(*STUCK_HOURS) * HOUR if kind != "brief_empty" else rnd.uniform(*BRIEF_MIN) * 60
            if free(t, t + dur):
                at(t, dur, kind, [st.eui], st.zone, expected=kind != "brief_empty")
                break
    for k, c in enumerate(city.counters):
        if k % 2 == 0:
            day = COUNTER_START_DAY + rnd.uniform(0, max(0.0, span / DAY - COUNTER_START_DAY - ZERO_DAYS[1] - 1))
            # from a local midnight, so that whole days count nothing
            a = start + timedelta(days=math.floor(day))
            dur = rnd.uniform(*ZERO_DAYS) * DAY
            out.append(Incident(kind="counter_zero", start=a, end=a + timedelta(seconds=dur), devices=[c.eui],
                                zone=c.zone))
        else:
            at(rnd.uniform(DAY, span - DAY), HOUR, "counter_reset", [c.eui], c.zone)
    return out


# the feed ---------------------------------------------------------------------------------------------------------
class StationModel:
    """Each station's bikes at a time: a daily swing around its middle, noise, and the incidents."""

    def __init__(self, city: MobilityCity, incidents: list[Incident]) -> None:
        self.city = city
        self.by_eui: dict[str, list[Incident]] = {}
        for inc in incidents:
            for e in inc.devices:
                self.by_eui.setdefault(e, []).append(inc)

    def bikes(self, st: SimStation, t: float) -> int:
        for inc in self.by_eui.get(st.eui, ()):
            if inc.active(t):
                if inc.kind in ("station_empty", "brief_empty"):
                    return 0
                if inc.kind == "station_full":
                    return st.capacity
        h = (t % DAY) / HOUR
        rnd = random.Random(f"{st.eui}:{int(t // POLL_S)}")  # str seeds are stable across runs
        v = st.mid + 0.3 * st.capacity * math.sin(2 * math.pi * h / 24 + st.phase) + rnd.uniform(-1.5, 1.5)
        return int(min(st.capacity - 2, max(2, round(v))))

    def feed_state(self, t: float) -> tuple[bool, float]:
        """(poll succeeds, the feed's last_updated) at poll time t."""
        lu = t - 10
        for inc in self.by_eui.get(gbfs_messages.system_eui(self.city.system), ()):
            if inc.active(t):
                if inc.kind == "feed_outage":
                    return False, lu
                lu = inc.t0 - 10
        return True, lu

    def status_doc(self, t: float, version: str = "2.3") -> dict[str, Any]:
        """station_status.json at time t, in GBFS 2.3 or 3.0."""
        _, lu = self.feed_state(t)
        v3 = version.startswith("3")
        stations = []
        for st in self.city.stations:
            t_s = min(t, lu)
            b = self.bikes(st, t_s)
            rep = int(t_s - 5)
            stations.append({"station_id": st.station_id, "is_installed": True, "is_renting": True,
                             "is_returning": True, "num_docks_available": st.capacity - b,
                             ("num_vehicles_available" if v3 else "num_bikes_available"): b,
                             "last_reported": _rfc3339(rep) if v3 else rep})
        return {"last_updated": _rfc3339(lu) if v3 else int(lu), "ttl": int(POLL_S), "version": version,
                "data": {"stations": stations}}

    def information_doc(self, t: float, version: str = "2.3") -> dict[str, Any]:
        v3 = version.startswith("3")
        return {"last_updated": _rfc3339(t) if v3 else int(t), "ttl": 3600, "version": version, "data": {
            "stations": [{"station_id": s.station_id, "lat": s.lat, "lon": s.lon, "capacity": s.capacity,
                          "name": [{"text": s.name, "language": "fr"}] if v3 else s.name}
                         for s in self.city.stations]}}


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(int(t), UTC).isoformat()


def poll_messages(model: StationModel, t: float) -> list[Message]:
    """What the GBFS poller makes of one poll of the simulated feed (the same normalisation, without HTTP)."""
    city = model.city
    at = datetime.fromtimestamp(t, UTC)
    ok, _ = model.feed_state(t)
    if not ok:
        return [gbfs_messages.system_message(city.system, at, False),
                gbfs_messages.log_message(city.system, at, "HTTPStatusError: 503 (simulated outage)")]
    doc = model.status_doc(t)
    head = normalize.header(doc)
    info = {s.station_id: normalize.StationInfo(station_id=s.station_id, name=s.name, lat=s.lat, lon=s.lon,
                                                capacity=s.capacity) for s in city.stations}
    zones = {s.station_id: s.zone for s in city.stations}
    out = gbfs_messages.station_messages(city.system, at, head.last_updated, normalize.station_status(doc), info,
                                         zones)
    out.append(gbfs_messages.system_message(city.system, at, True, head.last_updated, None, len(city.stations)))
    return out


# counters -------------------------------------------------------------------------------------------------------
def counter_uplink(c: SimCounter, t: float, n_in: int, n_out: int, total: int, fcnt: int) -> Message:
    """A ChirpStack v4 `up` event whose codec decoded the counter's object (catalogue keys)."""
    body = {
        "deduplicationId": f"{c.eui}-{fcnt}", "time": datetime.fromtimestamp(t, UTC).isoformat(),
        "deviceInfo": {"tenantId": "sim", "tenantName": "sim", "applicationId": "mobility",
                       "applicationName": "mobility", "deviceProfileId": "counter", "deviceProfileName": "counter",
                       "deviceName": c.name, "devEui": c.eui, "tags": {"kind": "bike_counter", "zone": c.zone}},
        "devAddr": "00000000", "dr": 5, "fPort": 85, "fCnt": fcnt, "data": base64.b64encode(b"\x00").decode(),
        "object": {"counter.in": n_in, "counter.out": n_out, "counter.total": total},
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": fcnt, "rssi": -95, "snr": 7.5}],
        "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7,
                                                                   "codeRate": "CR_4_5"}}},
    }
    return Message(source="chirpstack", event="up", fmt="json", raw=json.dumps(body).encode(),
                   received_at=datetime.fromtimestamp(t, UTC), topic=f"application/mobility/device/{c.eui}/event/up")


def counter_messages(city: MobilityCity, incidents: list[Incident], start: datetime, end: datetime
                     ) -> Iterator[tuple[float, Message]]:
    by: dict[str, list[Incident]] = {}
    for inc in incidents:
        for e in inc.devices:
            by.setdefault(e, []).append(inc)
    for c in city.counters:
        total = 1_000 + int(c.per_hour * 100)
        t = start.timestamp() + HOUR
        fcnt = 0
        while t <= end.timestamp():
            h = ((t - HOUR) % DAY) / HOUR
            shape = 0.2 + math.exp(-((h - 8) ** 2) / 2) + math.exp(-((h - 18) ** 2) / 3)
            rnd = random.Random(f"{c.eui}:{int(t)}")
            n_in = max(0, round(c.per_hour * shape * rnd.uniform(0.8, 1.2)))
            n_out = max(0, round(c.per_hour * shape * rnd.uniform(0.8, 1.2)))
            for inc in by.get(c.eui, ()):
                if inc.kind == "counter_zero" and inc.active(t - 1):
                    n_in = n_out = 0
                elif inc.kind == "counter_reset" and inc.t0 <= t < inc.t0 + HOUR:
                    total = 0  # power loss: the total starts again
            total += n_in + n_out
            fcnt += 1
            yield t, counter_uplink(c, t, n_in, n_out, total, fcnt)
            t += HOUR


def scenario_messages(city: MobilityCity, incidents: list[Incident], start: datetime, end: datetime
                      ) -> Iterator[Message]:
    """Every poll and uplink of the scenario, in time order."""
    model = StationModel(city, incidents)
    counters = counter_messages(city, incidents, start, end)
    nxt = next(counters, None)
    t = start.timestamp()
    while t < end.timestamp():
        while nxt is not None and nxt[0] <= t:
            yield nxt[1]
            nxt = next(counters, None)
        yield from poll_messages(model, t)
        t += POLL_S
    while nxt is not None:
        yield nxt[1]
        nxt = next(counters, None)


# the demo's feed over HTTP --------------------------------------------------------------------------------------
def json_server(answer: Callable[[str], tuple[int, bytes]], host: str = "127.0.0.1", port: int = 0
                ) -> ThreadingHTTPServer:
    """A small HTTP server answering GET /<name>.json with `answer(name)` → (status, JSON bytes)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, raw = answer(self.path.strip("/").removesuffix(".json"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


class FeedServer:
    """The simulated system's GBFS feed at http://host:port/gbfs.json, in the wall clock's present."""

    def __init__(self, city: MobilityCity, incidents: list[Incident] = (), host: str = "127.0.0.1", port: int = 0,
                 version: str = "2.3") -> None:
        self.model = StationModel(city, list(incidents))
        self.version = version
        self.server = json_server(self._answer, host, port)
        self.thread = threading.Thread(target=self.server.serve_forever, name="gbfs-sim", daemon=True)

    def _answer(self, name: str) -> tuple[int, bytes]:
        body = self.document(name)
        return (404, b"") if body is None else (200, msgspec.json.encode(body))

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/gbfs.json"

    def document(self, name: str) -> dict[str, Any] | None:
        import time

        now = time.time()
        base = self.url.removesuffix("gbfs.json")
        if name == "gbfs":
            feeds = [{"name": n, "url": f"{base}{n}.json"} for n in ("system_information", "station_information",
                                                                     "station_status")]
            v3 = self.version.startswith("3")
            return {"last_updated": _rfc3339(now) if v3 else int(now), "ttl": int(POLL_S), "version": self.version,
                    "data": {"feeds": feeds} if v3 else {"fr": {"feeds": feeds}}}
        if name == "system_information":
            v3 = self.version.startswith("3")
            return {"last_updated": _rfc3339(now) if v3 else int(now), "ttl": 3600, "version": self.version,
                    "data": {"system_id": self.model.city.system, "timezone": "Europe/Paris",
                             **({"languages": ["fr"], "name": [{"text": "Vélomagg (simulé)", "language": "fr"}],
                                 "opening_hours": "24/7", "feed_contact_email": "data@example.org"} if v3 else
                                {"language": "fr", "name": "Vélomagg (simulé)"})}}
        if name == "station_information":
            return self.model.information_doc(now, self.version)
        if name == "station_status":
            return self.model.status_doc(now, self.version)
        return None

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
