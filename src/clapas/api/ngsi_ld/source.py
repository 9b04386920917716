"""The seam between the NGSI-LD protocol layer and the tenants that hold entities.

The protocol layer (context, content negotiation, errors, `q`/`scopeQ`/geo filters, representations, pagination,
routes) is tenant-blind: it asks an `EntitySource` for candidate entities and applies every filter itself. Two
sources exist: the city's tenant (read-only, built from clapas's store with the Smart Data Models, through the data
charter) and the sandbox tenant (writable, its own storage).

Entities cross this seam in *expanded normalized* form: `id` (a URI), `type` (an expanded IRI, or a list of them),
optional `scope` (list of strings), and every attribute keyed by its expanded IRI (core-context attributes too:
`https://uri.etsi.org/ngsi-ld/location`), each attribute a dict (or a list of dicts, one per `datasetId`) with the
NGSI-LD members under their core terms: `type` ("Property", "Relationship", "GeoProperty", "LanguageProperty",
"VocabProperty", "JsonProperty", "ListProperty"), `value` / `object` / `languageMap` / `vocab` / `json`,
`observedAt`, `unitCode`, `datasetId`, `createdAt`, `modifiedAt`, and sub-attributes keyed by expanded IRI.
Times are ISO 8601 UTC strings ending in `Z`.

A source whose entities are costly to build may also offer `listing(caller, hint)` and `build(caller, ids)`
(the city's does): `listing` gives the *heads* (`id`, `type`, `scope` only) of exactly the entities `candidates`
would give for the hint's types and ids (attrs and bbox not applied), by id; `build` gives the entities of some of
those ids, in that order. The protocol layer then pages the heads and builds only a page (`selection.paged`).

A source that serves classed data may also offer `served(caller, entities)`, returning the charter's
`CallerView` that counted what an answer served (the routes hand it to the audit log: `common.audited`); the
city's does, the sandbox (open data of its own) does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Entity = dict[str, Any]


@dataclass(frozen=True)
class Hint:
    """What a source may use to narrow its candidates; the protocol layer still applies the full filters."""

    types: frozenset[str] | None = None  # expanded type IRIs any of which a candidate has (None: any)
    ids: frozenset[str] | None = None
    id_pattern: str | None = None  # a regular expression on the id
    attrs: frozenset[str] | None = None  # expanded attribute IRIs of which a candidate has at least one
    bbox: tuple[float, float, float, float] | None = None  # (min lon, min lat, max lon, max lat) enclosing a geo-query


@dataclass(frozen=True)
class TemporalHint:
    """A temporal request: one time range (already resolved from timerel/timeAt/endTimeAt) and what to return."""

    start: datetime | None
    end: datetime | None
    last_n: int | None = None
    attrs: frozenset[str] | None = None  # expanded attribute IRIs (None: all)
    aggr_methods: tuple[str, ...] = ()  # NGSI-LD names: totalCount, distinctCount, sum, avg, min, max, stddev, ...
    aggr_period_s: float | None = None  # from aggrPeriodDuration; None with methods: one period over the range


class EntitySource(Protocol):
    """One tenant's entities, as one caller may read them (`caller` is the charter's view of the request)."""

    writable: bool

    def candidates(self, caller: Any, hint: Hint) -> Iterator[Entity]:
        """Entities that may match `hint`, in a stable order (by id), as the caller may see them."""
        ...

    def get(self, caller: Any, entity_id: str) -> Entity | None:
        """One entity, or None when it does not exist or the caller may not know it exists."""
        ...

    def history(self, caller: Any, entity_ids: Sequence[str], query: TemporalHint) -> Iterator[Entity]:
        """Temporal representation (expanded): per attribute a list of instances, each with `value` and
        `observedAt` (newest last); with `aggr_methods`, per attribute `{"type": "Property", method: [[value,
        start, end], ...]}` as the spec's aggregated temporal representation."""
        ...
