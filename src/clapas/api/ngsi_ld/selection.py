"""Which entities a request selects and how each is shown: filters (type, id, idPattern, q, scopeQ, geo, attrs),
projections (attrs, pick/omit nested on linked entities, §4.21), representations (normalized, concise,
keyValues, GeoJSON Feature) and linked entity retrieval (join=inline|flat, joinLevel, §4.5.23).

Public API: `Selection`, `Omit`, `select`, `kept`, `represent`, `joined`, `paged`, `matching`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from clapas.api.ngsi_ld import entity as ent
from clapas.api.ngsi_ld import negotiation as neg
from clapas.api.ngsi_ld.common import as_list, attr_list, format_of, int_param, options_of, state, uri
from clapas.api.ngsi_ld.context import Context
from clapas.api.ngsi_ld.errors import bad_request
from clapas.api.ngsi_ld.geo import GeoQuery, parse_geo
from clapas.api.ngsi_ld.ordering import Order, parse_order
from clapas.api.ngsi_ld.query import Predicate, Tree, parse_projection, parse_q, parse_scope_q, parse_types
from clapas.api.ngsi_ld.source import Entity, EntitySource, Hint
from clapas.charter import Caller


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
    # the filters an entity's head (id, type, scope) decides: type, id, idPattern, scopeQ (a subset of preds)
    head_preds: list[Predicate] = field(default_factory=list)
    order: Order | None = None  # orderBy (None: by id)

    def match(self, e: Entity) -> bool:
        return all(p(e) for p in self.preds)

    def match_head(self, head: Entity) -> bool:
        return all(p(head) for p in self.head_preds)

    @property
    def by_head(self) -> bool:
        """Whether the heads decide the whole selection (no q, geo-query nor attrs: those need the entity)."""
        return len(self.head_preds) == len(self.preds)

    def also(self, pred: Predicate, *, head: bool = False) -> None:
        """One more filter (`head`: decided by an entity's id, type and scope)."""
        self.preds.append(pred)
        if head:
            self.head_preds.append(pred)

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
        left_out = Omit(k for k, v in tree.items() if v is None and k not in ("id", "type"))
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
    attrs = attr_list(p.get("attrs"), ctx)
    return Selection(Hint(), [], attrs), attrs


class Omit(frozenset):  # type: ignore[type-arg]
    """Attributes left out (pick's complement)."""


def select(p: dict[str, str], ctx: Context, *, entity_id: str | None = None) -> Selection:
    preds: list[Predicate] = []
    types = ids = None
    id_pattern = None
    if "type" in p:
        pred, types = parse_types(p["type"], ctx)
        preds.append(pred)
    if "id" in p:
        ids = frozenset(uri(i.strip(), "id") for i in p["id"].split(",") if i.strip())
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
    if "scopeQ" in p:
        preds.append(parse_scope_q(p["scopeQ"]))
    heads = len(preds)  # the filters so far are decided by an entity's head (type, id, idPattern, scopeQ)
    if "q" in p:
        preds.append(parse_q(p["q"], ctx))
    geo: GeoQuery | None = parse_geo(p.get("georel"), p.get("geometry"), p.get("coordinates"),
                                     p.get("geoproperty"), ctx)
    if geo is not None:
        preds.append(geo.matches)
    proj, need = _projection(p, ctx)
    if need is not None:
        preds.append(lambda e, need=need: any(a in e for a in need))
    proj.hint = Hint(types=types, ids=ids, id_pattern=id_pattern, attrs=need, bbox=geo.bbox() if geo else None)
    proj.preds = preds
    proj.head_preds = preds[:heads]
    if "orderBy" in p:
        proj.order = parse_order(p["orderBy"], ctx, geo, p.get("collation"))
    return proj


def kept(entity: Entity, keep: frozenset[str] | None) -> Iterable[str] | None:
    if keep is None:
        return None
    if isinstance(keep, Omit):
        return [k for k in entity if k not in keep]
    return keep


def _datasets(e: Entity, wanted: str) -> Entity:
    """Only the attribute instances of these datasetIds (`@none`: the default instance), §4.5.5."""
    ids = {i.strip() for i in wanted.split(",") if i.strip()}
    out: Entity = {}
    for k, v in e.items():
        if k in ("id", "type", "scope", "createdAt", "modifiedAt") or not isinstance(v, dict | list):
            out[k] = v
            continue
        keep = [a for a in as_list(v) if isinstance(a, dict) and a.get("datasetId", "@none") in ids]
        if keep:
            out[k] = keep[0] if len(keep) == 1 else keep
    return out


def represent(e: Entity, sel: Selection, ctx: Context, p: dict[str, str], media: str) -> dict[str, Any]:
    """An entity as the request asks: format, sysAttrs, lang, datasetId, projection, GeoJSON Feature."""
    fmt = format_of(p)
    opts = options_of(p)
    if "datasetId" in p:
        e = _datasets(e, p["datasetId"])
    body = ent.compact_entity(e, ctx, fmt, sys_attrs="sysAttrs" in opts, lang=p.get("lang"),
                              keep=kept(e, sel.keep))
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
    level = int_param(p, "joinLevel", 1, low=1)
    assert level is not None
    return (None if join == "@none" else join), level


def _objects(e: Entity) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(attribute IRI, relationship instance, linked ids) of an entity's relationships."""
    out = []
    for name, attr in e.items():
        if name in ("id", "type", "scope", "createdAt", "modifiedAt"):
            continue
        for inst in as_list(attr):
            if isinstance(inst, dict) and inst.get("type") in (ent.RELATIONSHIP, ent.LISTREL):
                obj = inst.get("object", inst.get("objectList"))
                ids = [o for o in as_list(obj) if isinstance(o, str)]
                if ids:
                    out.append((name, inst, ids))
    return out


def _inline(e: Entity, body: dict[str, Any], sel: Selection, src: EntitySource, caller: Caller, ctx: Context,
            p: dict[str, str], level: int, seen: frozenset[str]) -> None:
    """Each Relationship of `body` with its linked entities (`entity`; the entity itself in keyValues)."""
    kv = format_of(p) == "keyValues"
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
                if sub is None or (s.keep is not None and name not in (kept(e, s.keep) or ())):
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


def joined(entities: list[Entity], bodies: list[dict[str, Any]], sel: Selection, request: Request, caller: Caller,
            ctx: Context, p: dict[str, str], media: str) -> list[dict[str, Any]]:
    join, level = _join(p)
    if join is None or media == neg.GEO_JSON:
        return bodies
    src = state(request).tenants.source(request)
    if join == "inline":
        for e, b in zip(entities, bodies, strict=True):
            _inline(e, b, sel, src, caller, ctx, p, level, frozenset([e["id"]]))
        return bodies
    return bodies + [represent(x, s, ctx, p, media) for x, s in _flat(entities, sel, src, caller, ctx, level)]


CHUNK = 200  # entities built at a time when a filter needs them (q, a geo-query, attrs): a page's worth


def paged(src: EntitySource, caller: Caller, sel: Selection, limit: int, offset: int, count: bool, *,
          build: bool = True) -> tuple[list[Entity], int | None]:
    """A page of the entities a selection matches, in its order (`orderBy`, else by id), and how many match in all
    (None when that is not known without building them all and `count` is false).

    A source with `listing` and `build` (the city's) lists its entities' heads first (id, type, scope: the
    charter's view, so withheld entities are neither listed nor counted) and builds only what the page needs: the
    page's entities when the heads decide the selection (the count is the heads'), else entities a chunk at a time
    until the page is full (all of them with `count`). An order needs values: when the heads decide, the source's
    `values` gives the ordered attributes of every listed entity (in one read, none built), the heads are sorted,
    and only the page is built; else every match is built and sorted. `build=False`: the page's heads suffice (a
    temporal query needs only ids) when the heads decide. Any other source's candidates are all filtered, sorted,
    then paged."""
    listing, builder = getattr(src, "listing", None), getattr(src, "build", None)
    order = sel.order
    if listing is None or builder is None:
        found = [e for e in src.candidates(caller, sel.hint) if sel.match(e)]
        found = order.sort(found) if order is not None else found
        return found[offset:offset + limit], len(found)
    heads = [h for h in listing(caller, sel.hint) if sel.match_head(h)]
    if sel.by_head and (order is None or getattr(src, "values", None) is not None):
        if order is not None:
            values = src.values(caller, [h["id"] for h in heads], order.attrs)  # type: ignore[attr-defined]
            heads = order.sort([{**values.get(h["id"], {}), **h} for h in heads])
        page = [{k: h[k] for k in ("id", "type", "scope") if k in h} for h in heads[offset:offset + limit]]
        return (builder(caller, [h["id"] for h in page]) if build and page else page), len(heads)
    matched: list[Entity] = []
    for i in range(0, len(heads), CHUNK):
        chunk = builder(caller, [h["id"] for h in heads[i:i + CHUNK]])
        matched.extend(e for e in chunk if sel.match(e))
        if order is None and not count and len(matched) >= offset + limit:
            return matched[offset:offset + limit], None
    matched = order.sort(matched) if order is not None else matched
    return matched[offset:offset + limit], len(matched)


def matching(request: Request, caller: Caller, p: dict[str, str], ctx: Context, limit: int, offset: int,
             count: bool, *, build: bool = True) -> tuple[list[Entity], int | None, Selection]:
    """A GET query's page (`paged`), its count, and its selection; 400 when it names nothing to select by."""
    st = state(request)
    src = st.tenants.source(request)
    if not any(k in p for k in ("type", "id", "idPattern", "attrs", "q", "georel", "scopeQ", "pick")) and \
            p.get("local") != "true":
        raise bad_request("a query needs at least one of type, id, idPattern, attrs, q, georel (§5.7.2)")
    sel = select(p, ctx)
    page, total = paged(src, caller, sel, limit, offset, count, build=build)
    return page, total, sel
