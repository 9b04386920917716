"""The HTTP routes of `/ngsi-ld/v1/` (ETSI GS CIM 009 §6.4–6.7, 6.18–6.22): tenant-blind, over `EntitySource`s.

Every route first negotiates (406 before anything else, then 415), rejects parameters it does not know (400
InvalidRequest, §6.3.20), resolves the tenant (404 NonexistentTenant) and the request's @context, then reads the
tenant's source and applies every filter itself (`query.py`, `geo.py`): a source's candidates are only a superset.
Writes go only to a writable tenant (the sandbox; the city's answers 422 OperationNotSupported), through the
charter's `sandbox:write` scope. Entities and attributes carry createdAt/modifiedAt (shown with `options=sysAttrs`).
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from clapas.api.access import serves
from clapas.api.ngsi_ld import entity as ent
from clapas.api.ngsi_ld import negotiation as neg
from clapas.api.ngsi_ld import temporal as tmp
from clapas.api.ngsi_ld.context import Context
from clapas.api.ngsi_ld.errors import NgsiError, bad_request, invalid_request, not_found
from clapas.api.ngsi_ld.geo import GeoQuery, parse_geo
from clapas.api.ngsi_ld.query import Predicate, Tree, parse_projection, parse_q, parse_scope_q, parse_types
from clapas.api.ngsi_ld.sandbox import SandboxSource, now_text
from clapas.api.ngsi_ld.source import Entity, EntitySource, Hint, TemporalHint
from clapas.charter import OPEN, PERSONAL, SANDBOX_WRITE, Caller

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])

READ = Annotated[Caller, serves(PERSONAL, derived=True)]  # the city's tenant filters per caller (charter)
WRITE = Annotated[Caller, serves(OPEN, scope=SANDBOX_WRITE, write=True)]

_FILTERS = {"type", "id", "idPattern", "attrs", "q", "georel", "geometry", "coordinates", "geoproperty",
            "scopeQ", "pick", "omit", "local", "csf", "datasetId", "lang", "options", "format", "limit", "offset",
            "count", "geometryProperty", "expandValues", "joinLevel", "join", "containedBy", "entityMap",
            "orderBy", "collation"}
QUERY_PARAMS = _FILTERS
RETRIEVE_PARAMS = {"attrs", "pick", "omit", "options", "format", "lang", "geometryProperty", "datasetId", "type",
                   "local", "join", "joinLevel", "containedBy"}
TEMPORAL_PARAMS = _FILTERS | {"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods",
                              "aggrPeriodDuration"}
NULL = "urn:ngsi-ld:null"


def _state(request: Request) -> Any:
    return request.app.state.ngsi_ld


def _params(request: Request, allowed: Iterable[str]) -> dict[str, str]:
    allowed = set(allowed)
    out: dict[str, str] = {}
    for k, v in request.query_params.multi_items():
        if k not in allowed:
            raise invalid_request(f"unknown parameter {k!r}")
        out.setdefault(k, v)
    return out


def _options(p: dict[str, str]) -> set[str]:
    return {o.strip() for o in p.get("options", "").split(",") if o.strip()}


def _format(p: dict[str, str]) -> str:
    opts = _options(p)
    fmt = p.get("format")
    if fmt is not None:
        if fmt not in ("normalized", "concise", "keyValues", "simplified", "temporalValues"):
            raise bad_request(f"format {fmt!r} is not normalized, concise, keyValues or simplified")
        return "keyValues" if fmt == "simplified" else fmt
    chosen = [o for o in ("keyValues", "simplified", "concise", "normalized") if o in opts]
    if len({("keyValues" if c == "simplified" else c) for c in chosen}) > 1:
        raise bad_request("options may name only one of keyValues, concise, normalized")
    return "keyValues" if chosen and chosen[0] == "simplified" else (chosen[0] if chosen else "normalized")


def _int(p: dict[str, str], name: str, default: int | None, low: int = 0) -> int | None:
    if name not in p:
        return default
    try:
        v = int(p[name])
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if v < low:
        raise bad_request(f"{name} must be at least {low}")
    return v


def _names(text: str | None, ctx: Context) -> frozenset[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise bad_request("an empty list of attributes")
    return frozenset(ctx.expand(n) for n in names)


def _uri(value: str, what: str) -> str:
    if not ent.is_uri(value):
        raise bad_request(f"{what} {value!r} is not a URI")
    return value


# selection -------------------------------------------------------------------------------------------------------
@dataclass
class Selection:
    hint: Hint
    preds: list[Predicate]
    keep: frozenset[str] | None  # attributes shown (None: all)
    show_id: bool = True
    show_type: bool = True
    tree: Tree | None = None  # the pick / omit projection, nested for linked entities (expanded names)
    omit: bool = False

    def match(self, e: Entity) -> bool:
        return all(p(e) for p in self.preds)

    def linked(self, attr: str) -> Selection | None:
        """The selection of the entities linked by `attr` (None: the relationship is not shown)."""
        if self.tree is None:
            return Selection(Hint(), [], None)
        if attr in self.tree:
            sub = self.tree[attr]
            if sub is None:
                return None if self.omit else Selection(Hint(), [], None)
            return _selection_of(sub, self.omit)
        return Selection(Hint(), [], None) if self.omit else None


def _selection_of(tree: Tree, omit: bool) -> Selection:
    if omit:
        left_out = _Omit(k for k, v in tree.items() if v is None and k not in ("id", "type"))
        return Selection(Hint(), [], left_out, "id" not in tree or tree["id"] is not None,
                         "type" not in tree or tree["type"] is not None, tree, True)
    return Selection(Hint(), [], frozenset(k for k in tree if k not in ("id", "type")), "id" in tree,
                     "type" in tree, tree, False)


def _expanded_tree(tree: Tree, ctx: Context) -> Tree:
    return {(k if k in ("id", "type") else ctx.expand(k)): (_expanded_tree(v, ctx) if v is not None else None)
            for k, v in tree.items()}


def _projection(p: dict[str, str], ctx: Context) -> tuple[Selection, frozenset[str] | None]:
    """The projection of attrs / pick / omit, and the attributes an entity needs one of (attrs)."""
    if "pick" in p and "omit" in p:
        raise bad_request("pick and omit cannot be used together")
    if "attrs" in p and ("pick" in p or "omit" in p):
        raise bad_request("attrs cannot be used with pick or omit")
    for mode in ("pick", "omit"):
        if mode in p:
            return _selection_of(_expanded_tree(parse_projection(p[mode], mode), ctx), mode == "omit"), None
    attrs = _names(p.get("attrs"), ctx)
    return Selection(Hint(), [], attrs), attrs


class _Omit(frozenset):  # type: ignore[type-arg]
    """Attributes left out (pick's complement)."""


def select(p: dict[str, str], ctx: Context, *, entity_id: str | None = None) -> Selection:
    preds: list[Predicate] = []
    types = ids = None
    id_pattern = None
    if "type" in p:
        pred, types = parse_types(p["type"], ctx)
        preds.append(pred)
    if "id" in p:
        ids = frozenset(_uri(i.strip(), "id") for i in p["id"].split(",") if i.strip())
        preds.append(lambda e, ids=ids: e["id"] in ids)
    if entity_id is not None:
        ids = frozenset([entity_id])
    if "idPattern" in p:
        id_pattern = p["idPattern"]
        try:
            rx = re.compile(id_pattern)
        except re.error as err:
            raise bad_request(f"idPattern is not a regular expression: {err}") from None
        preds.append(lambda e, rx=rx: bool(rx.search(e["id"])))
    if "q" in p:
        preds.append(parse_q(p["q"], ctx))
    if "scopeQ" in p:
        preds.append(parse_scope_q(p["scopeQ"]))
    geo: GeoQuery | None = parse_geo(p.get("georel"), p.get("geometry"), p.get("coordinates"),
                                     p.get("geoproperty"), ctx)
    if geo is not None:
        preds.append(geo.matches)
    proj, need = _projection(p, ctx)
    if need is not None:
        preds.append(lambda e, need=need: any(a in e for a in need))
    proj.hint = Hint(types=types, ids=ids, id_pattern=id_pattern, attrs=need, bbox=geo.bbox() if geo else None)
    proj.preds = preds
    return proj


def _kept(entity: Entity, keep: frozenset[str] | None) -> Iterable[str] | None:
    if keep is None:
        return None
    if isinstance(keep, _Omit):
        return [k for k in entity if k not in keep]
    return keep


def represent(e: Entity, sel: Selection, ctx: Context, p: dict[str, str], media: str) -> dict[str, Any]:
    fmt = _format(p)
    opts = _options(p)
    body = ent.compact_entity(e, ctx, fmt, sys_attrs="sysAttrs" in opts, lang=p.get("lang"),
                              keep=_kept(e, sel.keep))
    if media == neg.GEO_JSON:
        gprop = ctx.expand(p.get("geometryProperty", "location"))
        g = e.get(gprop)
        g = (g[0] if isinstance(g, list) else g) if g else None
        props = {k: v for k, v in body.items() if k != "id"}
        return {"id": e["id"], "type": "Feature", "geometry": g.get("value") if isinstance(g, dict) else None,
                "properties": props}
    if not sel.show_id:
        body.pop("id", None)
    if not sel.show_type:
        body.pop("type", None)
    return body


# linked entity retrieval (§4.5.23, join / joinLevel) --------------------------------------------------------------
def _join(p: dict[str, str]) -> tuple[str | None, int]:
    join = p.get("join")
    if join not in (None, "inline", "flat", "@none"):
        raise bad_request(f"join must be inline, flat or @none, not {join!r}")
    level = _int(p, "joinLevel", 1, low=1)
    assert level is not None
    return (None if join == "@none" else join), level


def _objects(e: Entity) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(attribute IRI, relationship instance, linked ids) of an entity's relationships."""
    out = []
    for name, attr in e.items():
        if name in ("id", "type", "scope", "createdAt", "modifiedAt"):
            continue
        for inst in _list(attr):
            if isinstance(inst, dict) and inst.get("type") in (ent.RELATIONSHIP, ent.LISTREL):
                obj = inst.get("object", inst.get("objectList"))
                ids = [o for o in _list(obj) if isinstance(o, str)]
                if ids:
                    out.append((name, inst, ids))
    return out


def _inline(e: Entity, body: dict[str, Any], sel: Selection, src: EntitySource, caller: Caller, ctx: Context,
            p: dict[str, str], level: int, seen: frozenset[str]) -> None:
    """Each Relationship of `body` with its linked entities (`entity`; the entity itself in keyValues)."""
    kv = _format(p) == "keyValues"
    for name, inst, ids in _objects(e):
        term = ctx.compact(name)
        sub = sel.linked(name)
        if term not in body or sub is None:
            continue
        linked = []
        for oid in ids:
            target = src.get(caller, oid) if oid not in seen else None
            if target is None:
                continue
            tb = represent(target, sub, ctx, p, neg.JSON)
            if level > 1:
                _inline(target, tb, sub, src, caller, ctx, p, level - 1, seen | {oid})
            linked.append(tb)
        if not linked:
            continue
        value: Any = linked[0] if len(linked) == 1 else linked
        if kv:
            body[term] = value
        elif isinstance(body.get(term), dict):
            body[term]["entity"] = value
        elif isinstance(body.get(term), list):
            for b in body[term]:
                if isinstance(b, dict) and b.get("datasetId") == inst.get("datasetId"):
                    b["entity"] = value


def _flat(entities: list[Entity], sel: Selection, src: EntitySource, caller: Caller, ctx: Context,
          level: int) -> list[tuple[Entity, Selection]]:
    """The entities the shown relationships link to, `level` deep, each once, with their projection."""
    have = {e["id"] for e in entities}
    out: list[tuple[Entity, Selection]] = []
    frontier = [(e, sel) for e in entities]
    for _ in range(level):
        nxt = []
        for e, s in frontier:
            for name, _, ids in _objects(e):
                sub = s.linked(name)
                if sub is None or (s.keep is not None and name not in (_kept(e, s.keep) or ())):
                    continue
                for oid in ids:
                    if oid in have:
                        continue
                    have.add(oid)
                    target = src.get(caller, oid)
                    if target is not None:
                        out.append((target, sub))
                        nxt.append((target, sub))
        frontier = nxt
    return out


def _joined(entities: list[Entity], bodies: list[dict[str, Any]], sel: Selection, request: Request, caller: Caller,
            ctx: Context, p: dict[str, str], media: str) -> list[dict[str, Any]]:
    join, level = _join(p)
    if join is None or media == neg.GEO_JSON:
        return bodies
    src = _state(request).tenants.source(request)
    if join == "inline":
        for e, b in zip(entities, bodies, strict=True):
            _inline(e, b, sel, src, caller, ctx, p, level, frozenset([e["id"]]))
        return bodies
    return bodies + [represent(x, s, ctx, p, media) for x, s in _flat(entities, sel, src, caller, ctx, level)]


# reads -----------------------------------------------------------------------------------------------------------
def _tenant_headers(request: Request) -> dict[str, str]:
    t = request.headers.get("NGSILD-Tenant")
    return {"NGSILD-Tenant": t} if t else {}


@router.get("/entities/{entityId}", summary="Retrieve an entity (§6.5.3.1)")
def retrieve_entity(request: Request, entityId: str, caller: READ) -> Response:
    st = _state(request)
    media = neg.accepted(request, allow_geo=True)
    p = _params(request, RETRIEVE_PARAMS)
    _uri(entityId, "entity id")
    src = st.tenants.source(request)
    ctx = neg.request_context(request, st.resolver)
    sel = select({k: v for k, v in p.items() if k in ("attrs", "pick", "omit", "type")}, ctx)
    e = src.get(caller, entityId)
    if e is None or (not sel.match(e) and "type" in p):
        raise not_found(f"no entity {entityId}")
    bodies = _joined([e], [represent(e, sel, ctx, p, media)], sel, request, caller, ctx, p, media)
    body: Any = bodies if len(bodies) > 1 else bodies[0]
    return neg.respond(body, media, ctx, request, headers=_tenant_headers(request))


def _page(p: dict[str, str], settings: Any) -> tuple[int, int, bool]:
    limit = _int(p, "limit", settings.ngsi_ld.default_limit)
    offset = _int(p, "offset", 0)
    count = p.get("count", "false")
    if count not in ("true", "false"):
        raise bad_request("count must be true or false")
    assert limit is not None and offset is not None
    if limit > settings.ngsi_ld.max_limit:
        raise NgsiError("TooManyResults", f"limit {limit} is above this server's maximum "
                        f"{settings.ngsi_ld.max_limit}")
    if limit == 0 and count != "true":
        raise bad_request("limit=0 only goes with count=true")
    return limit, offset, count == "true"


def _matching(request: Request, caller: Caller, p: dict[str, str], ctx: Context) -> tuple[list[Entity], Selection]:
    st = _state(request)
    src = st.tenants.source(request)
    if not any(k in p for k in ("type", "id", "idPattern", "attrs", "q", "georel", "scopeQ", "pick")) and \
            p.get("local") != "true":
        raise bad_request("a query needs at least one of type, id, idPattern, attrs, q, georel (§5.7.2)")
    sel = select(p, ctx)
    return [e for e in src.candidates(caller, sel.hint) if sel.match(e)], sel


@router.get("/entities", summary="Query entities (§6.4.3.1)")
def query_entities(request: Request, caller: READ) -> Response:
    st = _state(request)
    media = neg.accepted(request, allow_geo=True)
    p = _params(request, QUERY_PARAMS)
    ctx = neg.request_context(request, st.resolver)
    limit, offset, count = _page(p, st.settings)
    found, sel = _matching(request, caller, p, ctx)
    entities = found[offset:offset + limit]
    page = _joined(entities, [represent(e, sel, ctx, p, media) for e in entities], sel, request, caller, ctx, p,
                   media)
    headers = _tenant_headers(request)
    if count:
        headers["NGSILD-Results-Count"] = str(len(found))
    body: Any = {"type": "FeatureCollection", "features": page} if media == neg.GEO_JSON else page
    return neg.respond(body, media, ctx, request, headers=headers)


def _all(request: Request, caller: Caller) -> list[Entity]:
    return list(_state(request).tenants.source(request).candidates(caller, Hint()))


def _attr_names(e: Entity) -> list[str]:
    return [k for k in e if k not in ("id", "type", "scope", "createdAt", "modifiedAt", "@context")]


def _types_of(e: Entity) -> list[str]:
    t = e.get("type")
    return list(t) if isinstance(t, list) else [t]


def _attr_types(e: Entity, name: str) -> set[str]:
    a = e.get(name)
    return {i.get("type", "Property") for i in (a if isinstance(a, list) else [a]) if isinstance(i, dict)}


def _discovery(request: Request) -> tuple[Context, dict[str, str], str]:
    st = _state(request)
    media = neg.accepted(request)
    p = _params(request, {"details", "local"})
    if p.get("details", "false") not in ("true", "false"):
        raise bad_request("details must be true or false")
    return neg.request_context(request, st.resolver), p, media


@router.get("/types", summary="Retrieve available entity types (§6.25.3.1)")
def list_types(request: Request, caller: READ) -> Response:
    ctx, p, media = _discovery(request)
    entities = _all(request, caller)
    by_type: dict[str, set[str]] = {}
    for e in entities:
        for t in _types_of(e):
            by_type.setdefault(t, set()).update(_attr_names(e))
    body = _listing(p, ctx, "EntityTypeList", "typeList", by_type, lambda: [
        {"id": t, "type": "EntityType", "typeName": ctx.compact(t),
         "attributeNames": sorted(ctx.compact(a) for a in attrs)} for t, attrs in sorted(by_type.items())])
    return neg.respond(body, media, ctx, request, headers=_tenant_headers(request))


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
    entities = [e for e in _all(request, caller) if iri in _types_of(e)]
    if not entities:
        raise not_found(f"no entity of type {type}")
    attrs: dict[str, set[str]] = {}
    for e in entities:
        for a in _attr_names(e):
            attrs.setdefault(a, set()).update(_attr_types(e, a))
    body = {"id": iri, "type": "EntityTypeInfo", "typeName": ctx.compact(iri), "entityCount": len(entities),
            "attributeDetails": [{"id": a, "type": "Attribute", "attributeName": ctx.compact(a),
                                  "attributeTypes": sorted(ts)} for a, ts in sorted(attrs.items())]}
    return neg.respond(body, media, ctx, request, headers=_tenant_headers(request))


def _attribute_index(entities: list[Entity]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for e in entities:
        for a in _attr_names(e):
            info = out.setdefault(a, {"count": 0, "types": set(), "typeNames": set()})
            info["count"] += 1
            info["types"].update(_attr_types(e, a))
            info["typeNames"].update(_types_of(e))
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
    return neg.respond(body, media, ctx, request, headers=_tenant_headers(request))


@router.get("/attributes/{attrId}", summary="Details of an attribute (§6.28.3.1)")
def attribute_details(request: Request, attrId: str, caller: READ) -> Response:
    ctx, _, media = _discovery(request)
    iri = ctx.expand(attrId)
    info = _attribute_index(_all(request, caller)).get(iri)
    if info is None:
        raise not_found(f"no attribute {attrId}")
    return neg.respond(_attribute_body(iri, info, ctx), media, ctx, request, headers=_tenant_headers(request))


# writes ----------------------------------------------------------------------------------------------------------
def _writable(request: Request, create: bool = False) -> SandboxSource:
    src: EntitySource = _state(request).tenants.source(request, create=create)
    if not getattr(src, "writable", False) or not isinstance(src, SandboxSource):
        raise NgsiError("OperationNotSupported", f"the tenant {_state(request).tenants.name(request)!r} is "
                        "read-only: its entities come from the city's sensors (write to the sandbox tenant)")
    return src


def _stamp(attrs: Entity, now: str, old: Entity | None = None) -> None:
    """createdAt/modifiedAt on each attribute instance (createdAt kept from the instance it replaces)."""
    for name, v in attrs.items():
        if name in ("id", "type", "scope", "createdAt", "modifiedAt"):
            continue
        prev = old.get(name) if old else None
        for a in v if isinstance(v, list) else [v]:
            before = _instance(prev, a.get("datasetId")) if prev is not None else None
            a["createdAt"] = before.get("createdAt", now) if before else now
            a["modifiedAt"] = now


def _list(attr: Any) -> list[Any]:
    return attr if isinstance(attr, list) else [attr]


def _instance(attr: Any, dataset_id: str | None) -> dict[str, Any] | None:
    for a in attr if isinstance(attr, list) else [attr]:
        if isinstance(a, dict) and a.get("datasetId") == dataset_id:
            return a
    return None


def _put_instance(current: Any, new: dict[str, Any]) -> Any:
    """An attribute with `new` replacing the instance of the same datasetId (or added beside the others)."""
    insts = [a for a in (current if isinstance(current, list) else [current])
             if a.get("datasetId") != new.get("datasetId")]
    insts.append(new)
    return insts[0] if len(insts) == 1 else insts


async def _body(request: Request, *, patch: bool = False, array: bool = False) -> tuple[Any, Context]:
    neg.accepted(request)  # a write answers JSON when it answers a body: Accept must allow it
    payload, ctx, _ = await neg.read_body(request, _state(request).resolver, patch=patch, array=array)
    return payload, ctx


def _changed(request: Request, src: SandboxSource, before: Entity | None, after: Entity | None) -> None:
    _state(request).tenants.changed(src.tenant, before, after)


def _create(request: Request, src: SandboxSource, payload: Any, ctx: Context) -> Entity:
    now = now_text()
    e = ent.expand_entity(payload, ctx, now)
    with src.lock:
        if src.get(None, e["id"]) is not None:
            raise NgsiError("AlreadyExists", f"the entity {e['id']} already exists")
        e["createdAt"] = e["modifiedAt"] = now
        _stamp(e, now)
        src.save(e, now=now)
    _changed(request, src, None, e)
    return e


@router.post("/entities", status_code=201, summary="Create an entity (§6.4.3.2)")
async def create_entity(request: Request, caller: WRITE) -> Response:
    _params(request, {"local"})
    payload, ctx = await _body(request)
    src = _writable(request, create=True)
    e = await run_in_threadpool(_create, request, src, payload, ctx)
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{e['id']}",
                                              **_tenant_headers(request)})


def _existing(src: SandboxSource, entity_id: str) -> Entity:
    _uri(entity_id, "entity id")
    e = src.get(None, entity_id)
    if e is None:
        raise not_found(f"no entity {entity_id}")
    return e


def _update_result(updated: list[str], not_updated: list[tuple[str, str]], ctx: Context) -> Response:
    if not not_updated:
        return neg.no_content()
    body = {"updated": [ctx.compact(u) for u in updated],
            "notUpdated": [{"attributeName": ctx.compact(n), "reason": r} for n, r in not_updated]}
    return neg.respond(body, neg.JSON, ctx, status=207)


def _apply_attrs(request: Request, src: SandboxSource, entity_id: str, payload: Any, ctx: Context, *,
                 mode: str, no_overwrite: bool = False) -> Response:
    """append (POST .../attrs), update (PATCH .../attrs), merge (PATCH /entities/{id}), replace (PUT)."""
    now = now_text()
    with src.lock:
        e = _existing(src, entity_id)
        if mode in ("replace", "merge") and payload.get("id") not in (None, entity_id):
            raise bad_request("the body's id is not the entity's")
        nulls = [k for k, v in payload.items() if v == NULL or (isinstance(v, dict) and v.get("value") == NULL)]
        body = {k: v for k, v in payload.items() if k not in nulls}
        attrs = ent.expand_attrs(body, ctx, now, partial=mode == "merge")
        before = {k: v for k, v in e.items()}
        updated, not_updated = [], []
        new = dict(e) if mode != "replace" else {k: e[k] for k in ("id", "type", "scope", "createdAt") if k in e}
        if mode == "replace" and "type" in payload:
            types = ent.entity_types(payload["type"], ctx)
            new["type"] = types if len(types) > 1 else types[0]
        if mode in ("merge", "replace") and "scope" in payload:
            new["scope"] = payload["scope"] if isinstance(payload["scope"], list) else [payload["scope"]]
        for name, attr in attrs.items():
            exists = name in e
            if mode == "update" and not exists:
                not_updated.append((name, "the attribute does not exist"))
                continue
            if mode == "append" and exists and no_overwrite:
                not_updated.append((name, "the attribute exists and options=noOverwrite"))
                continue
            insts = attr if isinstance(attr, list) else [attr]
            for inst in insts:
                if mode == "merge" and exists:
                    old = _instance(e[name], inst.get("datasetId"))
                    if old is not None:
                        inst = {**old, **inst}
                        inst.setdefault("type", old.get("type"))
                if "type" not in inst:
                    inst = {"type": ent.PROPERTY, **inst}
                _stamp({name: inst}, now, e)
                cur = new.get(name)
                new[name] = inst if cur is None or (mode == "replace" and name not in new) else _put_instance(cur, inst)
                if mode == "replace" and cur is not None:
                    new[name] = _put_instance(cur, inst)
            updated.append(name)
        for k in nulls:
            new.pop(ctx.expand(k), None)
        new["modifiedAt"] = now
        changed = {k: v for k, v in new.items() if k in attrs}
        src.save(new, new_attrs=changed, now=now)
    _changed(request, src, before, new)
    if mode in ("replace", "merge"):
        return neg.no_content()
    return _update_result(updated, not_updated, ctx)


@router.post("/entities/{entityId}/attrs", summary="Append entity attributes (§6.6.3.1)")
async def append_attrs(request: Request, entityId: str, caller: WRITE) -> Response:
    p = _params(request, {"options", "local"})
    payload, ctx = await _body(request)
    src = _writable(request)
    return await run_in_threadpool(_apply_attrs, request, src, entityId, payload, ctx, mode="append",
                                   no_overwrite="noOverwrite" in _options(p))


@router.patch("/entities/{entityId}/attrs", summary="Update entity attributes (§6.6.3.2)")
async def update_attrs(request: Request, entityId: str, caller: WRITE) -> Response:
    _params(request, {"local"})
    payload, ctx = await _body(request, patch=True)
    src = _writable(request)
    return await run_in_threadpool(_apply_attrs, request, src, entityId, payload, ctx, mode="update")


@router.patch("/entities/{entityId}", summary="Merge an entity (§6.5.3.4)")
async def merge_entity(request: Request, entityId: str, caller: WRITE) -> Response:
    _params(request, {"local", "options", "format"})
    payload, ctx = await _body(request, patch=True)
    src = _writable(request)
    return await run_in_threadpool(_apply_attrs, request, src, entityId, payload, ctx, mode="merge")


@router.put("/entities/{entityId}", summary="Replace an entity (§6.5.3.3)")
async def replace_entity(request: Request, entityId: str, caller: WRITE) -> Response:
    _params(request, {"local", "options", "format"})
    payload, ctx = await _body(request)
    src = _writable(request)
    return await run_in_threadpool(_apply_attrs, request, src, entityId, payload, ctx, mode="replace")


def _one_attr(request: Request, src: SandboxSource, entity_id: str, attr_id: str, payload: Any, ctx: Context,
              replace: bool) -> Response:
    now = now_text()
    name = ctx.expand(attr_id)
    with src.lock:
        e = _existing(src, entity_id)
        if name not in e:
            raise not_found(f"the entity {entity_id} has no attribute {attr_id}")
        frag = ent.expand_attribute(payload, ctx, attr_id, now, partial=not replace)
        new = dict(e)
        for inst in frag if isinstance(frag, list) else [frag]:
            old = _instance(e[name], inst.get("datasetId"))
            if old is None:
                raise not_found(f"{attr_id} has no instance of datasetId {inst.get('datasetId')}")
            merged = inst if replace else {**old, **inst}
            merged.setdefault("type", old.get("type", ent.PROPERTY))
            _stamp({name: merged}, now, e)
            new[name] = _put_instance(new[name], merged)
        new["modifiedAt"] = now
        src.save(new, new_attrs={name: new[name]}, now=now)
    _changed(request, src, e, new)
    return neg.no_content()


@router.patch("/entities/{entityId}/attrs/{attrId}", summary="Partial attribute update (§6.7.3.1)")
async def patch_attr(request: Request, entityId: str, attrId: str, caller: WRITE) -> Response:
    _params(request, {"local"})
    payload, ctx = await _body(request, patch=True)
    src = _writable(request)
    return await run_in_threadpool(_one_attr, request, src, entityId, attrId, payload, ctx, False)


@router.put("/entities/{entityId}/attrs/{attrId}", summary="Replace an attribute (§6.7.3.3)")
async def put_attr(request: Request, entityId: str, attrId: str, caller: WRITE) -> Response:
    _params(request, {"local"})
    payload, ctx = await _body(request)
    src = _writable(request)
    return await run_in_threadpool(_one_attr, request, src, entityId, attrId, payload, ctx, True)


def _drop_attr(request: Request, entity_id: str, attr_id: str, temporal: bool) -> Response:
    """Delete an attribute (or one datasetId of it): from the entity, leaving a deletedAt tombstone; with
    `temporal`, its instances too (§6.21.3.1)."""
    p = _params(request, {"datasetId", "deleteAll", "local"})
    src = _writable(request)
    ctx = neg.request_context(request, _state(request).resolver)
    name = ctx.expand(attr_id)
    with src.lock:
        e = _existing(src, entity_id)
        if name not in e:
            raise not_found(f"the entity {entity_id} has no attribute {attr_id}")
        new = dict(e)
        del new[name]
        if p.get("deleteAll") != "true":
            ds = p.get("datasetId")
            rest = [a for a in _list(e[name]) if a.get("datasetId") != ds]
            if len(rest) == len(_list(e[name])):
                raise not_found(f"{attr_id} has no instance of datasetId {ds}")
            if rest:
                new[name] = rest[0] if len(rest) == 1 else rest
        now = now_text()
        new["modifiedAt"] = now
        src.save(new, new_attrs={}, drop_attrs=[name] if temporal and name not in new else ())
        if not temporal:
            gone = e[name] if name not in new else [a for a in _list(e[name]) if a not in _list(new[name])]
            src.tombstone(entity_id, name, gone, now)
    _changed(request, src, e, new)
    return neg.no_content()


@router.delete("/entities/{entityId}/attrs/{attrId}", status_code=204, summary="Delete an attribute (§6.7.3.2)")
def delete_attr(request: Request, entityId: str, attrId: str, caller: WRITE) -> Response:
    return _drop_attr(request, entityId, attrId, temporal=False)


@router.delete("/entities/{entityId}", status_code=204, summary="Delete an entity (§6.5.3.2)")
def delete_entity(request: Request, entityId: str, caller: WRITE) -> Response:
    _params(request, {"local", "type"})
    src = _writable(request)
    with src.lock:
        e = _existing(src, entityId)
        src.delete(entityId)
    _changed(request, src, e, None)
    return neg.no_content()


# batch operations (§6.14–6.17) -----------------------------------------------------------------------------------
def _batch_error(eid: Any, err: NgsiError) -> dict[str, Any]:
    return {"entityId": eid, "error": err.body()}


def _batch(request: Request, src: SandboxSource, payload: list[Any], ctx: Context, op: str,
           options: set[str]) -> Response:
    success: list[str] = []
    errors: list[dict[str, Any]] = []
    for item in payload:
        eid = item.get("id") if isinstance(item, dict) else item
        try:
            if op == "delete":
                if not isinstance(item, str):
                    raise bad_request("a batch delete takes a list of entity ids")
                with src.lock:
                    e = _existing(src, item)
                    src.delete(item)
                _changed(request, src, e, None)
            elif op == "create":
                _create(request, src, item, ctx)
            elif op == "upsert":
                if not isinstance(item, dict) or not ent.is_uri(eid):
                    raise bad_request("an entity needs an id that is a URI")
                if src.get(None, eid) is None:
                    _create(request, src, item, ctx)
                else:
                    _apply_attrs(request, src, eid, item, ctx, mode="append" if "update" in options else "replace")
            elif op == "merge":
                if not isinstance(item, dict) or not ent.is_uri(eid):
                    raise bad_request("an entity needs an id that is a URI")
                _apply_attrs(request, src, eid, item, ctx, mode="merge")
            else:
                r = _apply_attrs(request, src, eid, item, ctx, mode="append",
                                 no_overwrite="noOverwrite" in options)
                if r.status_code == 207:
                    raise bad_request("some attributes were not updated (options=noOverwrite)")
            success.append(eid)
        except NgsiError as err:
            errors.append(_batch_error(eid, err))
    if not errors:
        if op == "create" or (op == "upsert" and success):
            return neg.respond(success, neg.JSON, ctx, status=201) if op == "create" else neg.no_content()
        return neg.no_content()
    return neg.respond({"success": success, "errors": errors}, neg.JSON, ctx, status=207)


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
    for k in ("q", "scopeQ", "lang"):
        if k in payload:
            if not isinstance(payload[k], str):
                raise bad_request(f"{k} must be a string")
            p[k] = payload[k]
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
            wanted = _uri(str(info["id"]), "id")
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
    st = _state(request)
    media = neg.accepted(request, allow_geo=True)
    p = _params(request, {"limit", "offset", "count", "options", "format", "lang", "local", "geometryProperty"})
    payload, ctx, _ = await neg.read_body(request, st.resolver)

    def run() -> Response:
        q = {**p, **_query_body(payload)}
        limit, offset, count = _page(q, st.settings)
        infos = _entity_infos(payload, ctx)
        src = st.tenants.source(request)
        sel = select(q, ctx)
        if infos is not None:
            sel.preds.append(infos)
        elif not any(k in q for k in ("attrs", "q", "georel", "scopeQ")):
            raise bad_request("a query needs entities, attrs, q or geoQ (§5.7.2)")
        found = [e for e in src.candidates(caller, sel.hint) if sel.match(e)]
        entities = found[offset:offset + limit]
        page = [represent(e, sel, ctx, q, media) for e in entities]
        headers = _tenant_headers(request)
        if count:
            headers["NGSILD-Results-Count"] = str(len(found))
        body: Any = {"type": "FeatureCollection", "features": page} if media == neg.GEO_JSON else page
        return neg.respond(body, media, ctx, request, headers=headers)

    return await run_in_threadpool(run)


@router.post("/entityOperations/{operation}", summary="Batch create, upsert, update, merge, delete (§6.14–6.17)")
async def batch(request: Request, operation: str, caller: WRITE) -> Response:
    if operation not in ("create", "upsert", "update", "merge", "delete"):
        raise not_found(f"no batch operation {operation!r}")
    p = _params(request, {"options", "local"})
    payload, ctx = await _body(request, array=True)
    src = _writable(request, create=operation in ("create", "upsert"))
    return await run_in_threadpool(_batch, request, src, payload, ctx, operation, _options(p))


# temporal ----------------------------------------------------------------------------------------------------------
def _temporal_hint(p: dict[str, str], ctx: Context, attrs: frozenset[str] | None) -> tuple[TemporalHint, set[str]]:
    start, end = tmp.time_range(p.get("timerel"), p.get("timeAt"), p.get("endTimeAt"))
    tp = p.get("timeproperty", "observedAt")
    if tp not in ("observedAt", "createdAt", "modifiedAt", "deletedAt"):
        raise bad_request(f"timeproperty {tp!r} is not observedAt, createdAt, modifiedAt or deletedAt")
    last_n = _int(p, "lastN", None, low=1)
    opts = _options(p)
    if p.get("format") == "aggregatedValues":
        opts.add("aggregatedValues")
    methods: tuple[str, ...] = ()
    if "aggregatedValues" in opts or "aggrMethods" in p:
        if "aggrMethods" not in p:
            raise bad_request("aggregatedValues needs aggrMethods")
        methods = tuple(m.strip() for m in p["aggrMethods"].split(",") if m.strip())
        bad = [m for m in methods if m not in tmp.AGGR_METHODS]
        if bad or not methods:
            raise bad_request(f"aggrMethods: unknown {', '.join(bad) or '(none)'}; known {', '.join(tmp.AGGR_METHODS)}")
    period = tmp.parse_duration(p["aggrPeriodDuration"]) if "aggrPeriodDuration" in p else None
    opts.add(f"timeproperty={tp}")
    return TemporalHint(start, end, last_n, attrs, methods, period), opts


def _history(src: EntitySource, caller: Caller, ids: list[str], hint: TemporalHint, opts: set[str]
             ) -> Iterable[Entity]:
    """The source's history; the sandbox also answers by createdAt/modifiedAt/deletedAt (the seam's TemporalHint
    has no time property: a city's observations have only observedAt)."""
    tp = next((o.split("=", 1)[1] for o in opts if o.startswith("timeproperty=")), "observedAt")
    if isinstance(src, SandboxSource):
        return src.history(caller, ids, hint, timeproperty=tp)
    return src.history(caller, ids, hint)


def _temporal_body(e: Entity, ctx: Context, opts: set[str], p: dict[str, str], aggregated: bool) -> dict[str, Any]:
    simplified = "temporalValues" in opts or p.get("format") == "temporalValues"
    sys_attrs = "sysAttrs" in opts
    types = [ctx.compact(t) for t in _types_of(e)]
    out: dict[str, Any] = {"id": e["id"], "type": types[0] if len(types) == 1 else types}
    if e.get("scope"):
        out["scope"] = e["scope"]
    for name, v in e.items():
        if name in ("id", "type", "scope", "createdAt", "modifiedAt"):
            continue
        term = ctx.compact(name)
        if aggregated or isinstance(v, dict):
            out[term] = v
        elif simplified:
            out[term] = tmp.temporal_values(v)
        else:
            insts = []
            for inst in v:
                i = {k: x for k, x in inst.items() if sys_attrs or k not in ("createdAt", "modifiedAt")}
                insts.append(ent._compact_attr(i, ctx, "normalized", sys_attrs, p.get("lang")))
            out[term] = insts
    return out


def _instance_time(inst: dict[str, Any], tp: str) -> str | None:
    t = inst.get(tp)
    return t if isinstance(t, str) else None


def _truncated(entities: list[Entity], hint: TemporalHint, opts: set[str], limit: int
               ) -> tuple[list[Entity], str | None]:
    """Temporal pagination (§6.3.10): at most `limit` instances an attribute — the oldest, or with lastN the
    newest — and, when some were left out, the Content-Range of what is returned."""
    if hint.aggr_methods:
        return entities, None
    tp = next((o.split("=", 1)[1] for o in opts if o.startswith("timeproperty=")), "observedAt")
    cut = False
    times: list[str] = []
    for e in entities:
        for k, v in e.items():
            if not isinstance(v, list):
                continue
            if len(v) > limit:
                cut = True
                e[k] = v = v[-limit:] if hint.last_n else v[:limit]
            times += [t for t in (_instance_time(i, tp) for i in v if isinstance(i, dict)) if t]
    if not cut or not times:
        return entities, None
    parsed = sorted(ent.parse_time(t, tp) for t in times)
    lrt, mrt = ent.utc_text(parsed[0]), ent.utc_text(parsed[-1])
    if hint.last_n:
        start = ent.utc_text(hint.end) if hint.end else mrt  # newest first: from the range's end
        return entities, f"date-time {start}-{lrt}/{hint.last_n}"
    start = ent.utc_text(hint.start) if hint.start else lrt
    return entities, f"date-time {start}-{mrt}/*"


def _projected(body: dict[str, Any], sel: Selection, ctx: Context) -> dict[str, Any]:
    """pick / omit on a temporal body (attributes were already limited by the hint, except omit's)."""
    if isinstance(sel.keep, _Omit):
        for iri in sel.keep:
            body.pop(ctx.compact(iri), None)
    if not sel.show_id:
        body.pop("id", None)
    if not sel.show_type:
        body.pop("type", None)
    return body


@router.get("/temporal/entities", summary="Query temporal evolution of entities (§6.18.3.2)")
def query_temporal(request: Request, caller: READ) -> Response:
    st = _state(request)
    media = neg.accepted(request)
    p = _params(request, TEMPORAL_PARAMS)
    ctx = neg.request_context(request, st.resolver)
    limit, offset, count = _page(p, st.settings)
    found, sel = _matching(request, caller, p, ctx)
    hint, opts = _temporal_hint(p, ctx, sel.keep if not isinstance(sel.keep, _Omit) else None)
    page = found[offset:offset + limit]
    src = st.tenants.source(request)
    history, content_range = _truncated(list(_history(src, caller, [e["id"] for e in page], hint, opts)), hint,
                                        opts, st.settings.ngsi_ld.max_instances)
    body = [_projected(_temporal_body(e, ctx, opts, p, bool(hint.aggr_methods)), sel, ctx) for e in history]
    headers = _tenant_headers(request)
    if count:
        headers["NGSILD-Results-Count"] = str(len(found))
    if content_range:
        headers["Content-Range"] = content_range
    return neg.respond(body, media, ctx, request, status=206 if content_range else 200, headers=headers)


@router.get("/temporal/entities/{entityId}", summary="Retrieve the temporal evolution of an entity (§6.19.3.1)")
def retrieve_temporal(request: Request, entityId: str, caller: READ) -> Response:
    st = _state(request)
    media = neg.accepted(request)
    p = _params(request, TEMPORAL_PARAMS - {"limit", "offset", "count"})
    _uri(entityId, "entity id")
    ctx = neg.request_context(request, st.resolver)
    src = st.tenants.source(request)
    if src.get(caller, entityId) is None:
        raise not_found(f"no entity {entityId}")
    sel = select({k: v for k, v in p.items() if k in ("attrs", "pick", "omit")}, ctx)
    hint, opts = _temporal_hint(p, ctx, sel.keep if not isinstance(sel.keep, _Omit) else None)
    found, content_range = _truncated(list(_history(src, caller, [entityId], hint, opts)), hint, opts,
                                      st.settings.ngsi_ld.max_instances)
    if not found:
        raise not_found(f"no entity {entityId}")
    body = _projected(_temporal_body(found[0], ctx, opts, p, bool(hint.aggr_methods)), sel, ctx)
    headers = _tenant_headers(request)
    if content_range:
        headers["Content-Range"] = content_range
    return neg.respond(body, media, ctx, request, status=206 if content_range else 200, headers=headers)


def _latest(insts: list[dict[str, Any]]) -> dict[str, Any]:
    return max(insts, key=lambda i: i.get("observedAt") or "")


def _temporal_write(request: Request, src: SandboxSource, payload: Any, ctx: Context, entity_id: str | None
                    ) -> Response:
    """Create or update a temporal representation: its instances kept, its newest values the entity's."""
    now = now_text()
    if entity_id is not None:
        payload = {**payload, "id": entity_id}
        with src.lock:
            e = _existing(src, entity_id)
        payload.setdefault("type", e["type"])
    e_new = ent.expand_entity(payload, ctx, now, temporal=True)
    with src.lock:
        old = src.get(None, e_new["id"])
        current: Entity = dict(old) if old else {"id": e_new["id"], "type": e_new["type"], "createdAt": now}
        if "scope" in e_new:
            current["scope"] = e_new["scope"]
        history: Entity = {}
        for name, attr in e_new.items():
            if name in ("id", "type", "scope"):
                continue
            insts = attr if isinstance(attr, list) else [attr]
            for i in insts:
                i["createdAt"] = i["modifiedAt"] = now
            history[name] = insts
            by_ds: dict[Any, list[dict[str, Any]]] = {}
            for i in insts:
                by_ds.setdefault(i.get("datasetId"), []).append(i)
            for group in by_ds.values():
                latest = _latest(group)
                cur = current.get(name)
                current[name] = dict(latest) if cur is None else _put_instance(cur, dict(latest))
        current["modifiedAt"] = now
        src.save(current, new_attrs={}, now=now)
        src.add_instances(current["id"], {k: v for k, v in history.items()}, now)
    _changed(request, src, old, current)
    if entity_id is not None or old is not None:
        return neg.no_content()
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/temporal/entities/{current['id']}"})


@router.post("/temporal/entities", summary="Create or update a temporal representation (§6.18.3.1)")
async def create_temporal(request: Request, caller: WRITE) -> Response:
    _params(request, {"local"})
    payload, ctx = await _body(request)
    src = _writable(request, create=True)
    return await run_in_threadpool(_temporal_write, request, src, payload, ctx, None)


@router.post("/temporal/entities/{entityId}/attrs", summary="Add temporal attribute instances (§6.20.3.1)")
async def append_temporal(request: Request, entityId: str, caller: WRITE) -> Response:
    _params(request, {"local"})
    payload, ctx = await _body(request)
    src = _writable(request)
    return await run_in_threadpool(_temporal_write, request, src, payload, ctx, entityId)


@router.delete("/temporal/entities/{entityId}", status_code=204, summary="Delete a temporal representation")
def delete_temporal(request: Request, entityId: str, caller: WRITE) -> Response:
    return delete_entity(request, entityId, caller)


@router.delete("/temporal/entities/{entityId}/attrs/{attrId}", status_code=204,
               summary="Delete a temporal attribute (§6.21.3.1)")
def delete_temporal_attr(request: Request, entityId: str, attrId: str, caller: WRITE) -> Response:
    return _drop_attr(request, entityId, attrId, temporal=True)


def _instance_op(request: Request, entity_id: str, attr_id: str, instance_id: str,
                 op: Callable[[SandboxSource, str, Context], bool], ctx: Context) -> Response:
    src = _writable(request)
    name = ctx.expand(attr_id)
    with src.lock:
        _existing(src, entity_id)
        if not op(src, name, ctx):
            raise not_found(f"no instance {instance_id} of {attr_id}")
    return neg.no_content()


@router.patch("/temporal/entities/{entityId}/attrs/{attrId}/{instanceId}", status_code=204,
              summary="Modify an attribute instance (§6.22.3.1)")
async def patch_instance(request: Request, entityId: str, attrId: str, instanceId: str,
                         caller: WRITE) -> Response:
    _params(request, {"local"})
    payload, ctx = await _body(request, patch=True)
    name = ctx.expand(attrId)
    frag = payload.get(attrId, payload.get(name, payload)) if isinstance(payload, dict) else payload
    if isinstance(frag, list):
        frag = frag[0] if frag else {}
    inst = ent.expand_attribute(frag, ctx, attrId, now_text())
    return await run_in_threadpool(_instance_op, request, entityId, attrId, instanceId,
                                   lambda s, n, c: s.replace_instance(entityId, n, instanceId, inst), ctx)


@router.delete("/temporal/entities/{entityId}/attrs/{attrId}/{instanceId}", status_code=204,
               summary="Delete an attribute instance (§6.22.3.2)")
def delete_instance(request: Request, entityId: str, attrId: str, instanceId: str,
                    caller: WRITE) -> Response:
    _params(request, {"local"})
    ctx = neg.request_context(request, _state(request).resolver)
    return _instance_op(request, entityId, attrId, instanceId,
                        lambda s, n, c: s.delete_instance(entityId, n, instanceId), ctx)


# context source identity (§5.15, v1.9) ------------------------------------------------------------------------------
_STARTED = time.monotonic()


@router.get("/info/sourceIdentity", summary="Context source identity (§5.15.1)")
def source_identity(request: Request, caller: Annotated[Caller, serves(OPEN)]) -> Response:
    """Who this context source is: an alias per tenant (stable for this host and store), its uptime, its time."""
    st = _state(request)
    media = neg.accepted(request)
    _params(request, set())
    tenant = st.tenants.name(request)
    alias = uuid.uuid5(uuid.NAMESPACE_URL, f"clapas|{socket.gethostname()}|{st.settings.store}|{tenant}")
    uptime = int(time.monotonic() - _STARTED)
    body = {"id": f"urn:ngsi-ld:ContextSourceIdentity:{alias}", "type": "ContextSourceIdentity",
            "contextSourceAlias": f"urn:ngsi-ld:ContextSource:{alias}", "contextSourceUptime": f"PT{uptime}S",
            "contextSourceTimeAt": now_text(), "contextSourceExtras": {"software": "clapas", "tenant": tenant}}
    return neg.respond(body, media, neg.request_context(request, st.resolver), request)
