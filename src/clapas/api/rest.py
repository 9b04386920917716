"""REST routes, read-only over the store: devices, their latest values and histories, quantities, zones, journal.

The API reads the store and nothing else (never the pipeline's state), so it answers the same whether the process
ingests or only serves — except /healthz and /metrics, which in a process that ingests answer from the writer's
counters and the spool, so that they stay fast while the store is down. Every route declares the class it serves
(`serves`), and what a caller may not read is left out or refused per row (`clapas.api.charter`): personal devices
are counted per zone, not listed. Times go out in UTC (RFC 3339, `Z`); times coming in are ISO 8601, and a time
without an offset is taken as UTC. Daily buckets are the city's days (they start at local midnight).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response

from clapas import __version__
from clapas.api import MAX_INT64, JSONResponse
from clapas.api.access import serves
from clapas.api.charter import CallerView, refused
from clapas.api.errors import ApiError, errors
from clapas.charter import CLASSES, JOURNAL_READ, METRICS_READ, OPEN, PERSONAL, Caller
from clapas.charter.register import register
from clapas.model import QUANTITIES, QUANTITY_BY_KEY, normalize_eui
from clapas.store.base import STATUSES, Store

DEFAULT_SPAN = timedelta(hours=24)
MAX_LATEST_DEVICES = 200  # latest values of a page of devices: one store query for the page


async def get_store(request: Request) -> Store:
    return request.app.state.store


StoreDep = Annotated[Store, Depends(get_store)]

health = APIRouter(tags=["health"])
api = APIRouter(prefix="/api/v1", default_response_class=JSONResponse)


# helpers ------------------------------------------------------------------------------------------------
def _utc(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC) if v.tzinfo else v.replace(tzinfo=UTC)
    return v


_DEVICE_TIMES = ("first_seen", "last_seen")  # the datetime fields of `Store.devices` rows


def _utc_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _utc(v) for k, v in row.items()}


def _eui(raw: str) -> str:
    """DevEUIs in any usual spelling (upper case, dashes, colons); other ids are kept as given, lower case."""
    try:
        return normalize_eui(raw)
    except ValueError:
        return raw.strip().lower()


def _time(raw: str | None, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    text = raw.strip().replace(" ", "+")  # an unencoded '+' of an offset arrives as a space
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(422, f"query parameter {name!r}: not an ISO 8601 time: {raw!r}") from None
    return _utc(t)


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """Defaults: the last 24 h; with only `from`, the 24 h after it (never past now)."""
    now = datetime.now(UTC)
    if end is None:
        end = min(start + DEFAULT_SPAN, now) if start is not None else now
    return (start if start is not None else end - DEFAULT_SPAN), end


def _readable_or_404(view: CallerView, eui: str) -> dict[str, Any]:
    """The device of a device's own route: 404 when unknown, 403 when the caller may not read its class."""
    device = view.require_device(eui)
    if device is None:
        raise ApiError(404, f"unknown device {eui!r}")
    return device


def _latest(view: CallerView, device: dict[str, Any]) -> list[dict[str, Any]]:
    return [_utc_row(r) for r in view.latest(device)]


def _latest_many(view: CallerView, devices: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {e: [_utc_row(r) for r in rows] for e, rows in view.latest_many(devices).items()}


# Every class a route may serve to one caller or another; listings filter per row (`derived`).
Open = Annotated[Caller, serves(OPEN)]
Mixed = Annotated[Caller, serves(PERSONAL, derived=True)]


# health and metrics -------------------------------------------------------------------------------------
# Both answer from memory when the process ingests (the writer's counters and its view of the store, the spool's
# size): never a journal scan, never a wait for a store that is down (issue 9). `async`: no worker thread is needed,
# so they answer even when every worker thread waits for the store. Without a pipeline (a process that only
# serves) the store is asked, in a thread.
def _ingest_health(request: Request) -> tuple[list[str], dict[str, Any]]:
    """Reasons to say degraded, and what /healthz tells of the pipeline and the spool."""
    pipeline = request.app.state.pipeline
    spool = getattr(request.app.state, "spool", None)
    reasons: list[str] = []
    out: dict[str, Any] = {}
    problem = pipeline.store_problem()
    if problem is not None:
        reasons.append(problem)
        since = pipeline.store_down_since or pipeline.writing_since or time.time()
        out["store_down_since"] = datetime.fromtimestamp(since, UTC)
    out["pending"] = pipeline.pending
    if spool is not None:
        out["spool"] = spool.stats()
        if out["spool"]["full"]:
            reasons.append(f"spool full ({out['spool']['bytes']} bytes): reading from the broker is paused")
    return reasons, out


@health.get("/healthz", summary="Is the store reachable", response_class=JSONResponse, responses=errors(503))
async def healthz(request: Request, store: StoreDep, caller: Open) -> Response:
    """The accounting of everything received; 503 with `status: degraded` and the `reasons` when the store cannot be
    written (what is received meanwhile is spooled) or the spool is full."""
    settings = request.app.state.settings
    pipeline = request.app.state.pipeline
    body: dict[str, Any] = {"status": "ok", "version": __version__, "store": store.url.split(":", 1)[0]}
    if pipeline is None:
        try:
            counts = await asyncio.to_thread(store.counts)
        except Exception as e:
            raise ApiError(503, f"store unreachable: {type(e).__name__}: {e}") from None
        body.update(counts=counts, ingest={"chirpstack_http": False})
        return JSONResponse(body)
    reasons, ingest = _ingest_health(request)
    body.update(counts=dict(pipeline.counts),
                ingest={"chirpstack_http": bool(settings.chirpstack.http_ingest), **ingest})
    if reasons:
        body.update(status="degraded", reason="; ".join(reasons), reasons=reasons)
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


@health.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, store: StoreDep,
                  caller: Annotated[Caller, serves(OPEN, scope=METRICS_READ)]) -> Response:
    """The pipeline's counters (clapas_messages_total, clapas_observations_total, clapas_batch_latency_seconds),
    gauges of what the store holds and whether the writer can write it (clapas_store_up), and the spool's size and
    age (clapas_spool_bytes, clapas_spool_messages, clapas_spool_oldest_seconds). Labels are sources, events and
    statuses, never a device: the metrics are open data (tests/api/test_charter_routes.py checks the label names)."""
    pipeline = request.app.state.pipeline
    if pipeline is None:
        gauges = await asyncio.to_thread(_store_gauges, store)
    else:
        gauges = _pipeline_gauges(pipeline, getattr(request.app.state, "spool", None))
    text = generate_latest(REGISTRY) + generate_latest(gauges)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def _count_gauges(reg: CollectorRegistry, counts: dict[str, int]) -> None:
    journal = Gauge("clapas_store_messages", "Journaled messages in the store, by status", ["status"],
                    registry=reg)
    for status in STATUSES:
        journal.labels(status).set(counts.get(status, 0))
    Gauge("clapas_store_observations", "Observation rows in the store", registry=reg).set(
        counts.get("observations", 0))
    Gauge("clapas_store_devices", "Devices known to the store", registry=reg).set(counts.get("devices", 0))


def _pipeline_gauges(pipeline: Any, spool: Any) -> CollectorRegistry:
    """From the writer's counters and the spool: nothing is asked of the store."""
    reg = CollectorRegistry()
    Gauge("clapas_store_up", "1 while the writer can write the store (its last try succeeded)",
          registry=reg).set(0 if pipeline.store_problem() else 1)
    _count_gauges(reg, dict(pipeline.counts))
    Gauge("clapas_pending_messages", "Messages received and not yet committed", registry=reg).set(pipeline.pending)
    if spool is not None:
        Gauge("clapas_spool_bytes", "Bytes in the spool (received, on local disk, until committed)",
              registry=reg).set(spool.bytes)
        Gauge("clapas_spool_max_bytes", "The spool's limit (then reading from the broker pauses)",
              registry=reg).set(spool.max_bytes)
        Gauge("clapas_spool_messages", "Spooled messages not yet committed", registry=reg).set(spool.pending)
        Gauge("clapas_spool_oldest_seconds", "Age of the oldest spooled message not yet committed",
              registry=reg).set(spool.oldest_age_s())
    return reg


def _store_gauges(store: Store) -> CollectorRegistry:
    """A throwaway registry per scrape: nothing global ties a store instance to the process."""
    reg = CollectorRegistry()
    up = Gauge("clapas_store_up", "1 when the store answered this scrape", registry=reg)
    try:
        counts = store.counts()
    except Exception:
        up.set(0)
        return reg
    up.set(1)
    _count_gauges(reg, counts)
    return reg


# devices --------------------------------------------------------------------------------------------------
@api.get("/devices", tags=["devices"], summary="List devices", responses=errors(422))
def list_devices(
    request: Request,
    store: StoreDep,
    caller: Mixed,
    kind: Annotated[str | None, Query(description="only devices of this kind, e.g. water_meter")] = None,
    zone: Annotated[str | None, Query(description="only devices in this zone id")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    latest: Annotated[bool, Query(description=f"add each device's latest values (limit ≤ {MAX_LATEST_DEVICES})")]
    = False,
) -> Response:
    """Devices by EUI, with registry fields, their class and last state (last_seen, last_rssi, last_snr…).
    Devices whose class the caller may not read are not listed: `withheld` counts them per zone and kind (over the
    whole selection); `limit` and `offset` page what the caller sees."""
    if latest and limit > MAX_LATEST_DEVICES:
        raise ApiError(422, f"query parameter 'limit': at most {MAX_LATEST_DEVICES} with latest=true")
    view = CallerView.of(request, caller)
    if all(caller.may_read(c) for c in CLASSES):
        served, withheld = view.device_listing(store.devices(kind=kind or None, zone=zone or None, limit=limit,
                                                             offset=offset))
    else:  # pages of what this caller sees: the classes decided per group of devices, the store pages the readable
        groups, withheld = view.readable_groups(store.device_groups(zones=[zone] if zone else None, kind=kind or None))
        served, _ = view.device_listing(store.devices(kind=kind or None, zone=zone or None, limit=limit,
                                                      offset=offset, groups=groups))
    for d in served:
        view.serve(d, d["class"])
        for k in _DEVICE_TIMES:  # the listing's own copies: only its time fields need converting
            d[k] = _utc(d[k])
    devices = served
    if latest:
        values = _latest_many(view, served)
        for d in devices:
            d["latest"] = values[d["eui"]]
    view.report(request, len(devices))
    return JSONResponse({"devices": devices, "withheld": withheld, "limit": limit, "offset": offset})


@api.get("/latest", tags=["devices"], summary="Latest values of several devices", responses=errors(422))
def latest_values(
    request: Request,
    caller: Mixed,
    device: Annotated[str, Query(description=f"comma-separated EUIs (at most {MAX_LATEST_DEVICES})")],
) -> Response:
    """The last value of each quantity, for each named device (unknown devices get an empty list). Devices the
    caller may not read are left out and counted in `withheld`."""
    euis = list(dict.fromkeys(_eui(e) for e in device.split(",") if e.strip()))
    if not euis:
        raise ApiError(422, "query parameter 'device': name at least one device EUI")
    if len(euis) > MAX_LATEST_DEVICES:
        raise ApiError(422, f"query parameter 'device': at most {MAX_LATEST_DEVICES} devices")
    view = CallerView.of(request, caller)
    found = view.named_devices(euis)
    readable = [d for d in found.values() if d is not None and view.readable(d)]
    values = _latest_many(view, readable)
    out: dict[str, list[dict[str, Any]]] = {}
    withheld = 0
    for e, d in found.items():
        if d is None:
            out[e] = []
        elif e in values:
            view.serve(d)
            out[e] = values[e]
        else:
            withheld += 1
    view.report(request, sum(map(len, out.values())))
    return JSONResponse({"latest": out, "withheld": withheld})


@api.get("/devices/{eui}", tags=["devices"], summary="One device", responses=errors(404, 422))
def get_device(
    request: Request,
    store: StoreDep,
    caller: Mixed,
    eui: str,
    events: Annotated[int, Query(ge=0, le=1000, description="how many recent events to include")] = 20,
) -> Response:
    """A device with its class, its latest value of each quantity and its recent join/ack/log/location events
    (which carry the device's class). 403 when the caller may not read the device's class."""
    key = _eui(eui)
    view = CallerView.of(request, caller)
    found = _readable_or_404(view, key)
    device = {**_utc_row(found), "class": view.classes.device(found)}
    device["latest"] = _latest(view, found)
    device["events"] = [_utc_row(e) for e in view.current(found, store.device_events(key, limit=events))] \
        if events else []
    view.serve(found)
    view.report(request, 1 + len(device["latest"]) + len(device["events"]))
    return JSONResponse(device)


@api.get("/devices/{eui}/observations", tags=["devices"], summary="History of one quantity of a device",
         responses=errors(404, 422))
def get_observations(
    request: Request,
    store: StoreDep,
    caller: Mixed,
    eui: str,
    quantity: Annotated[str | None, Query(description="quantity key; optional when the device reports one")]
    = None,
    from_: Annotated[str | None, Query(alias="from", description="ISO 8601 start (default: `to` − 24 h)",
                                       json_schema_extra={"format": "date-time"})] = None,
    to: Annotated[str | None, Query(description="ISO 8601 end, exclusive (default: now)",
                                    json_schema_extra={"format": "date-time"})] = None,
    resolution: Annotated[Literal["raw", "1h", "1d"], Query(description="raw values or hourly/daily buckets")]
    = "raw",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 20_000,
) -> Response:
    """Raw points `{time, value}` or buckets `{time, mean, min, max, count}` in [from, to). 403 when the caller
    may not read the device's class (a dwelling's meter: personal) or this quantity's."""
    key = _eui(eui)
    view = CallerView.of(request, caller)
    found = _readable_or_404(view, key)
    start, end = _window(_time(from_, "from"), _time(to, "to"))
    if start >= end:
        raise ApiError(422, "query parameter 'from': must be before 'to'")
    reported = [r["quantity"] for r in view.latest(found)]
    if quantity is None:
        if len(reported) != 1:
            listing = ", ".join(reported) or "nothing yet"
            raise ApiError(422, f"query parameter 'quantity' is required: device {key} reports {listing}")
        quantity = reported[0]
    q = QUANTITY_BY_KEY.get(quantity)
    if q is None:
        raise ApiError(404, f"unknown quantity {quantity!r} (see /api/v1/quantities)")
    if not view.quantity_readable(found, quantity):
        raise refused(view.classes.value(found, quantity), caller)
    if quantity not in reported:
        listing = ", ".join(reported) or "nothing yet"
        raise ApiError(404, f"device {key} has no {quantity} observations (it reports {listing})")
    since = view.occupant_since(found)  # a home's history starts with its current occupant
    first = max(start, since) if since is not None else start
    points = [] if first >= end else \
        [_utc_row(p) for p in store.observations(key, quantity, first, end, resolution, limit=limit)]
    view.serve(found, view.classes.value(found, quantity))
    view.report(request, len(points))
    return JSONResponse({
        "device": key, "quantity": quantity, "unit": q.unit, "label": q.label, "resolution": resolution,
        "from": start, "to": end, "truncated": len(points) >= limit, "points": points,
    })


# catalogue and zones --------------------------------------------------------------------------------------
@api.get("/quantities", tags=["catalogue"], summary="The quantity catalogue")
def list_quantities(
    store: StoreDep,
    caller: Open,
    in_use: Annotated[bool, Query(description="only quantities some device reports")] = False,
) -> Response:
    """Every quantity key with its UCUM unit, label, and how many devices report it."""
    used = store.quantities_in_use()
    rows = [{"key": q.key, "unit": q.unit, "label": q.label, "devices": used.get(q.key, 0)} for q in QUANTITIES]
    if in_use:
        rows = [r for r in rows if r["devices"]]
    return JSONResponse({"quantities": rows})


@api.get("/zones", tags=["catalogue"], summary="Zones (GeoJSON)", responses=errors(422))
def list_zones(
    store: StoreDep,
    caller: Open,
    format: Annotated[Literal["geojson", "json"], Query(description="GeoJSON FeatureCollection or a plain list")]
    = "geojson",
) -> Response:
    """Districts, DMAs, parks, museum rooms… with their geometry and number of devices."""
    zones = store.zones()
    if format == "json":
        return JSONResponse({"zones": zones})
    features = [{
        "type": "Feature", "id": z["id"], "geometry": z.get("geometry"),
        "properties": {**(z.get("properties") or {}), "id": z["id"], "name": z.get("name", ""),
                       "kind": z.get("kind", ""), "parent": z.get("parent", ""), "devices": z.get("devices", 0)},
    } for z in zones]
    return JSONResponse({"type": "FeatureCollection", "features": features},
                        media_type="application/geo+json")


@api.get("/me", tags=["catalogue"], summary="Who the API takes the caller for")
def whoami(caller: Annotated[Caller, serves(OPEN, derived=True)]) -> Response:
    """The caller's identity as the access layer resolved it: actor, how (anonymous, key, oidc, gateway), role
    and scopes. The dashboard reads it to offer only what the caller may do."""
    return JSONResponse({"actor": caller.actor, "via": caller.via, "role": caller.role,
                         "scopes": sorted(caller.scopes)})


@api.get("/register", tags=["catalogue"], summary="The data charter's transparency register")
def transparency_register(request: Request, caller: Open) -> Response:
    """Per kind of device: its class, whether it is personal data, why the city collects it, how long it is kept
    and the roles that may read it (and whether anonymous callers may); generated from the live configuration."""
    return JSONResponse(register(request.app.state.settings))


# journal ----------------------------------------------------------------------------------------------------
@api.get("/uplinks", tags=["journal"], summary="Journaled messages (quarantine listing)", responses=errors(422))
def list_uplinks(
    request: Request,
    store: StoreDep,
    caller: Annotated[Caller, serves(PERSONAL, scope=JOURNAL_READ, derived=True)],
    status: Annotated[Literal["stored", "quarantined", "duplicate"] | None, Query()] = None,
    device: Annotated[str | None, Query(description="only this device's messages")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
) -> Response:
    """Every message as received, newest first, with its status and, when quarantined, the reason. Raw frames
    hold readings: each is at least restricted, and personal for a personal device; the frames the caller may
    not read are left out and counted in `withheld`."""
    view = CallerView.of(request, caller)
    key = _eui(device) if device else None
    if key is not None and view.device(key) is not None and view.readable_device(key) is None:
        rows: list[dict[str, Any]] = []  # a withheld device's frames: as for a device that sent nothing
    else:
        rows = view.frames(store.uplinks(status=status, dev_eui=key, limit=limit, offset=offset))
    view.report(request, len(rows))
    return JSONResponse({"uplinks": [_utc_row(r) for r in rows], "withheld": view.withheld, "limit": limit,
                         "offset": offset})


@api.get("/counts", tags=["journal"], summary="Accounting of everything received")
def counts(store: StoreDep, caller: Open) -> Response:
    """Messages stored / quarantined / duplicate, observation rows and devices."""
    return JSONResponse(store.counts())
