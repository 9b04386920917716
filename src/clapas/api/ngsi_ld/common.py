"""What every NGSI-LD route shares: its charter declaration, its URL parameters, its JSON body, the tenant
header, the page it asks for, and small helpers on attribute instances (`datasetId`).

Public API (used by routes.py, writes.py, temporal_routes.py): `READ`, `WRITE`, the parameter sets, `state`,
`viewed`, `query_params`, `options_of`, `format_of`, `int_param`, `attr_list`, `uri`, `tenant_headers`, `page`,
`read_json`, `as_list`, `instance_of`, `put_instance`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Request

from clapas.api.access import serves
from clapas.api.ngsi_ld import entity as ent
from clapas.api.ngsi_ld import negotiation as neg
from clapas.api.ngsi_ld.context import Context
from clapas.api.ngsi_ld.errors import NgsiError, bad_request, invalid_request
from clapas.api.ngsi_ld.source import Entity
from clapas.charter import OPEN, PERSONAL, SANDBOX_WRITE, Caller

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


def audited(request: Request, src: Any, caller: Caller, served: Sequence[Entity], rows: int | None = None) -> None:
    """Tell the charter's audit log what a read served (`clapas.api.charter.CallerView.report`: rows, class, the
    EUIs of restricted and personal devices), when the tenant's source can say it (`served`, the city's); `rows`:
    the rows served when they are not the entities (a history's instances)."""
    count = getattr(src, "served", None)
    if count is not None:
        count(caller, served).report(request, len(served) if rows is None else rows)


def viewed(request: Request, caller: Caller) -> Any:
    """The caller as the tenant's source reads for it through one request: the city's, one charter view (it
    caches the registry rows it read and notes what the answer withheld, which `audited` then records); any
    other source, the caller itself."""
    view = getattr(state(request).tenants.source(request), "view", None)
    return view(caller) if view is not None else caller


def state(request: Request) -> Any:
    return request.app.state.ngsi_ld


def query_params(request: Request, allowed: Iterable[str]) -> dict[str, str]:
    allowed = set(allowed)
    out: dict[str, str] = {}
    for k, v in request.query_params.multi_items():
        if k not in allowed:
            raise invalid_request(f"unknown parameter {k!r}")
        out.setdefault(k, v)
    return out


def options_of(p: dict[str, str]) -> set[str]:
    return {o.strip() for o in p.get("options", "").split(",") if o.strip()}


def format_of(p: dict[str, str]) -> str:
    opts = options_of(p)
    fmt = p.get("format")
    if fmt is not None:
        if fmt not in ("normalized", "concise", "keyValues", "simplified", "temporalValues"):
            raise bad_request(f"format {fmt!r} is not normalized, concise, keyValues or simplified")
        return "keyValues" if fmt == "simplified" else fmt
    chosen = [o for o in ("keyValues", "simplified", "concise", "normalized") if o in opts]
    if len({("keyValues" if c == "simplified" else c) for c in chosen}) > 1:
        raise bad_request("options may name only one of keyValues, concise, normalized")
    return "keyValues" if chosen and chosen[0] == "simplified" else (chosen[0] if chosen else "normalized")


def int_param(p: dict[str, str], name: str, default: int | None, low: int = 0) -> int | None:
    if name not in p:
        return default
    try:
        v = int(p[name])
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if v < low:
        raise bad_request(f"{name} must be at least {low}")
    return v


def attr_list(text: str | None, ctx: Context) -> frozenset[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise bad_request("an empty list of attributes")
    return frozenset(ctx.expand(n) for n in names)


def uri(value: str, what: str) -> str:
    if not ent.is_uri(value):
        raise bad_request(f"{what} {value!r} is not a URI")
    return value



def tenant_headers(request: Request) -> dict[str, str]:
    t = request.headers.get("NGSILD-Tenant")
    return {"NGSILD-Tenant": t} if t else {}


def paging(p: dict[str, str], settings: Any) -> tuple[int, int, bool]:
    limit = int_param(p, "limit", settings.ngsi_ld.default_limit)
    offset = int_param(p, "offset", 0)
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


def page_links(request: Request, limit: int, offset: int, total: int | None, got: int) -> list[str]:
    """The pagination Link header values (§5.5.9: rel="prev" and rel="next", the same query at the neighbouring
    offsets): next when more entities match (`total`; unknown, when the page is full), prev after the first page."""
    links: list[str] = []
    if limit <= 0:
        return links

    def at(o: int, rel: str) -> str:
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "offset"] + [("offset", o)])
        return f'<{request.url.path}?{query}>; rel="{rel}"; type="application/ld+json"'

    if offset > 0:
        links.append(at(max(0, offset - limit), "prev"))
    if (total > offset + limit) if total is not None else got >= limit:
        links.append(at(offset + limit, "next"))
    return links


def as_list(attr: Any) -> list[Any]:
    return attr if isinstance(attr, list) else [attr]


def instance_of(attr: Any, dataset_id: str | None) -> dict[str, Any] | None:
    for a in attr if isinstance(attr, list) else [attr]:
        if isinstance(a, dict) and a.get("datasetId") == dataset_id:
            return a
    return None


def put_instance(current: Any, new: dict[str, Any]) -> Any:
    """An attribute with `new` replacing the instance of the same datasetId (or added beside the others)."""
    insts = [a for a in (current if isinstance(current, list) else [current])
             if a.get("datasetId") != new.get("datasetId")]
    insts.append(new)
    return insts[0] if len(insts) == 1 else insts


async def read_json(request: Request, *, patch: bool = False, array: bool = False,
                    per_item: bool = False) -> tuple[Any, Context]:
    """A write's body and context (negotiation.read_body; `per_item`: each array item's own @context)."""
    neg.accepted(request)  # a write answers JSON when it answers a body: Accept must allow it
    payload, ctx, _ = await neg.read_body(request, state(request).resolver, patch=patch, array=array,
                                          per_item=per_item)
    return payload, ctx


def types_of(e: Entity) -> list[str]:
    t = e.get("type")
    return list(t) if isinstance(t, list) else [t]
