"""Open `WaterConsumptionObserved` entities per zone: the charter's published daily aggregates of the households'
meters (`clapas.charter.aggregates`: at least `min_meters`, no meter above `dominance_share`, secondary
suppression, a day at the finest), so that a caller without `personal:read` gets the water consumption through
aggregates, as on `/api/v1/aggregates/water-consumption`, and never a meter.

One entity per zone with a published cell on the last day served (`urn:ngsi-ld:WaterConsumptionObserved:zone:<zone>`;
`zone:city` for the whole city): `waterConsumption` (L, the day's total) observed at the day's end,
`dateObservedFrom`/`dateObservedTo` the local day, `areaServed` and the zone's geometry; scope `/open`. Suppressed
cells give no entity (the REST route says why).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clapas.api.aggregates import daily_groups, last_day_served
from clapas.api.ngsi_ld.city.context import expand
from clapas.api.ngsi_ld.city.entities import date_prop, entity_id, prop
from clapas.charter.aggregates import PUBLISHED, ROOT, AggregateSettings, ZoneTree, aggregate

TYPE = "WaterConsumptionObserved"
PREFIX = "zone:"
CITY = "city"


def zone_entities(store: Any, s: AggregateSettings, timezone: str, zones: Mapping[str, Mapping[str, Any]],
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """The published cells of the last day served, as entities, by id."""
    tz = ZoneInfo(timezone)
    last = last_day_served(s, tz, now)
    tree = ZoneTree((z, str(v.get("parent") or "")) for z, v in zones.items())
    days = daily_groups(store, s, tz, last, last + timedelta(days=1))
    start = datetime(last.year, last.month, last.day, tzinfo=tz)
    end = start + timedelta(days=1)
    end = datetime(end.year, end.month, end.day, tzinfo=tz)  # local midnight (a 23- or 25-hour day)
    out = []
    for c in aggregate(tree, days, "1d", s):
        if c.status != PUBLISHED or c.period != last:
            continue
        zone = zones.get(c.zone) or {}
        e: dict[str, Any] = {"id": entity_id(TYPE, PREFIX + (CITY if c.zone == ROOT else c.zone)), "type": expand(TYPE),
                             "scope": ["/open"]}
        if zone.get("geometry"):
            e[expand("location")] = {"type": "GeoProperty", "value": zone["geometry"]}
        e[expand("areaServed")] = prop(str(zone.get("name") or c.zone or CITY))
        e[expand("waterConsumption")] = prop(round(c.total * 1000), unit="L", at=end)
        e[expand("dateObservedFrom")] = date_prop(start)
        e[expand("dateObservedTo")] = date_prop(end)
        out.append(e)
    return sorted(out, key=lambda e: e["id"])
