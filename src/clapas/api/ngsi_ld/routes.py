"""The read routes of `/ngsi-ld/v1/` (ETSI GS CIM 009 §6.4–6.5, 6.23, 6.25–6.28, 6.33): tenant-blind, over
`EntitySource`s; the writes are in `writes.py`, the temporal API in `temporal_routes.py` (mounted after this one:
`POST /entityOperations/query` here must win over `/entityOperations/{operation}` there).

Every route first negotiates (406 before anything else, then 415), rejects parameters it does not know (400
InvalidRequest, §6.3.20), resolves the tenant (404 NonexistentTenant) and the request's @context, then reads the
tenant's source and applies every filter itself (`selection.py`): a source's candidates are only a superset.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from clapas.api.access import serves
from clapas.api.ngsi_ld import negotiation as neg
from clapas.api.ngsi_ld.common import (
    QUERY_PARAMS,
    READ,
    RETRIEVE_PARAMS,
    audited,
    page_links,
    paging,
    query_params,
    state,
    tenant_headers,
    types_of,
    uri,
    viewed,
)
from clapas.api.ngsi_ld.context import Context
from clapas.api.ngsi_ld.errors import bad_request, not_found
from clapas.api.ngsi_ld.query import Predicate, parse_types
from clapas.api.ngsi_ld.sandbox import now_text
from clapas.api.ngsi_ld.selection import joined, matching, paged, represent, select
from clapas.api.ngsi_ld.source import Entity, Hint
from clapas.charter import OPEN, Caller

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])


@router.get("/entities/{entityId}", summary="Retrieve an entity (§6.5.3.1)")
def retrieve_entity(request: Request, entityId: str, caller: READ) -> Response:
    st = state(request)
    media = neg.accepted(request, allow_geo=True)
    p = query_params(request, RETRIEVE_PARAMS)
    uri(entityId, "entity id")
    src = st.tenants.source(request)
    caller = viewed(request, caller)
    ctx = neg.request_context(request, st.resolver)
    sel = select({k: v for k, v in p.items() if k in ("attrs", "pick", "omit", "type")}, ctx)
    e = src.get(caller, entityId)
    if e is None or (not sel.match(e) and "type" in p):
        raise not_found(f"no entity {entityId}")
    bodies = joined([e], [represent(e, sel, ctx, p, media)], sel, request, caller, ctx, p, media)
    body: Any = bodies if len(bodies) > 1 else bodies[0]
    audited(request, src, caller, [e])
    return neg.respond(body, media, ctx, request, headers=tenant_headers(request))


@router.get("/entities", summary="Query entities (§6.4.3.1)")
def query_entities(request: Request, caller: READ) -> Response:
    st = state(request)
    media = neg.accepted(request, allow_geo=True)
    p = query_params(request, QUERY_PARAMS)
    ctx = neg.request_context(request, st.resolver)
    limit, offset, count = paging(p, st.settings)
    caller = viewed(request, caller)
    entities, total, sel = matching(request, caller, p, ctx, limit, offset, count)
    page = joined(entities, [represent(e, sel, ctx, p, media) for e in entities], sel, request, caller, ctx, p,
                   media)
    audited(request, st.tenants.source(request), caller, entities)
    headers = tenant_headers(request)
    if count:
        headers["NGSILD-Results-Count"] = str(total)
    body: Any = {"type": "FeatureCollection", "features": page} if media == neg.GEO_JSON else page
    return neg.respond(body, media, ctx, request, headers=headers,
                       links=page_links(request, limit, offset, total, len(entities)))


def _all(request: Request, caller: Caller) -> list[Entity]:
    return list(state(request).tenants.source(request).candidates(caller, Hint()))


def _attr_names(e: Entity) -> list[str]:
    return [k for k in e if k not in ("id", "type", "scope", "createdAt", "modifiedAt", "@context")]


def _attr_types(e: Entity, name: str) -> set[str]:
    a = e.get(name)
    return {i.get("type", "Property") for i in (a if isinstance(a, list) else [a]) if isinstance(i, dict)}


def _discovery(request: Request) -> tuple[Context, dict[str, str], str]:
    st = state(request)
    media = neg.accepted(request)
    p = query_params(request, {"details", "local"})
    if p.get("details", "false") not in ("true", "false"):
        raise bad_request("details must be true or false")
    return neg.request_context(request, st.resolver), p, media


@router.get("/types", summary="Retrieve available entity types (§6.25.3.1)")
def list_types(request: Request, caller: READ) -> Response:
    ctx, p, media = _discovery(request)
    entities = _all(request, caller)
    by_type: dict[str, set[str]] = {}
    for e in entities:
        for t in types_of(e):
            by_type.setdefault(t, set()).update(_attr_names(e))
    body = _listing(p, ctx, "EntityTypeList", "typeList", by_type, lambda: [
        {"id": t, "type": "EntityType", "typeName": ctx.compact(t),
         "attributeNames": sorted(ctx.compact(a) for a in attrs)} for t, attrs in sorted(by_type.items())])
    return neg.respond(body, media, ctx, request, headers=tenant_headers(request))


def _listing(p: dict[str, str], ctx: Context, kind: str, member: str, iris: Iterable[str],
             details: Callable[[], list[dict[str, Any]]]) -> Any:
    """A discovery answer: the details of each (`details=true`), else one list object of their names."""
    if p.get("details") == "true":
        return details()
    return {"id": f"urn:ngsi-ld:{kind}:{uuid.uuid4()}", "type": kind, member: sorted(ctx.compact(i) for i in iris)}


@router.get("/types/{type}", summary="Details of an entity type (§6.26.3.1)")
def type_details(request: Request, type: str, caller: READ) -> Response:
    ctx, _, media = _discovery(request)
    iri = ctx.expand(type)
    entities = [e for e in _all(request, caller) if iri in types_of(e)]
    if not entities:
        raise not_found(f"no entity of type {type}")
    attrs: dict[str, set[str]] = {}
    for e in entities:
        for a in _attr_names(e):
            attrs.setdefault(a, set()).update(_attr_types(e, a))
    body = {"id": iri, "type": "EntityTypeInfo", "typeName": ctx.compact(iri), "entityCount": len(entities),
            "attributeDetails": [{"id": a, "type": "Attribute", "attributeName": ctx.compact(a),
                                  "attributeTypes": sorted(ts)} for a, ts in sorted(attrs.items())]}
    return neg.respond(body, media, ctx, request, headers=tenant_headers(request))


def _attribute_index(entities: list[Entity]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for e in entities:
        for a in _attr_names(e):
            info = out.setdefault(a, {"count": 0, "types": set(), "typeNames": set()})
            info["count"] += 1
            info["types"].update(_attr_types(e, a))
            info["typeNames"].update(types_of(e))
    return out


def _attribute_body(iri: str, info: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"id": iri, "type": "Attribute", "attributeName": ctx.compact(iri), "attributeCount": info["count"],
            "attributeTypes": sorted(info["types"]), "typeNames": sorted(ctx.compact(t) for t in info["typeNames"])}


@router.get("/attributes", summary="Retrieve available attributes (§6.27.3.1)")
def list_attributes(request: Request, caller: READ) -> Response:
    ctx, p, media = _discovery(request)
    index = _attribute_index(_all(request, caller))
    body = _listing(p, ctx, "AttributeList", "attributeList", index,
                    lambda: [_attribute_body(a, info, ctx) for a, info in sorted(index.items())])
    return neg.respond(body, media, ctx, request, headers=tenant_headers(request))


@router.get("/attributes/{attrId}", summary="Details of an attribute (§6.28.3.1)")
def attribute_details(request: Request, attrId: str, caller: READ) -> Response:
    ctx, _, media = _discovery(request)
    iri = ctx.expand(attrId)
    info = _attribute_index(_all(request, caller)).get(iri)
    if info is None:
        raise not_found(f"no attribute {attrId}")
    return neg.respond(_attribute_body(iri, info, ctx), media, ctx, request, headers=tenant_headers(request))


def _query_body(payload: dict[str, Any]) -> dict[str, str]:
    """A Query data type (§5.2.23) as the GET query's parameters; entity selectors OR'ed (checked below)."""
    if payload.get("type") not in ("Query", None):
        raise bad_request("the body of a POST query is a Query (type: Query)")
    p: dict[str, str] = {}
    attrs = payload.get("attrs")
    if attrs is not None:
        if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
            raise bad_request("attrs must be a list of attribute names")
        p["attrs"] = ",".join(attrs)
    for k in ("q", "scopeQ", "lang", "collation"):
        if k in payload:
            if not isinstance(payload[k], str):
                raise bad_request(f"{k} must be a string")
            p[k] = payload[k]
    order = payload.get("orderBy")  # as the GET parameter, or its items as a JSON list (the core context's @list)
    if order is not None:
        if isinstance(order, list) and order and all(isinstance(o, str) for o in order):
            order = ",".join(order)
        if not isinstance(order, str):
            raise bad_request("orderBy must be a string or a list of strings")
        p["orderBy"] = order
    geo = payload.get("geoQ")
    if geo is not None:
        if not isinstance(geo, dict):
            raise bad_request("geoQ must be an object")
        p.update({"georel": str(geo.get("georel", "")), "geometry": str(geo.get("geometry", "")),
                  "coordinates": geo["coordinates"] if isinstance(geo.get("coordinates"), str)
                  else msgspec.json.encode(geo.get("coordinates")).decode()})
        if geo.get("geoproperty"):
            p["geoproperty"] = str(geo["geoproperty"])
    return p


def _entity_infos(payload: dict[str, Any], ctx: Context) -> Predicate | None:
    infos = payload.get("entities")
    if infos is None:
        return None
    if not isinstance(infos, list) or not all(isinstance(i, dict) for i in infos):
        raise bad_request("entities must be a list of EntityInfo objects")
    preds = []
    for info in infos:
        parts: list[Predicate] = []
        if "type" in info:
            parts.append(parse_types(str(info["type"]), ctx)[0])
        if "id" in info:
            wanted = uri(str(info["id"]), "id")
            parts.append(lambda e, i=wanted: e["id"] == i)
        if "idPattern" in info:
            try:
                rx = re.compile(str(info["idPattern"]))
            except re.error as err:
                raise bad_request(f"idPattern is not a regular expression: {err}") from None
            parts.append(lambda e, rx=rx: bool(rx.search(e["id"])))
        preds.append(lambda e, ps=tuple(parts): all(x(e) for x in ps))
    return lambda e: any(x(e) for x in preds)


@router.post("/entityOperations/query", summary="Query entities by POST (§6.23.3.1)")
async def query_by_post(request: Request, caller: READ) -> Response:
    st = state(request)
    media = neg.accepted(request, allow_geo=True)
    p = query_params(request, {"limit", "offset", "count", "options", "format", "lang", "local", "geometryProperty",
                               "orderBy", "collation"})
    payload, ctx, _ = await neg.read_body(request, st.resolver)

    def run() -> Response:
        q = {**p, **_query_body(payload)}
        limit, offset, count = paging(q, st.settings)
        infos = _entity_infos(payload, ctx)
        src = st.tenants.source(request)
        view = viewed(request, caller)
        sel = select(q, ctx)
        if infos is not None:
            sel.also(infos, head=True)
        elif not any(k in q for k in ("attrs", "q", "georel", "scopeQ")):
            raise bad_request("a query needs entities, attrs, q or geoQ (§5.7.2)")
        entities, total = paged(src, view, sel, limit, offset, count)
        page = [represent(e, sel, ctx, q, media) for e in entities]
        audited(request, src, view, entities)
        headers = tenant_headers(request)
        if count:
            headers["NGSILD-Results-Count"] = str(total)
        body: Any = {"type": "FeatureCollection", "features": page} if media == neg.GEO_JSON else page
        return neg.respond(body, media, ctx, request, headers=headers)

    return await run_in_threadpool(run)


# context source identity (§5.15, v1.9) ------------------------------------------------------------------------------
_STARTED = time.monotonic()


@router.get("/info/sourceIdentity", summary="Context source identity (§5.15.1)")
def source_identity(request: Request, caller: Annotated[Caller, serves(OPEN)]) -> Response:
    """Who this context source is: an alias per tenant (stable for this host and store), its uptime, its time."""
    st = state(request)
    media = neg.accepted(request)
    query_params(request, set())
    tenant = st.tenants.name(request)
    alias = uuid.uuid5(uuid.NAMESPACE_URL, f"clapas|{socket.gethostname()}|{st.settings.store}|{tenant}")
    uptime = int(time.monotonic() - _STARTED)
    body = {"id": f"urn:ngsi-ld:ContextSourceIdentity:{alias}", "type": "ContextSourceIdentity",
            "contextSourceAlias": f"urn:ngsi-ld:ContextSource:{alias}", "contextSourceUptime": f"PT{uptime}S",
            "contextSourceTimeAt": now_text(), "contextSourceExtras": {"software": "clapas", "tenant": tenant}}
    return neg.respond(body, media, neg.request_context(request, st.resolver), request)


