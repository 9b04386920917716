"""Polling one GBFS system as its feed asks: `ttl` bounded to [min_interval_s, max_interval_s], exponential backoff
on errors, a status anyone can read (`status()`), and every poll handed to the pipeline as messages.

Each fetched file is validated first (`schema.errors`): a refused file is journaled raw and quarantined with the
validator's message, and the previous state is kept (the station list stays the last valid one; a refused
station_status gives no samples for that poll, so the stations' state becomes `unknown` after the hold cap, never
`empty`). station_information goes into the registry: stations are devices of kind `bike_station`, their zone
found from their position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import msgspec

from clapas.connectors.gbfs import messages, normalize
from clapas.connectors.gbfs.normalize import FeedError, StationInfo
from clapas.model import Device, Message
from clapas.registry.zones import zone_at

log = logging.getLogger("clapas.gbfs")

MAX_FILE_BYTES = 32 * 1024 * 1024  # a 5,000-station status file is about 2 MB


class GbfsSystemSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One `[[gbfs]]` system of the config."""

    id: str  # the system's name in clapas (device tags, API), e.g. "velomagg"
    url: str  # the auto-discovery file, e.g. https://gbfs.theta.fifteen.eu/gbfs/montpellier/gbfs.json (§6.2)
    language: str = ""  # v2.x feeds per language / v3.0 localized names: this one if present, else the first
    # `ttl` is obeyed within these bounds (§6.1: ttl 0 = "always refresh"; status "in no case more than 5 minutes
    # out-of-date", so never polled less often than that); the lower bound is politeness to the operator [U]
    min_interval_s: float = 60.0
    max_interval_s: float = 300.0
    info_max_interval_s: float = 3600.0  # station_information and gbfs.json re-read at least hourly [U]
    timeout_s: float = 10.0
    backoff_base_s: float = 30.0  # after the n-th failure in a row: base × 2^(n−1), capped [U]
    backoff_max_s: float = 900.0
    # cross-file checks (§6.5): a station's last_reported older than this while the file is fresh is stale (the
    # §6.1 five minutes); this far in the future, clock skew [U]
    stale_report_s: float = normalize.STALE_REPORT_S
    future_tolerance_s: float = normalize.FUTURE_TOLERANCE_S


class Sink(Protocol):
    def submit_many(self, messages: list[Message], mark: int | None = None) -> None: ...


class RegistryStore(Protocol):
    def upsert_devices(self, devices: list[Device]) -> int: ...
    def zones(self) -> list[dict[str, Any]]: ...
    def devices(self, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]: ...


class Refused(Exception):
    """A file the poll could not use (already journaled)."""


class GbfsPoller:
    def __init__(self, settings: GbfsSystemSettings, sink: Sink, store: RegistryStore | None = None,
                 client: httpx.AsyncClient | None = None, on_registry: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.s = settings
        self.sink = sink
        self.store = store
        self.client = client
        self.on_registry = on_registry
        self.clock = clock
        self.feeds: dict[str, str] = {}
        self.info: dict[str, StationInfo] | None = None
        self.zones: dict[str, str] = {}  # station id → zone id
        self._zone_rows: list[dict[str, Any]] | None = None  # the registry's zones, re-read with station_information
        self.vehicle_zones: set[str] | None = None  # zones that held free-floating vehicles, registered as devices
        self.info_due = 0.0
        self.failures = 0
        self.state = "starting"
        self.last_error = ""
        self.last_poll: float | None = None
        self.last_success: float | None = None
        self.next_poll: float | None = None
        self.ttl: int | None = None
        self.version = ""
        self.polls = 0
        self.quarantined = 0

    def status(self) -> dict[str, Any]:
        """The system's polling state (ok, failing, starting), for logs and health."""
        return {"system": self.s.id, "url": self.s.url, "state": self.state, "failures": self.failures,
                "last_error": self.last_error, "last_poll": self.last_poll, "last_success": self.last_success,
                "next_poll": self.next_poll, "ttl": self.ttl, "version": self.version, "polls": self.polls,
                "quarantined": self.quarantined, "stations": len(self.info or {})}

    # fetching ------------------------------------------------------------------------------------------
    async def _get(self, name: str, url: str, at: datetime) -> dict[str, Any]:
        assert self.client is not None
        r = await self.client.get(url, timeout=self.s.timeout_s)
        r.raise_for_status()
        raw = r.content
        if len(raw) > MAX_FILE_BYTES:
            raise FeedError(f"{name}: {len(raw)} bytes exceeds {MAX_FILE_BYTES}")
        problems = messages.file_problems(name, raw)
        if problems:
            self.quarantined += 1
            await asyncio.to_thread(self.sink.submit_many, [messages.file_message(self.s.id, name, raw, at)])
            raise Refused(f"{name} refused by the GBFS schema: {problems[0]}"
                          + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        return msgspec.json.decode(raw)

    async def _refresh_info(self, at: datetime, now: float) -> None:
        doc = await self._get("gbfs", self.s.url, at)
        self.feeds = normalize.feed_urls(doc, self.s.language)
        self.version = normalize.header(doc).version
        ttl = normalize.header(doc).ttl
        if "station_information" in self.feeds:
            info_doc = await self._get("station_information", self.feeds["station_information"], at)
            info = {i.station_id: i for i in normalize.station_information(info_doc, self.s.language)}
            ttl = min(ttl, normalize.header(info_doc).ttl) if ttl else normalize.header(info_doc).ttl
            await asyncio.to_thread(self._register, info)  # the store is synchronous: off the event loop
            self.info = info
        self.info_due = now + min(max(ttl, self.s.min_interval_s), self.s.info_max_interval_s)

    def _per_zone(self, positions: list[tuple[float, float]]) -> dict[str, int]:
        """Free-floating vehicles available per zone (those outside every zone under "")."""
        if self._zone_rows is None:
            self._zone_rows = self.store.zones() if self.store is not None else []
        if self.vehicle_zones is None:  # the zones registered before a restart still read 0 once emptied
            self.vehicle_zones = {(d.get("tags") or {}).get("vehicle_zone", "")
                                  for d in (self.store.devices(kind="bikeshare_zone", limit=100_000)
                                            if self.store is not None else [])
                                  if (d.get("tags") or {}).get("gbfs_system") == self.s.id}
        out: dict[str, int] = dict.fromkeys(self.vehicle_zones, 0)  # a zone emptied since reads 0
        for lat, lon in positions:
            z = zone_at(self._zone_rows, lat, lon)
            out[z] = out.get(z, 0) + 1
        return out

    def _register(self, info: dict[str, StationInfo]) -> None:
        zones = self._zone_rows = self.store.zones() if self.store is not None else []
        self.zones = {sid: zone_at(zones, i.lat, i.lon) if i.lat is not None and i.lon is not None else ""
                      for sid, i in info.items()}
        if self.store is None:
            return
        devices = []
        for sid, i in info.items():
            tags = {"gbfs_system": self.s.id, "station_id": sid}
            if i.capacity is not None:
                tags["capacity"] = str(i.capacity)
            if i.address:
                tags["address"] = i.address
            devices.append(Device(eui=messages.station_eui(self.s.id, sid), name=i.name or sid, kind="bike_station",
                                  profile=messages.PROFILE, zone=self.zones[sid], lat=i.lat, lon=i.lon, tags=tags))
        self.store.upsert_devices(devices)
        if self.on_registry is not None:
            self.on_registry()

    def _register_vehicle_zones(self, zones: set[str]) -> None:
        """A device per zone for its free-floating vehicles' history (kind `bikeshare_zone`, in that zone)."""
        if self.store is not None:
            self.store.upsert_devices([
                Device(eui=messages.zone_eui(self.s.id, z), name=f"GBFS {self.s.id} · {z or 'outside zones'}",
                       kind="bikeshare_zone", profile=messages.PROFILE, zone=z,
                       tags={"gbfs_system": self.s.id, "vehicle_zone": z}) for z in sorted(zones)])
            if self.on_registry is not None:
                self.on_registry()
        self.vehicle_zones = (self.vehicle_zones or set()) | zones

    # one poll ------------------------------------------------------------------------------------------
    async def poll_once(self) -> float:
        """Poll the system once; returns the seconds to wait before the next poll."""
        now = self.clock()
        at = datetime.fromtimestamp(now, UTC)
        self.last_poll = now
        self.polls += 1
        out: list[Message] = []
        try:
            if not self.feeds or now >= self.info_due:
                await self._refresh_info(at, now)
            if "station_status" not in self.feeds:
                raise FeedError("gbfs.json lists no station_status feed")
            doc = await self._get("station_status", self.feeds["station_status"], at)
            head = normalize.header(doc)
            samples = normalize.station_status(doc)
            free = by_zone = None
            name = "vehicle_status" if "vehicle_status" in self.feeds else "free_bike_status"
            if name in self.feeds:
                positions = normalize.vehicles_free(await self._get(name, self.feeds[name], at))
                free, by_zone = len(positions), self._per_zone(positions)
        except (Refused, FeedError, httpx.HTTPError, msgspec.DecodeError, OSError) as e:
            return await self._failed(at, e)
        self.ttl = head.ttl
        out += messages.station_messages(self.s.id, at, head.last_updated, samples, self.info or {}, self.zones)
        out += messages.flag_messages(self.s.id, at, normalize.cross_checks(
            samples, self.info, head.last_updated, now, self.s.stale_report_s, self.s.future_tolerance_s))
        out.append(messages.system_message(self.s.id, at, True, head.last_updated, free, len(samples), by_zone))
        if by_zone is not None:
            new = set(by_zone) - (self.vehicle_zones or set())
            if new:
                await asyncio.to_thread(self._register_vehicle_zones, new)
            out += messages.zone_messages(self.s.id, at, by_zone)
        await asyncio.to_thread(self.sink.submit_many, out)  # waits when the writer is behind (backpressure)
        self.failures, self.state, self.last_error, self.last_success = 0, "ok", "", now
        delay = min(max(float(head.ttl), self.s.min_interval_s), self.s.max_interval_s)
        self.next_poll = now + delay
        return delay

    async def _failed(self, at: datetime, e: Exception) -> float:
        self.failures += 1
        self.state = "failing"
        self.last_error = f"{type(e).__name__}: {e}"[:500] if not isinstance(e, Refused) else str(e)[:500]
        log.warning("GBFS %s: poll failed (%d in a row): %s", self.s.id, self.failures, self.last_error)
        await asyncio.to_thread(self.sink.submit_many, [messages.system_message(self.s.id, at, False),
                                                        messages.log_message(self.s.id, at, self.last_error)])
        delay = min(self.s.backoff_base_s * 2 ** (self.failures - 1), self.s.backoff_max_s)
        self.next_poll = at.timestamp() + delay
        return delay

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set."""
        own = self.client is None
        if own:
            self.client = httpx.AsyncClient(follow_redirects=True, headers={"User-Agent": "clapas-gbfs"})
        try:
            while not stop.is_set():
                delay = await self.poll_once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            if own:
                await self.client.aclose()
