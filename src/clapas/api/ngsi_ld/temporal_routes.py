"""The temporal API (ETSI GS CIM 009 §5.6.11–5.6.16, §5.7.3–5.7.4, §6.18–6.22): temporal evolutions retrieved
and queried (timerel, lastN, temporalValues, aggregatedValues, timeproperty, pagination with Content-Range) from
any tenant's source; created, extended, changed and deleted on the sandbox tenants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from clapas.api.ngsi_ld import entity as ent
from clapas.api.ngsi_ld import negotiation as neg
from clapas.api.ngsi_ld import temporal as tmp
from clapas.api.ngsi_ld.common import (
    READ,
    TEMPORAL_PARAMS,
    WRITE,
    audited,
    int_param,
    options_of,
    page_links,
    paging,
    put_instance,
    query_params,
    read_json,
    state,
    tenant_headers,
    types_of,
    uri,
    viewed,
)
from clapas.api.ngsi_ld.context import Context
from clapas.api.ngsi_ld.errors import bad_request, not_found
from clapas.api.ngsi_ld.sandbox import SandboxSource, now_text
from clapas.api.ngsi_ld.selection import Omit, Selection, matching, select
from clapas.api.ngsi_ld.source import Entity, EntitySource, TemporalHint
from clapas.api.ngsi_ld.writes import delete_entity, drop_attr, existing, notify, writable
from clapas.charter import Caller

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])


# temporal ----------------------------------------------------------------------------------------------------------
def _temporal_hint(p: dict[str, str], ctx: Context, attrs: frozenset[str] | None) -> tuple[TemporalHint, set[str]]:
    start, end = tmp.time_range(p.get("timerel"), p.get("timeAt"), p.get("endTimeAt"))
    tp = p.get("timeproperty", "observedAt")
    if tp not in ("observedAt", "createdAt", "modifiedAt", "deletedAt"):
        raise bad_request(f"timeproperty {tp!r} is not observedAt, createdAt, modifiedAt or deletedAt")
    last_n = int_param(p, "lastN", None, low=1)
    opts = options_of(p)
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
    types = [ctx.compact(t) for t in types_of(e)]
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
    if isinstance(sel.keep, Omit):
        for iri in sel.keep:
            body.pop(ctx.compact(iri), None)
    if not sel.show_id:
        body.pop("id", None)
    if not sel.show_type:
        body.pop("type", None)
    return body


def _instances(e: Entity) -> int:
    """The rows a temporal entity serves (the audit's count): its attributes' instances, or aggregated values."""
    n = 0
    for k, v in e.items():
        if k in ("id", "type", "scope", "@context"):
            continue
        if isinstance(v, list):
            n += len(v)
        elif isinstance(v, dict):
            n += sum(len(x) for x in v.values() if isinstance(x, list)) or 1
    return n


@router.get("/temporal/entities", summary="Query temporal evolution of entities (§6.18.3.2)")
def query_temporal(request: Request, caller: READ) -> Response:
    st = state(request)
    media = neg.accepted(request)
    p = query_params(request, TEMPORAL_PARAMS)
    ctx = neg.request_context(request, st.resolver)
    limit, offset, count = paging(p, st.settings)
    caller = viewed(request, caller)
    page, total, sel = matching(request, caller, p, ctx, limit, offset, count, build=False)
    hint, opts = _temporal_hint(p, ctx, sel.keep if not isinstance(sel.keep, Omit) else None)
    src = st.tenants.source(request)
    history, content_range = _truncated(list(_history(src, caller, [e["id"] for e in page], hint, opts)), hint,
                                        opts, st.settings.ngsi_ld.max_instances)
    body = [_projected(_temporal_body(e, ctx, opts, p, bool(hint.aggr_methods)), sel, ctx) for e in history]
    audited(request, src, caller, history, sum(map(_instances, history)))
    headers = tenant_headers(request)
    if count:
        headers["NGSILD-Results-Count"] = str(total)
    if content_range:
        headers["Content-Range"] = content_range
    return neg.respond(body, media, ctx, request, status=206 if content_range else 200, headers=headers,
                       links=page_links(request, limit, offset, total, len(page)))


@router.get("/temporal/entities/{entityId}", summary="Retrieve the temporal evolution of an entity (§6.19.3.1)")
def retrieve_temporal(request: Request, entityId: str, caller: READ) -> Response:
    st = state(request)
    media = neg.accepted(request)
    p = query_params(request, TEMPORAL_PARAMS - {"limit", "offset", "count"})
    uri(entityId, "entity id")
    ctx = neg.request_context(request, st.resolver)
    src = st.tenants.source(request)
    caller = viewed(request, caller)
    if src.get(caller, entityId) is None:
        raise not_found(f"no entity {entityId}")
    sel = select({k: v for k, v in p.items() if k in ("attrs", "pick", "omit")}, ctx)
    hint, opts = _temporal_hint(p, ctx, sel.keep if not isinstance(sel.keep, Omit) else None)
    found, content_range = _truncated(list(_history(src, caller, [entityId], hint, opts)), hint, opts,
                                      st.settings.ngsi_ld.max_instances)
    if not found:
        raise not_found(f"no entity {entityId}")
    body = _projected(_temporal_body(found[0], ctx, opts, p, bool(hint.aggr_methods)), sel, ctx)
    audited(request, src, caller, found, sum(map(_instances, found)))
    headers = tenant_headers(request)
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
            e = existing(src, entity_id)
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
                current[name] = dict(latest) if cur is None else put_instance(cur, dict(latest))
        current["modifiedAt"] = now
        src.save(current, new_attrs={}, now=now)
        src.add_instances(current["id"], {k: v for k, v in history.items()}, now)
    notify(request, src, old, current)
    if entity_id is not None or old is not None:
        return neg.no_content()
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/temporal/entities/{current['id']}"})


@router.post("/temporal/entities", summary="Create or update a temporal representation (§6.18.3.1)")
async def create_temporal(request: Request, caller: WRITE) -> Response:
    query_params(request, {"local"})
    payload, ctx = await read_json(request)
    src = writable(request, create=True)
    return await run_in_threadpool(_temporal_write, request, src, payload, ctx, None)


@router.post("/temporal/entities/{entityId}/attrs", summary="Add temporal attribute instances (§6.20.3.1)")
async def append_temporal(request: Request, entityId: str, caller: WRITE) -> Response:
    query_params(request, {"local"})
    payload, ctx = await read_json(request)
    src = writable(request)
    return await run_in_threadpool(_temporal_write, request, src, payload, ctx, entityId)


@router.delete("/temporal/entities/{entityId}", status_code=204, summary="Delete a temporal representation")
def delete_temporal(request: Request, entityId: str, caller: WRITE) -> Response:
    return delete_entity(request, entityId, caller)


@router.delete("/temporal/entities/{entityId}/attrs/{attrId}", status_code=204,
               summary="Delete a temporal attribute (§6.21.3.1)")
def delete_temporal_attr(request: Request, entityId: str, attrId: str, caller: WRITE) -> Response:
    return drop_attr(request, entityId, attrId, temporal=True)


def _instance_op(request: Request, entity_id: str, attr_id: str, instance_id: str,
                 op: Callable[[SandboxSource, str, Context], bool], ctx: Context) -> Response:
    src = writable(request)
    name = ctx.expand(attr_id)
    with src.lock:
        existing(src, entity_id)
        if not op(src, name, ctx):
            raise not_found(f"no instance {instance_id} of {attr_id}")
    return neg.no_content()


@router.patch("/temporal/entities/{entityId}/attrs/{attrId}/{instanceId}", status_code=204,
              summary="Modify an attribute instance (§6.22.3.1)")
async def patch_instance(request: Request, entityId: str, attrId: str, instanceId: str,
                         caller: WRITE) -> Response:
    query_params(request, {"local"})
    payload, ctx = await read_json(request, patch=True)
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
    query_params(request, {"local"})
    ctx = neg.request_context(request, state(request).resolver)
    return _instance_op(request, entityId, attrId, instanceId,
                        lambda s, n, c: s.delete_instance(entityId, n, instanceId), ctx)


