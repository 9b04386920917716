"""A zone's hourly roll-up (issue 14): per UTC hour, how many devices of a kind reported a quantity in a zone and the
zones under it, with the mean, minimum and maximum of their values: the district view of the water network's
operator, read from the per-zone rollup (`clapas.store.zone_rollup`, ≈ 720 rows a month whatever the district's
size) instead of every meter's rows.

The roll-up pools every device of the kind in those zones, so it has the class of the most restrictive of them
(derived data, ../shared/domain-rules.md §8.9), and a caller who may not read that class gets none of it: for the
dwellings' meters (personal), an hourly mean, minimum or maximum over a few homes gives one of them away, and the
charter publishes nothing finer than a day (§8.2). Such a caller's district figures are the open aggregate,
`/api/v1/aggregates/water-consumption` (daily or coarser, at least `min_meters` meters, dominance and secondary
suppression: `clapas.charter.aggregates`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.charter import CallerView, denied
from clapas.api.errors import ApiError, errors
from clapas.api.rest import Mixed, StoreDep, _time, _window
from clapas.charter import OPEN, PERSONAL, most_restrictive
from clapas.charter.aggregates import ZoneTree
from clapas.model import QUANTITY_BY_KEY

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["catalogue"])

MAX_DAYS = 400  # one request: a year of hours and its neighbours (design, as `[charter.aggregates] max_days`)


def pooled_class(view: CallerView, groups: list[dict[str, Any]], quantity: str) -> str:
    """The class of a roll-up over these device groups (`Store.device_groups`): the most restrictive of theirs."""
    return most_restrictive(OPEN, *(view.classes.value(g, quantity) for g in groups))


@router.get("/zones/{zone}/series", summary="A zone's hourly roll-up of one quantity", responses=errors(401, 403, 404,
                                                                                                        422))
def zone_series(
    request: Request,
    store: StoreDep,
    caller: Mixed,
    zone: str,
    quantity: Annotated[str, Query(description="quantity key, e.g. water.volume")],
    kind: Annotated[str | None, Query(description="only devices of this kind, e.g. water_meter")] = None,
    from_: Annotated[str | None, Query(alias="from", description="ISO 8601 start (default: `to` − 24 h)",
                                       json_schema_extra={"format": "date-time"})] = None,
    to: Annotated[str | None, Query(description="ISO 8601 end, exclusive (default: now)",
                                    json_schema_extra={"format": "date-time"})] = None,
) -> Response:
    """Per UTC hour whose start is in [from, to): `devices` that reported, `count` of values, their `mean`, `min`
    and `max`, over the devices (of `kind`) of the zone and the zones under it. 401/403 when the caller may not read
    every device pooled (a district of dwellings' meters is personal: others get the open daily aggregate)."""
    q = QUANTITY_BY_KEY.get(quantity)
    if q is None:
        raise ApiError(404, f"unknown quantity {quantity!r} (see /api/v1/quantities)")
    tree = ZoneTree((z["id"], z.get("parent") or "") for z in store.zones())
    if zone not in tree.parent:
        raise ApiError(404, f"unknown zone {zone!r} (see /api/v1/zones)")
    start, end = _window(_time(from_, "from"), _time(to, "to"))
    if start >= end:
        raise ApiError(422, "query parameter 'from': must be before 'to'")
    if end - start > timedelta(days=MAX_DAYS):
        raise ApiError(422, f"at most {MAX_DAYS} days per request")
    zones = tree.subtree(zone)
    view = CallerView.of(request, caller)
    data_class = pooled_class(view, store.device_groups(zones=zones, kind=kind or None), quantity)
    if not view.may(data_class):
        if data_class == PERSONAL:
            raise denied(caller, "this zone's devices include dwellings' meters (personal data): its hourly roll-up "
                                 "needs a key with the personal:read scope; the open aggregate per district is "
                                 "/api/v1/aggregates/water-consumption (daily, k-anonymous)")
        raise denied(caller, f"this zone's roll-up is {data_class} data: it needs a key with the {data_class}:read "
                             "scope")
    points = store.zone_series(quantity, start, end, zones=zones, kind=kind or None)
    view.served_class = most_restrictive(view.served_class, data_class)
    view.report(request, len(points))
    return JSONResponse({"zone": zone, "zones": zones, "kind": kind or None, "quantity": quantity, "unit": q.unit,
                         "label": q.label, "resolution": "1h", "class": data_class, "from": start, "to": end,
                         "points": points})
