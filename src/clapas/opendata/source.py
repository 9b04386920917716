"""The rows of one export, as one caller may have them: the data charter applied exactly as the API applies it.

An export reads the store through `ExportView`, the API's `CallerView` with one more rule: rows that are not open
also need the `export:bulk` scope (a partner or an operator may page through restricted data with their read scope,
but taking it whole is a bulk export, §8.5 roles). So: open rows go to everyone; restricted rows to keys with
`restricted:read` and `export:bulk`; personal readings only with `personal:read` and `export:bulk`, from the current
occupant's period on; everyone else gets personal data only as the published aggregates (`water-consumption`).
Devices the caller may not read are left out and counted (`withheld`); an export made only of withheld devices is
refused (403), as the API's reports are. What was served (rows, class, devices) is what the audit log records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clapas.api.charter import ALL_DEVICES, CallerView
from clapas.charter import EXPORT_BULK, OPEN, Caller
from clapas.charter.aggregates import ZoneTree
from clapas.charter.classes import Classifier
from clapas.model import QUANTITIES, QUANTITY_BY_ID
from clapas.opendata import formats as f
from clapas.opendata.datasets import AGGREGATE, COUNTS, DEVICES, HEALTH_QUANTITIES, OBSERVATIONS, ZONES, Dataset
from clapas.store.base import Store

OBSERVATION_COLUMNS: list[f.Column] = [
    ("time", f.TIME), ("device", f.STR), ("device_name", f.STR), ("kind", f.STR), ("zone", f.STR),
    ("lat", f.FLOAT), ("lon", f.FLOAT), ("quantity", f.STR), ("value", f.FLOAT), ("unit", f.STR)]
DEVICE_COLUMNS: list[f.Column] = [
    ("device", f.STR), ("name", f.STR), ("kind", f.STR), ("zone", f.STR), ("lat", f.FLOAT), ("lon", f.FLOAT),
    ("class", f.STR), ("first_seen", f.TIME), ("last_seen", f.TIME)]
ZONE_COLUMNS: list[f.Column] = [("zone", f.STR), ("name", f.STR), ("kind", f.STR), ("parent", f.STR),
                                ("geometry", f.GEOMETRY)]
AGGREGATE_COLUMNS: list[f.Column] = [
    ("zone", f.STR), ("name", f.STR), ("kind", f.STR), ("parent", f.STR), ("period", f.STR), ("complete", f.BOOL),
    ("status", f.STR), ("reason", f.STR), ("volume_m3", f.FLOAT), ("meter_days", f.INT),
    ("mean_per_meter_day_m3", f.FLOAT), ("meters", f.INT)]


# The measure file of the national counting schema (§6.3): start inclusive, end exclusive, count empty without data.
COUNT_COLUMNS: list[f.Column] = [("channel_id", f.STR), ("counter_id", f.STR), ("start_datetime", f.STR),
                                 ("end_datetime", f.STR), ("count", f.FLOAT)]
COUNT_STEP = timedelta(hours=1)  # the schema's example time_step (3600 s), Eco-Compteur's hourly channels
# Channels of a counter: its directions (counter.in / counter.out) or one indistinct channel (counter.count).
DIRECTIONS = (("counter.in", "IN"), ("counter.out", "OUT"), ("counter.count", "INDISTINCT"))


class UnknownZone(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class ExportView(CallerView):
    """`CallerView` for bulk exports: a class other than open also needs `export:bulk`."""

    def may(self, data_class: str) -> bool:
        return super().may(data_class) and (data_class == OPEN or self.caller.can(EXPORT_BULK))


@dataclass
class Export:
    """One export under way: its columns, its rows chunk by chunk, and what it served so far."""

    dataset: Dataset
    columns: list[f.Column]
    view: ExportView
    start: datetime
    end: datetime
    rows: int = 0
    progress: float = 0.0  # share of the period covered so far (0–1)
    _chunks: Iterator[list[tuple[Any, ...]]] | None = field(default=None, repr=False)

    def chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        for c in self._chunks or iter(()):
            self.rows += len(c)
            yield c
        self.progress = 1.0


def _subtree(store: Store, zone: str | None) -> set[str] | None:
    if not zone:
        return None
    tree = ZoneTree((z["id"], z.get("parent") or "") for z in store.zones())
    if zone not in tree.parent:
        raise UnknownZone(f"unknown zone {zone!r} (see /api/v1/zones)")
    return set(tree.subtree(zone))


def _devices(view: ExportView, kinds: tuple[str, ...], zones: set[str] | None) -> list[dict[str, Any]]:
    """The dataset's devices in the zones, the caller's readable ones (the others are counted as withheld)."""
    rows: list[dict[str, Any]] = []
    for kind in kinds or (None,):
        rows += view.store.devices(kind=kind, limit=ALL_DEVICES)
    if zones is not None:
        rows = [d for d in rows if (d.get("zone") or "") in zones]
    view._remember(rows)
    out = [d for d in rows if view.readable(d)]
    view.withheld += len(rows) - len(out)
    return out


def export(store: Store, caller: Caller, classes: Classifier, dataset: Dataset, *, start: datetime, end: datetime,
           zone: str | None = None, settings: Any = None, chunk_rows: int = 10_000) -> Export:
    """Prepare an export (the registry read and the charter's decisions); its rows come from `Export.chunks`.
    Raises UnknownZone, and the API's 401/403 when the caller may read none of the dataset's devices."""
    view = ExportView(store, caller, classes)
    zones = _subtree(store, zone)
    if dataset.type == OBSERVATIONS:
        ex = Export(dataset, OBSERVATION_COLUMNS, view, start, end)
        ex._chunks = _observations(ex, zones, chunk_rows)
    elif dataset.type == DEVICES:
        ex = Export(dataset, DEVICE_COLUMNS, view, start, end)
        ex._chunks = _registry(ex, zones, chunk_rows)
    elif dataset.type == ZONES:
        ex = Export(dataset, ZONE_COLUMNS, view, start, end)
        ex._chunks = iter([[(z["id"], z["name"], z["kind"], z["parent"] or "", z["geometry"])
                            for z in store.zones() if zones is None or z["id"] in zones]])
    elif dataset.type == COUNTS:
        ex = Export(dataset, COUNT_COLUMNS, view, start, end)
        ex._chunks = _counts(ex, zones, chunk_rows, getattr(settings, "timezone", "Europe/Paris") or "Europe/Paris")
    elif dataset.type == AGGREGATE:
        ex = Export(dataset, AGGREGATE_COLUMNS, view, start, end)
        ex._chunks = iter([_aggregate(store, settings, start, end, zone)])  # a few rows per zone and day
    else:  # pragma: no cover - datasets are built from the five types
        raise ValueError(f"dataset type {dataset.type!r}")
    return ex


def _observations(ex: Export, zones: set[str] | None, chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    view, ds = ex.view, ex.dataset
    devices = _devices(view, ds.kinds, zones)
    view.refuse_if_nothing_readable(f"the dataset {ds.id!r}")
    wanted = set(ds.quantities) if ds.quantities else {q.key for q in QUANTITIES} - set(HEALTH_QUANTITIES)
    allowed: dict[str, set[int]] = {}
    since: dict[str, datetime | None] = {}
    for d in devices:
        allowed[d["eui"]] = {q.id for q in QUANTITIES if q.key in wanted and view.quantity_readable(d, q.key)}
        since[d["eui"]] = view.occupant_since(d)
        view.serve(d)
    qids = sorted(set().union(*allowed.values())) if allowed else []
    by_eui = {d["eui"]: d for d in devices}
    return _observation_rows(ex, by_eui, allowed, since, qids, chunk_rows)


def _observation_rows(ex: Export, by_eui: dict[str, dict[str, Any]], allowed: dict[str, set[int]],
                      since: dict[str, datetime | None], qids: list[int],
                      chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    if not by_eui or not qids:
        return
    span = (ex.end - ex.start).total_seconds() or 1.0
    for chunk in ex.view.store.export_observations(sorted(by_eui), ex.start, ex.end, quantity_ids=qids,
                                                   chunk_rows=chunk_rows):
        out = []
        for r in chunk:
            eui, qid = r["eui"], r["quantity_id"]
            if qid not in allowed[eui]:
                continue
            first = since[eui]
            if first is not None and r["time"] < first:  # the previous occupant's history is never served
                continue
            d, q = by_eui[eui], QUANTITY_BY_ID[qid]
            out.append((r["time"], eui, d.get("name") or "", d.get("kind") or "", d.get("zone") or "",
                        d.get("lat"), d.get("lon"), q.key, r["value"], q.unit))
        ex.progress = min(1.0, (chunk[-1]["time"] - ex.start).total_seconds() / span)
        if out:
            yield out


def _registry(ex: Export, zones: set[str] | None, chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """The readable devices, read now (what is withheld is known before the response starts)."""
    view = ex.view
    devices = _devices(view, ex.dataset.kinds, zones)
    for d in devices:
        view.serve(d)
    return _registry_rows(view, devices, chunk_rows)


def _registry_rows(view: ExportView, devices: list[dict[str, Any]],
                   chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    for i in range(0, len(devices), chunk_rows):
        yield [(d["eui"], d.get("name") or "", d.get("kind") or "", d.get("zone") or "", d.get("lat"), d.get("lon"),
                view.classes.device(d), d.get("first_seen"), d.get("last_seen")) for d in devices[i:i + chunk_rows]]


def _aggregate(store: Store, settings: Any, start: datetime, end: datetime,
               zone: str | None) -> list[tuple[Any, ...]]:
    """The published daily cells of the local days of [start, end) (computed now: its refusals come before the
    response starts)."""
    from clapas.api.aggregates import consumption

    local = ZoneInfo(getattr(settings, "timezone", "Europe/Paris") or "Europe/Paris")
    first = start.astimezone(local).date().isoformat()
    last = (end.astimezone(local) - timedelta(microseconds=1)).date() + timedelta(days=1)
    body = consumption(store, settings, first, last.isoformat(), "1d", zone)
    return [(c["zone"] or "", c["name"], c["kind"], c.get("parent") or "", c["period"], c["complete"], c["status"],
            c.get("reason") or "", c.get("volume_m3"), c.get("meter_days"), c.get("mean_per_meter_day_m3"),
            c.get("meters")) for c in body["cells"]]


def period(since: datetime | None, until: datetime | None, default_days: int,
           now: datetime | None = None) -> tuple[datetime, datetime]:
    """[since, until): by default the `default_days` before now."""
    end = until or (now or datetime.now(UTC))
    return since or end - timedelta(days=default_days), end


def _counts(ex: Export, zones: set[str] | None, chunk_rows: int, tz: str) -> Iterator[list[tuple[Any, ...]]]:
    """The counters' channels, known now (from each counter's latest values); their hourly slots stream."""
    from clapas.model import QUANTITY_BY_KEY

    view, ds = ex.view, ex.dataset
    devices = _devices(view, ds.kinds, zones)
    view.refuse_if_nothing_readable(f"the dataset {ds.id!r}")
    channels: dict[tuple[str, int], str] = {}  # (EUI, quantity id) → channel id
    for d in devices:
        reported = {r["quantity"] for r in view.store.latest(d["eui"])}
        directions = [(q, c) for q, c in DIRECTIONS[:2] if q in reported] or \
            [(q, c) for q, c in DIRECTIONS[2:] if q in reported]
        for q, c in directions:
            if view.quantity_readable(d, q):
                channels[(d["eui"], QUANTITY_BY_KEY[q].id)] = f"{d['eui']}-{c}"
        view.serve(d)
    return _count_rows(ex, channels, chunk_rows, ZoneInfo(tz))


def _slot(t: datetime) -> datetime:
    """The hourly slot a reading counts in: the one where the period it covers ends (a counter's uplink carries the
    passages since its previous one; hourly counters send at the slot's end) [U: design]."""
    t = t.astimezone(UTC) - timedelta(microseconds=1)
    return t.replace(minute=0, second=0, microsecond=0)


def _count_rows(ex: Export, channels: dict[tuple[str, int], str], chunk_rows: int,
                tz: ZoneInfo) -> Iterator[list[tuple[Any, ...]]]:
    if not channels:
        return
    first = ex.start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if first < ex.start:
        first += COUNT_STEP
    order = sorted(channels.items(), key=lambda kv: kv[1])
    span = (ex.end - ex.start).total_seconds() or 1.0
    out: list[tuple[Any, ...]] = []
    slot, sums = first, {}

    def close(upto: datetime) -> Iterator[list[tuple[Any, ...]]]:
        """Rows of every slot before `upto` (the current one with its sums, later ones without data)."""
        nonlocal slot, sums, out
        while slot < upto and slot + COUNT_STEP <= ex.end:
            a, b = slot.astimezone(tz).isoformat(), (slot + COUNT_STEP).astimezone(tz).isoformat()
            for (eui, qid), channel in order:
                v = sums.get((eui, qid))
                out.append((channel, eui, a, b, None if v is None else (int(v) if v == int(v) else v)))
            slot, sums = slot + COUNT_STEP, {}
            if len(out) >= chunk_rows:
                yield out
                out = []

    keys = sorted({eui for eui, _ in channels})
    qids = sorted({q for _, q in channels})
    for chunk in ex.view.store.export_observations(keys, first + timedelta(microseconds=1),
                                                   ex.end + timedelta(microseconds=1), quantity_ids=qids,
                                                   chunk_rows=chunk_rows):
        for r in chunk:
            key = (r["eui"], r["quantity_id"])
            if key not in channels:
                continue
            s = _slot(r["time"])
            if s > slot:
                yield from close(s)
            if s == slot:
                sums[key] = sums.get(key, 0.0) + r["value"]
        ex.progress = min(1.0, (chunk[-1]["time"] - ex.start).total_seconds() / span)
    yield from close(ex.end)
    if out:
        yield out
