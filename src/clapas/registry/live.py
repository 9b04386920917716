"""The registry as a running process holds it: one compact entry per device, shared by the pipeline and the detectors.

Why (issue 14): `Store.devices` rows are dicts of every column and of the device's last state (≈ 2.5 KB a device);
`clapas run` held them twice, in the pipeline and in the detectors, ≈ 200 MB at 80,000 devices before any data. A
`DeviceMeta` keeps only what the pipeline (decoder choice, kind, zone, position) and the detectors (subscriber
data, tags, uplink interval) read, with the strings repeated across devices (kinds, zones, profiles, tag keys and
values) stored once; the store is read a page at a time, so a reload never holds the whole registry as rows.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgspec

from clapas.store.base import Batch, DeviceSeen, Store

# devices read from the store at once on a (re)load: at 80,000 devices the process grows 90 MB, against 170 unpaged
REGISTRY_PAGE = 5_000
NO_TAGS: Mapping[str, str] = MappingProxyType({})  # the tags of a device without any (shared, read-only)


class DeviceMeta(msgspec.Struct, gc=False):
    """What the pipeline and the detectors may know about a device: registry data only, never the simulator's.
    (`gc=False`: it holds strings, numbers and a dict of strings, never a cycle; 80,000 of them are not scanned.)"""

    eui: str
    kind: str = ""
    zone: str = ""
    premises_use: str = ""
    subscriber: str = ""
    tags: Mapping[str, str] = NO_TAGS
    expected_interval_s: int | None = None  # the profile's uplink interval: how many readings make a full hour
    profile: str = ""  # the device profile's name (its settings may give the uplink interval, the decoder)
    decoder: str = ""
    lat: float | None = None
    lon: float | None = None


@dataclass(slots=True)
class ZoneMeta:
    """What detectors may know about a zone: its kind (dma, park, rural, catchment, museum_room…), its parent and the
    properties the city set on it (a room's climate class, a park's surroundings…)."""

    id: str
    kind: str = ""
    name: str = ""
    parent: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


def _word(v: Any) -> str:
    """A short string many devices share (a kind, a zone, a profile), stored once for all of them."""
    return sys.intern(v) if v else ""


class _Pool(dict[str, str]):
    """Tag values of one load, each distinct value stored once (not interned: a coordinate is one device's)."""

    def __missing__(self, v: str) -> str:
        self[v] = v
        return v

    def tags(self, tags: Mapping[str, str] | None) -> Mapping[str, str]:
        return {_word(k): self[v] if isinstance(v, str) else v for k, v in tags.items()} if tags else NO_TAGS


def meta_of_row(r: Mapping[str, Any], pool: _Pool | None = None) -> DeviceMeta:
    """A `Store.devices` row (or a dict of some of its fields) as its compact entry."""
    return DeviceMeta(
        eui=r["eui"], kind=_word(r.get("kind")), zone=_word(r.get("zone")), premises_use=_word(r.get("premises_use")),
        subscriber=r.get("subscriber") or "", tags=(pool if pool is not None else _Pool()).tags(r.get("tags")),
        expected_interval_s=r.get("expected_interval_s"), profile=_word(r.get("profile")),
        decoder=_word(r.get("decoder")), lat=r.get("lat"), lon=r.get("lon"))


def meta_of_seen(seen: DeviceSeen) -> DeviceMeta:
    """A device auto-registered from what the network server said of it (ChirpStack tags): no subscriber data."""
    return DeviceMeta(eui=seen.eui, kind=_word(seen.kind), zone=_word(seen.zone), tags=_Pool().tags(seen.tags),
                      profile=_word(seen.profile))


def _pages(store: Store) -> Iterator[list[dict[str, Any]]]:
    offset = 0
    while True:
        page = store.devices(limit=REGISTRY_PAGE, offset=offset)
        if page:
            yield page
        if len(page) < REGISTRY_PAGE:
            return
        offset += len(page)


class Registry:
    """Device and zone metadata from the store's registry, completed by what ChirpStack tags say for new devices.

    One per process, shared by the `Pipeline` and the `DetectorRunner` (and the alert sink). `reload` after the
    registry changed in the store (an import, GBFS stations) builds a new `by_eui` and swaps it in, so that a
    reader in another thread (the writer's detectors) never iterates a dict that grows under it."""

    def __init__(self, store: Store | None = None, devices: Iterable[Mapping[str, Any]] = (),
                 zones: Iterable[Mapping[str, Any]] = ()) -> None:
        self.store = store
        self.by_eui: dict[str, DeviceMeta] = {}
        self.zones: dict[str, ZoneMeta] = {}
        self.reload(devices, zones)

    def reload(self, devices: Iterable[Mapping[str, Any]] = (), zones: Iterable[Mapping[str, Any]] = ()) -> None:
        """Read (or take) the zones and devices again; entries of devices no longer listed are kept."""
        zone_rows = list(zones) or (self.store.zones() if self.store is not None else [])
        new_zones = dict(self.zones)
        for z in zone_rows:
            new_zones[z["id"]] = ZoneMeta(id=z["id"], kind=z.get("kind") or "", name=z.get("name") or "",
                                          parent=z.get("parent") or "", properties=dict(z.get("properties") or {}))
        self.zones = new_zones
        given = list(devices)
        pages = [given] if given else _pages(self.store) if self.store is not None else ()
        fresh: dict[str, DeviceMeta] = {}
        pool = _Pool()
        for page in pages:
            for r in page:
                fresh[r["eui"]] = meta_of_row(r, pool)
        # merged at the last moment (one C-level copy): a device the writer registered while the store was read stays
        self.by_eui = {**self.by_eui, **fresh}

    def get(self, eui: str, batch: Batch | None = None) -> DeviceMeta | None:
        meta = self.by_eui.get(eui)
        if meta is None and batch is not None:
            seen = batch.dev_by_eui.get(eui)
            if seen is not None:
                meta = self.add_seen(seen)
        return meta

    def add_seen(self, seen: DeviceSeen) -> DeviceMeta:
        """The entry of a device heard in a batch: its registry entry, or one from its network server's tags."""
        meta = self.by_eui.get(seen.eui)
        if meta is None:
            meta = self.by_eui[seen.eui] = meta_of_seen(seen)
        return meta

    def in_zone(self, zone: str, kind: str) -> list[DeviceMeta]:
        return [m for m in self.by_eui.values() if m.zone == zone and m.kind == kind]

    def zone_kind(self, zone: str) -> str:
        z = self.zones.get(zone)
        return z.kind if z is not None else ""

    def of_kind(self, kind: str) -> list[DeviceMeta]:
        return [m for m in self.by_eui.values() if m.kind == kind]
