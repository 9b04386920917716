"""The write routes of the sandbox tenants (ETSI GS CIM 009 §5.6, §6.4.3.2, 6.5–6.7, 6.14–6.17): create,
replace, merge, delete entities; append, update, partially update, replace, delete attributes; batch operations.

Writes go only to a writable tenant (a sandbox; the city's answers 422 OperationNotSupported), through the
charter's `sandbox:write` scope. Entities and attributes carry createdAt/modifiedAt (shown with `options=sysAttrs`);
every value written is also a temporal instance (`sandbox.py`), and every change is told to the tenants'
listeners (subscriptions).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from clapas.api.ngsi_ld import entity as ent
from clapas.api.ngsi_ld import negotiation as neg
from clapas.api.ngsi_ld.common import (
    NULL,
    WRITE,
    as_list,
    instance_of,
    options_of,
    put_instance,
    query_params,
    read_json,
    state,
    tenant_headers,
    uri,
)
from clapas.api.ngsi_ld.context import Context
from clapas.api.ngsi_ld.errors import NgsiError, bad_request, not_found
from clapas.api.ngsi_ld.sandbox import SandboxSource, now_text
from clapas.api.ngsi_ld.source import Entity, EntitySource

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])


# writes ----------------------------------------------------------------------------------------------------------
def writable(request: Request, create: bool = False) -> SandboxSource:
    src: EntitySource = state(request).tenants.source(request, create=create)
    if not getattr(src, "writable", False) or not isinstance(src, SandboxSource):
        raise NgsiError("OperationNotSupported", f"the tenant {state(request).tenants.name(request)!r} is "
                        "read-only: its entities come from the city's sensors (write to the sandbox tenant)")
    return src


def stamp(attrs: Entity, now: str, old: Entity | None = None) -> None:
    """createdAt/modifiedAt on each attribute instance (createdAt kept from the instance it replaces)."""
    for name, v in attrs.items():
        if name in ("id", "type", "scope", "createdAt", "modifiedAt"):
            continue
        prev = old.get(name) if old else None
        for a in v if isinstance(v, list) else [v]:
            before = instance_of(prev, a.get("datasetId")) if prev is not None else None
            a["createdAt"] = before.get("createdAt", now) if before else now
            a["modifiedAt"] = now


def notify(request: Request, src: SandboxSource, before: Entity | None, after: Entity | None) -> None:
    state(request).tenants.changed(src.tenant, before, after)


def _create(request: Request, src: SandboxSource, payload: Any, ctx: Context) -> Entity:
    now = now_text()
    e = ent.expand_entity(payload, ctx, now)
    with src.lock:
        if src.get(None, e["id"]) is not None:
            raise NgsiError("AlreadyExists", f"the entity {e['id']} already exists")
        e["createdAt"] = e["modifiedAt"] = now
        stamp(e, now)
        src.save(e, now=now)
    notify(request, src, None, e)
    return e


@router.post("/entities", status_code=201, summary="Create an entity (§6.4.3.2)")
async def create_entity(request: Request, caller: WRITE) -> Response:
    query_params(request, {"local"})
    payload, ctx = await read_json(request)
    src = writable(request, create=True)
    e = await run_in_threadpool(_create, request, src, payload, ctx)
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{e['id']}",
                                              **tenant_headers(request)})


def existing(src: SandboxSource, entity_id: str) -> Entity:
    uri(entity_id, "entity id")
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
        e = existing(src, entity_id)
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
                    old = instance_of(e[name], inst.get("datasetId"))
                    if old is not None:
                        inst = {**old, **inst}
                        inst.setdefault("type", old.get("type"))
                if "type" not in inst:
                    inst = {"type": ent.PROPERTY, **inst}
                stamp({name: inst}, now, e)
                cur = new.get(name)
                new[name] = inst if cur is None or (mode == "replace" and name not in new) else put_instance(cur, inst)
                if mode == "replace" and cur is not None:
                    new[name] = put_instance(cur, inst)
            updated.append(name)
        for k in nulls:
            new.pop(ctx.expand(k), None)
        new["modifiedAt"] = now
        written = {k: v for k, v in new.items() if k in attrs}
        src.save(new, new_attrs=written, now=now)
    notify(request, src, before, new)
    if mode in ("replace", "merge"):
        return neg.no_content()
    return _update_result(updated, not_updated, ctx)


@router.post("/entities/{entityId}/attrs", summary="Append entity attributes (§6.6.3.1)")
async def append_attrs(request: Request, entityId: str, caller: WRITE) -> Response:
    p = query_params(request, {"options", "local"})
    payload, ctx = await read_json(request)
    src = writable(request)
    return await run_in_threadpool(_apply_attrs, request, src, entityId, payload, ctx, mode="append",
                                   no_overwrite="noOverwrite" in options_of(p))


@router.patch("/entities/{entityId}/attrs", summary="Update entity attributes (§6.6.3.2)")
async def update_attrs(request: Request, entityId: str, caller: WRITE) -> Response:
    query_params(request, {"local"})
    payload, ctx = await read_json(request, patch=True)
    src = writable(request)
    return await run_in_threadpool(_apply_attrs, request, src, entityId, payload, ctx, mode="update")


@router.patch("/entities/{entityId}", summary="Merge an entity (§6.5.3.4)")
async def merge_entity(request: Request, entityId: str, caller: WRITE) -> Response:
    query_params(request, {"local", "options", "format"})
    payload, ctx = await read_json(request, patch=True)
    src = writable(request)
    return await run_in_threadpool(_apply_attrs, request, src, entityId, payload, ctx, mode="merge")


@router.put("/entities/{entityId}", summary="Replace an entity (§6.5.3.3)")
async def replace_entity(request: Request, entityId: str, caller: WRITE) -> Response:
    query_params(request, {"local", "options", "format"})
    payload, ctx = await read_json(request)
    src = writable(request)
    return await run_in_threadpool(_apply_attrs, request, src, entityId, payload, ctx, mode="replace")


def _one_attr(request: Request, src: SandboxSource, entity_id: str, attr_id: str, payload: Any, ctx: Context,
              replace: bool) -> Response:
    now = now_text()
    name = ctx.expand(attr_id)
    with src.lock:
        e = existing(src, entity_id)
        if name not in e:
            raise not_found(f"the entity {entity_id} has no attribute {attr_id}")
        frag = ent.expand_attribute(payload, ctx, attr_id, now, partial=not replace)
        new = dict(e)
        for inst in frag if isinstance(frag, list) else [frag]:
            old = instance_of(e[name], inst.get("datasetId"))
            if old is None:
                raise not_found(f"{attr_id} has no instance of datasetId {inst.get('datasetId')}")
            merged = inst if replace else {**old, **inst}
            merged.setdefault("type", old.get("type", ent.PROPERTY))
            stamp({name: merged}, now, e)
            new[name] = put_instance(new[name], merged)
        new["modifiedAt"] = now
        src.save(new, new_attrs={name: new[name]}, now=now)
    notify(request, src, e, new)
    return neg.no_content()


@router.patch("/entities/{entityId}/attrs/{attrId}", summary="Partial attribute update (§6.7.3.1)")
async def patch_attr(request: Request, entityId: str, attrId: str, caller: WRITE) -> Response:
    query_params(request, {"local"})
    payload, ctx = await read_json(request, patch=True)
    src = writable(request)
    return await run_in_threadpool(_one_attr, request, src, entityId, attrId, payload, ctx, False)


@router.put("/entities/{entityId}/attrs/{attrId}", summary="Replace an attribute (§6.7.3.3)")
async def put_attr(request: Request, entityId: str, attrId: str, caller: WRITE) -> Response:
    query_params(request, {"local"})
    payload, ctx = await read_json(request)
    src = writable(request)
    return await run_in_threadpool(_one_attr, request, src, entityId, attrId, payload, ctx, True)


def drop_attr(request: Request, entity_id: str, attr_id: str, temporal: bool) -> Response:
    """Delete an attribute (or one datasetId of it): from the entity, leaving a deletedAt tombstone; with
    `temporal`, its instances too (§6.21.3.1)."""
    p = query_params(request, {"datasetId", "deleteAll", "local"})
    src = writable(request)
    ctx = neg.request_context(request, state(request).resolver)
    name = ctx.expand(attr_id)
    with src.lock:
        e = existing(src, entity_id)
        if name not in e:
            raise not_found(f"the entity {entity_id} has no attribute {attr_id}")
        new = dict(e)
        del new[name]
        if p.get("deleteAll") != "true":
            ds = p.get("datasetId")
            rest = [a for a in as_list(e[name]) if a.get("datasetId") != ds]
            if len(rest) == len(as_list(e[name])):
                raise not_found(f"{attr_id} has no instance of datasetId {ds}")
            if rest:
                new[name] = rest[0] if len(rest) == 1 else rest
        now = now_text()
        new["modifiedAt"] = now
        src.save(new, new_attrs={}, drop_attrs=[name] if temporal and name not in new else ())
        if not temporal:
            gone = e[name] if name not in new else [a for a in as_list(e[name]) if a not in as_list(new[name])]
            src.tombstone(entity_id, name, gone, now)
    notify(request, src, e, new)
    return neg.no_content()


@router.delete("/entities/{entityId}/attrs/{attrId}", status_code=204, summary="Delete an attribute (§6.7.3.2)")
def delete_attr(request: Request, entityId: str, attrId: str, caller: WRITE) -> Response:
    return drop_attr(request, entityId, attrId, temporal=False)


@router.delete("/entities/{entityId}", status_code=204, summary="Delete an entity (§6.5.3.2)")
def delete_entity(request: Request, entityId: str, caller: WRITE) -> Response:
    query_params(request, {"local", "type"})
    src = writable(request)
    with src.lock:
        e = existing(src, entityId)
        src.delete(entityId)
    notify(request, src, e, None)
    return neg.no_content()


# batch operations (§6.14–6.17) -----------------------------------------------------------------------------------
def _batch_error(eid: Any, err: NgsiError) -> dict[str, Any]:
    return {"entityId": eid, "error": err.body()}


def _batch(request: Request, src: SandboxSource, payload: list[Any], ctx: Context, op: str,
           options: set[str]) -> Response:
    success: list[str] = []
    errors: list[dict[str, Any]] = []
    own_contexts = neg.body_media(request) == neg.LD_JSON
    resolver = state(request).resolver
    for item in payload:
        eid = item.get("id") if isinstance(item, dict) else item
        try:
            if own_contexts and isinstance(item, dict):
                ctx = resolver.resolve(item.get("@context"))  # its own: unavailable fails this item only
            if op == "delete":
                if not isinstance(item, str):
                    raise bad_request("a batch delete takes a list of entity ids")
                with src.lock:
                    e = existing(src, item)
                    src.delete(item)
                notify(request, src, e, None)
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


@router.post("/entityOperations/{operation}", summary="Batch create, upsert, update, merge, delete (§6.14–6.17)")
async def batch(request: Request, operation: str, caller: WRITE) -> Response:
    if operation not in ("create", "upsert", "update", "merge", "delete"):
        raise not_found(f"no batch operation {operation!r}")
    p = query_params(request, {"options", "local"})
    payload, ctx = await read_json(request, array=True, per_item=True)
    src = writable(request, create=operation in ("create", "upsert"))
    return await run_in_threadpool(_batch, request, src, payload, ctx, operation, options_of(p))


