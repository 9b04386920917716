"""The city's tenant: read-only entities built from clapas's store, through the data charter.

`CitySource` implements `clapas.api.ngsi_ld.source.EntitySource`. It reads the store only through
`clapas.api.charter.CallerView`: a device the caller may not read gives no entity at all (its id answers as unknown,
so that nobody learns an EUI is somebody's meter), a quantity the caller may not read gives no attribute, a personal
meter's history starts at its current occupant. A query's page costs its page: `listing` gives the entities' heads
from the registry and the latest values' quantities (no entity built), `build` only the page's entities. Histories
are answered from the store's hourly and daily rollups when the requested aggregation fits them (`avg`, `min`,
`max`, `sum`, `totalCount` over PT1H or P1D periods that start on bucket boundaries), from the raw rows otherwise.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clapas.api.charter import ALL_DEVICES, CallerView
from clapas.api.ngsi_ld.city import aggregates as zone_consumption
from clapas.api.ngsi_ld.city import entities, models
from clapas.api.ngsi_ld.city.context import compact, expand
from clapas.api.ngsi_ld.source import Entity, Hint, TemporalHint
from clapas.charter import OPEN, Caller
from clapas.charter.aggregates import AggregateSettings
from clapas.charter.classes import Classifier
from clapas.indices.flood import FloodSettings
from clapas.store.base import Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
ROLLUP_METHODS = frozenset({"avg", "min", "max", "sum", "totalCount"})
ROLLUPS = {3600.0: "1h", 86400.0: "1d"}
FEW_DEVICES = 50  # named devices read one by one below this, else the registry in one read
MAX_RAW_ROWS = 1_000_000  # one attribute's raw history in one answer (a year of 30-s uplinks)


def _of_types(rows: list[dict[str, Any]], types: set[str] | None, euis: set[str] | None) -> list[dict[str, Any]]:
    """The devices among `rows` that may give an entity of these type names and EUIs (None: any)."""
    if euis is not None:
        rows = [d for d in rows if d["eui"] in euis]
    if types is not None and not types & {models.DEVICE, models.DEVICE_MODEL, "NoiseLevelObserved"}:
        kinds = {k for t in types for k in models.MODEL_BY_TYPE[t].kinds}
        rows = [d for d in rows if (d.get("kind") or "") in kinds]
    return rows


def _types_of(hint_types: frozenset[str] | None) -> set[str] | None:
    """The city's type names among a hint's expanded type IRIs (None: any)."""
    if hint_types is None:
        return None
    return {compact(t) for t in hint_types} & ({m.type for m in models.MODELS} | {models.DEVICE, models.DEVICE_MODEL})


class CitySource:
    """The city's entities as one caller may read them (`caller`: a charter `Caller`, or the request's
    `CallerView`, whose counts then feed the audit log)."""

    writable = False

    def __init__(self, store: Store, classes: Classifier | None = None, flood: FloodSettings | None = None,
                 noise_period_s: float = 3600.0, aggregates: AggregateSettings | None = None,
                 timezone: str | None = None) -> None:
        self.store = store
        self.classes = classes or Classifier()
        self.flood = flood or FloodSettings()
        self.noise_period_s = noise_period_s
        self.aggregates = aggregates or AggregateSettings()
        self.timezone = timezone or getattr(store, "timezone", "Europe/Paris")

    def view(self, caller: Caller | CallerView) -> CallerView:
        return caller if isinstance(caller, CallerView) else CallerView(self.store, caller, self.classes)

    # entities ----------------------------------------------------------------------------------------
    def _facts(self, view: CallerView, d: dict[str, Any], zones: dict[str, dict[str, Any]],
               latest: list[dict[str, Any]]) -> entities.DeviceFacts:
        """`latest`: the device's latest values as the caller may read them (`CallerView.latest_many`)."""
        facts = entities.DeviceFacts(d, self.classes.device(d), latest, zones.get(d.get("zone") or ""),
                                     extra={"noise_period_s": self.noise_period_s})
        if (d.get("kind") or "") == "water_level":
            facts.level_thresholds = self.flood.level_thresholds(d["eui"], d.get("tags") or {})
        return facts

    def _all_facts(self, view: CallerView, devices: list[dict[str, Any]],
                   zones: dict[str, dict[str, Any]], flows: bool = True) -> list[entities.DeviceFacts]:
        """Each device's facts (latest values and occupants in one bulk read each), and with `flows` the meters'
        flows of the last week in one bulk read (their min/max, for WaterConsumptionObserved)."""
        latest = view.latest_many(devices)
        out = [self._facts(view, d, zones, latest.get(d["eui"], [])) for d in devices]
        meters = {f.device["eui"]: f for f in out if (f.device.get("kind") or "") in ("water_meter", "district_meter")
                  and any(r["quantity"] == "water.flow" for r in f.latest)} if flows else {}
        if meters:
            end = datetime.now(UTC)
            rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in view.series("water.flow", end - WEEK, end, euis=sorted(meters)):
                rows[r["eui"]].append(r)
            for eui, f in meters.items():
                values = [r["value"] for r in view.current(f.device, rows.get(eui, []))]
                if values:
                    f.week_flow = (min(values), max(values))
        return out

    def _devices(self, view: CallerView, types: set[str] | None, euis: set[str] | None) -> list[dict[str, Any]]:
        """Readable devices that may give an entity of `types`, by EUI; those the caller may not read that would
        have been are noted in `view.withheld_devices` (the audit log counts them)."""
        if euis is not None and len(euis) <= FEW_DEVICES:  # a retrieval: those devices, not the registry
            named = [d for d in (view.device(e) for e in sorted(euis)) if d is not None]
            rows = [d for d in named if view.readable(d)]
            for d in rows:
                view.serve(d)
            hidden = [d for d in named if not view.readable(d)]
        else:
            rows = view.devices(limit=ALL_DEVICES)
            hidden = view.unreadable_known()
        view.withheld_devices.update(d["eui"] for d in _of_types(hidden, types, euis))
        return sorted(_of_types(rows, types, euis), key=lambda d: d["eui"])

    def _narrowed(self, hint: Hint) -> tuple[set[str] | None, set[str] | None, set[str] | None] | None:
        """(type names, ids, device EUIs) a hint narrows to (None: any); None when no city type can match."""
        types = _types_of(hint.types)
        if types is not None and not types:
            return None
        ids = set(hint.ids) if hint.ids is not None else None
        euis = None
        if ids is not None:
            parsed = [entities.parse_id(i) for i in ids]
            if not any(p and p[0] == models.DEVICE_MODEL for p in parsed):
                euis = {p[1] for p in parsed if p is not None}
        return types, ids, euis

    def _zones_wanted(self, types: set[str] | None, ids: set[str] | None) -> bool:
        return (types is None or zone_consumption.TYPE in types) and (ids is None or any(
            (p := entities.parse_id(i)) is not None and p[1].startswith(zone_consumption.PREFIX) for i in ids))

    def _zone_entities(self, zones: dict[str, dict[str, Any]]) -> list[Entity]:
        return zone_consumption.zone_entities(self.store, self.aggregates, self.timezone, zones)

    def _entities(self, view: CallerView, hint: Hint) -> list[Entity]:
        narrowed = self._narrowed(hint)
        if narrowed is None:
            return []
        types, ids, euis = narrowed
        zones = {z["id"]: z for z in view.zones()}
        out: list[Entity] = []
        by_model: dict[str, list[entities.DeviceFacts]] = defaultdict(list)
        for facts in self._all_facts(view, self._devices(view, types, euis), zones):
            d = facts.device
            out.extend(entities.entities_of(facts))
            by_model[entities.model_key(d)].append(facts)
        if types is None or models.DEVICE_MODEL in types:
            out.extend(entities.device_model_entity(key, group, OPEN) for key, group in by_model.items())
        if self._zones_wanted(types, ids):
            out.extend(self._zone_entities(zones))
        if types is not None:
            wanted = {expand(t) for t in types}
            out = [e for e in out if e["type"] in wanted]
        if ids is not None:
            out = [e for e in out if e["id"] in ids]
        if hint.attrs is not None:
            out = [e for e in out if hint.attrs & e.keys()]
        return sorted(out, key=lambda e: e["id"])

    def candidates(self, caller: Caller | CallerView, hint: Hint) -> Iterator[Entity]:
        yield from self._entities(self.view(caller), hint)

    # pages: the heads first, then only the page's entities ------------------------------------------------
    def listing(self, caller: Caller | CallerView, hint: Hint) -> list[Entity]:
        """The heads (`id`, `type`, `scope`) of the entities `candidates` gives for the hint's types and ids, by
        id, without building them: the registry of the devices the caller may read (withheld ones are neither
        listed nor counted), their latest values' quantities when observation types are wanted (a device gives
        an observation entity only with values of its model, `entities.observation_types`), their profiles for
        DeviceModel, the published zone aggregates. `hint.attrs` and `hint.bbox` are not applied: the protocol
        layer's filters need the entities for those."""
        view = self.view(caller)
        narrowed = self._narrowed(hint)
        if narrowed is None:
            return []
        types, ids, euis = narrowed
        devices = self._devices(view, types, euis)
        observed = types is None or bool(types - {models.DEVICE, models.DEVICE_MODEL})
        latest = view.latest_many(devices) if observed else {}
        heads: list[Entity] = []
        for d in devices:
            scope = [f"/{view.device_class(d)}"]
            names = [models.DEVICE, *(entities.observation_types(str(d.get("kind") or ""), latest.get(d["eui"], []))
                                      if observed else ())]
            heads.extend({"id": entities.entity_id(t, d["eui"]), "type": expand(t), "scope": scope}
                         for t in names if types is None or t in types)
        if types is None or models.DEVICE_MODEL in types:
            heads.extend({"id": entities.entity_id(models.DEVICE_MODEL, key), "type": expand(models.DEVICE_MODEL),
                          "scope": [f"/{OPEN}"]} for key in {entities.model_key(d) for d in devices})
        if self._zones_wanted(types, ids):
            heads.extend({k: e[k] for k in ("id", "type", "scope")}
                         for e in self._zone_entities({z["id"]: z for z in view.zones()}))
        if ids is not None:
            heads = [h for h in heads if h["id"] in ids]
        return sorted(heads, key=lambda h: h["id"])

    def build(self, caller: Caller | CallerView, ids: Sequence[str]) -> list[Entity]:
        """The entities of these ids (a page of `listing`), in that order, built alone: the page's devices' latest
        values (and the meters' week of flows only when a WaterConsumptionObserved is asked), a DeviceModel's
        devices, the zone aggregates only when a zone's entity is asked. An id the caller may not read, or that
        gives no entity, is left out."""
        view = self.view(caller)
        wanted: dict[str, set[str]] = defaultdict(set)  # EUI → type names
        model_keys: set[str] = set()
        zone_ids: set[str] = set()
        for i in ids:
            parsed = entities.parse_id(i)
            if parsed is None:
                continue
            type_, key = parsed
            if type_ == models.DEVICE_MODEL:
                model_keys.add(key)
            elif key.startswith(zone_consumption.PREFIX):
                zone_ids.add(i)
            else:
                wanted[key].add(type_)
        named = view.named_devices(sorted(wanted)) if wanted else {}
        devices = [d for d in named.values() if d is not None and view.readable(d)]
        view.withheld_devices.update(d["eui"] for d in named.values() if d is not None and not view.readable(d))
        zones = {z["id"]: z for z in view.zones()}
        flows = any("WaterConsumptionObserved" in wanted[d["eui"]] for d in devices)
        built: dict[str, Entity] = {}
        for f in self._all_facts(view, devices, zones, flows=flows):
            view.serve(f.device)
            built.update((e["id"], e) for e in entities.entities_of(f, wanted[f.device["eui"]]))
        if model_keys:
            group = [d for d in view.devices(limit=ALL_DEVICES) if entities.model_key(d) in model_keys]
            by_model: dict[str, list[entities.DeviceFacts]] = defaultdict(list)
            for f in self._all_facts(view, group, zones, flows=False):
                by_model[entities.model_key(f.device)].append(f)
            built.update((e["id"], e) for e in (entities.device_model_entity(k, g, OPEN) for k, g in by_model.items()))
        if zone_ids:
            built.update((e["id"], e) for e in self._zone_entities(zones) if e["id"] in zone_ids)
        return [built[i] for i in ids if i in built]

    def values(self, caller: Caller | CallerView, ids: Sequence[str], attrs: frozenset[str]) -> dict[str, Entity]:
        """The attributes `attrs` (expanded) of these listed entities, by id, as the caller may read them: what an
        `orderBy` sorts a whole listing by before its page is built. The devices' registry rows and latest values
        in one read each (the meters' week of flows only when minFlow or maxFlow is asked), no entity built for a
        measured attribute (`entities.attributes_of`); a derived attribute builds its device's entity from those
        same facts, a DeviceModel or zone aggregate is built (`build`)."""
        view = self.view(caller)
        wanted: dict[str, set[str]] = defaultdict(set)  # EUI → type names
        others: list[str] = []
        for i in ids:
            parsed = entities.parse_id(i)
            if parsed is None or parsed[0] == models.DEVICE_MODEL or parsed[1].startswith(zone_consumption.PREFIX):
                others.append(i)
            else:
                wanted[parsed[1]].add(parsed[0])
        named = view.named_devices(sorted(wanted)) if wanted else {}
        devices = [d for d in named.values() if d is not None and view.readable(d)]
        flows = bool(attrs & {expand("minFlow"), expand("maxFlow")})
        out: dict[str, Entity] = {}
        for f in self._all_facts(view, devices, {z["id"]: z for z in view.zones()}, flows=flows):
            for t in wanted[f.device["eui"]]:
                got = entities.attributes_of(t, f, attrs)
                if got is None:
                    got = next((e for e in entities.entities_of(f, {t})), {})
                out[entities.entity_id(t, f.device["eui"])] = {k: v for k, v in got.items() if k in attrs}
        for e in self.build(view, others) if others else ():
            out[e["id"]] = {k: v for k, v in e.items() if k in attrs}
        return out

    def get(self, caller: Caller | CallerView, entity_id: str) -> Entity | None:
        if entities.parse_id(entity_id) is None:
            return None
        found = self.build(caller, [entity_id])
        return found[0] if found else None

    def of_devices(self, caller: Caller | CallerView, euis: Sequence[str],
                   types: frozenset[str] | None = None) -> list[Entity]:
        """The observation and Device entities of these devices that the caller may read (the matching engine's
        read: the devices a batch changed), by id; `types` (expanded): only devices that may give one of them."""
        if not euis:
            return []
        view = self.view(caller)
        names = _types_of(types)
        devices = self._devices(view, names, set(euis))
        out = [e for f in self._all_facts(view, devices, {z["id"]: z for z in view.zones()})
               for e in entities.entities_of(f)]
        return sorted(out, key=lambda e: e["id"])

    def served(self, caller: Caller | CallerView, found: Sequence[Entity]) -> CallerView:
        """What a read served, for the charter's audit log (as the REST routes record it): a fresh view counting
        the devices behind the entities answered — their most restrictive class and the EUIs of the restricted
        and personal ones. Only the answer counts: candidates a filter or the page left out were not served. With
        the request's view (`caller`), `withheld` is the number of devices its reads left out because the caller
        may not read them (`_devices`, `build`, `history`): devices whose entities the query would otherwise have
        considered (of the kinds its types name, of the ids it names), not entities — a withheld device's entities
        are never built, so nobody counts them."""
        view = CallerView(self.store, caller.caller if isinstance(caller, CallerView) else caller, self.classes)
        if isinstance(caller, CallerView):  # what the request's reads withheld (its listing, its retrievals)
            view.withheld = len(caller.withheld_devices)
        euis = sorted({p[1] for e in found if (p := entities.parse_id(e["id"])) is not None
                       and p[0] != models.DEVICE_MODEL and not p[1].startswith(zone_consumption.PREFIX)})
        for d in view.named_devices(euis).values():
            if d is not None:
                view.serve(d)
        return view

    # histories ---------------------------------------------------------------------------------------
    def history(self, caller: Caller | CallerView, entity_ids: Sequence[str],
                query: TemporalHint) -> Iterator[Entity]:
        view = self.view(caller)
        for entity_id in entity_ids:
            parsed = entities.parse_id(entity_id)
            if parsed is None:
                continue
            type_, eui = parsed
            attrs = _history_attrs(type_)
            d = view.readable_device(eui) if attrs else None
            if d is None and attrs and (hidden := view.device(eui)) is not None:
                view.withheld_devices.add(hidden["eui"])
            if d is None or not _gives(view, d, type_):
                continue
            view.serve(d)
            e: Entity = {"id": entity_id, "type": expand(type_), "scope": [f"/{self.classes.device(d)}"]}
            for a in attrs:
                iri = expand(a.term)
                if (query.attrs is not None and iri not in query.attrs) or not view.quantity_readable(d, a.quantity):
                    continue
                got = self._attr_history(view, d, a, query)
                if got:
                    e[iri] = got
            yield e

    def _attr_history(self, view: CallerView, d: dict[str, Any], a: models.Attr,
                      query: TemporalHint) -> Any:
        start, end = query.start or EPOCH, query.end or datetime.now(UTC)
        since = view.occupant_since(d)
        if since is not None and since > start:
            start = since
        if start >= end:
            return None
        if query.aggr_methods:
            return self._aggregated(d, a, start, end, query)
        rows = self.store.observations(d["eui"], a.quantity, start, end, "raw", MAX_RAW_ROWS)
        if query.last_n:
            rows = rows[-query.last_n:]
        return [entities.prop(entities.converted(a, r["value"]), unit=a.unit, at=r["time"]) for r in rows]

    def _aggregated(self, d: dict[str, Any], a: models.Attr, start: datetime, end: datetime,
                    query: TemporalHint) -> dict[str, Any] | None:
        resolution = self._rollup_for(query, start)
        if resolution is not None:
            buckets = [(r["time"], r["count"], r["mean"] * r["count"], r["min"], r["max"], None)
                       for r in self.store.observations(d["eui"], a.quantity, start, end, resolution)]
            step = timedelta(seconds=query.aggr_period_s or 0)
        else:
            rows = self.store.observations(d["eui"], a.quantity, start, end, "raw", MAX_RAW_ROWS)
            if not rows:
                return None
            step = timedelta(seconds=query.aggr_period_s) if query.aggr_period_s else end - start
            groups: dict[datetime, list[float]] = defaultdict(list)
            for r in rows:
                groups[start + step * ((r["time"] - start) // step)].append(r["value"])
            buckets = [(t, len(v), math.fsum(v), min(v), max(v), v) for t, v in sorted(groups.items())]
        if not buckets:
            return None
        out: dict[str, Any] = {"type": "Property"}
        for method in query.aggr_methods:
            out[method] = [[_method(method, a, b), entities.iso(b[0]), entities.iso(min(b[0] + step, end))]
                           for b in buckets]
        return out

    def _rollup_for(self, query: TemporalHint, start: datetime) -> str | None:
        """The rollup an aggregation can be read from, or None: raw rows then."""
        resolution = ROLLUPS.get(float(query.aggr_period_s or 0))
        if resolution is None or not set(query.aggr_methods) <= ROLLUP_METHODS:
            return None
        local = start.astimezone(ZoneInfo(getattr(self.store, "timezone", "UTC")))
        aligned = local.minute == 0 and local.second == 0 and local.microsecond == 0
        return resolution if aligned and (resolution == "1h" or local.hour == 0) else None


def _method(method: str, a: models.Attr, b: tuple[Any, ...]) -> float | int | None:
    """One aggregated value of a bucket (time, count, sum, min, max, raw values or None)."""
    _, count, total, low, high, raw = b
    if method == "totalCount":
        return count
    if method == "avg":
        return entities.converted(a, total / count) if count else None
    if method == "sum":
        return entities.converted(a, total)
    if method == "min":
        return entities.converted(a, low)
    if method == "max":
        return entities.converted(a, high)
    if raw is None:
        return None
    if method == "distinctCount":
        return len(set(raw))
    if method == "stddev":
        return entities.converted(a, statistics.pstdev(raw)) if len(raw) > 1 else 0.0
    if method == "sumsq":
        return math.fsum(entities.converted(a, v) ** 2 for v in raw)
    return None


def _history_attrs(type_: str) -> tuple[models.Attr, ...]:
    if type_ == models.DEVICE:
        return (models.Attr("batteryLevel", "battery", "1"),)
    m = models.MODEL_BY_TYPE.get(type_)
    return m.attrs if m else ()


def _gives(view: CallerView, d: dict[str, Any], type_: str) -> bool:
    """Whether a device gives an entity of this type (its kind says, or for a model by quantity what it reports:
    then its latest values are read)."""
    if type_ == models.DEVICE:
        return True
    m = models.MODEL_BY_TYPE.get(type_)
    if m is None:
        return False
    if (d.get("kind") or "") in m.kinds:
        return True
    return bool(m.by_quantity) and bool({r["quantity"] for r in view.latest(d)} & set(m.by_quantity))
