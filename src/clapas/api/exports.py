"""Open-data exports and the DCAT-AP catalogue over HTTP (issue 11).

`GET /api/v1/exports` lists the datasets; `GET /api/v1/exports/{dataset}?format=csv|csv-fr|geojson|parquet&zone=
&since=&until=` streams one (a StreamingResponse fed chunk by chunk from the store: memory stays flat whatever the
period); `GET /api/v1/exports/{dataset}/schema` is its Table Schema; `GET /api/v1/catalog` the DCAT-AP catalogue,
JSON-LD or Turtle by `Accept` or `format=`. Exports go through the charter like every read
(`clapas.opendata.source`): the audit log records what an export served once it has been sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from clapas.api import JSONResponse
from clapas.api.access import serves
from clapas.api.charter import ALL_DEVICES, classifier, denied
from clapas.api.errors import ApiError, errors
from clapas.api.language import Language, tag
from clapas.api.rest import _time
from clapas.charter import EXPORT_BULK, OPEN, PERSONAL, Caller
from clapas.opendata import formats
from clapas.opendata.catalog import MEDIA, CatalogBuilder, dataset_class, serialize
from clapas.opendata.datasets import Dataset, UnknownDataset, datasets, resolve
from clapas.opendata.settings import OpenDataSettings
from clapas.opendata.source import Export, UnknownZone, export, period
from clapas.opendata.tableschema import table_schema

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["open data"])

_FILE_TYPES = {f.media_type: {} for f in formats.FORMATS.values()}


def _settings(request: Request) -> OpenDataSettings:
    s = getattr(request.app.state.settings, "open_data", None)
    return s if isinstance(s, OpenDataSettings) else OpenDataSettings()


def base_url(request: Request) -> str:
    return _settings(request).base_url or str(request.base_url).rstrip("/")


def _dataset(request: Request, name: str) -> Dataset:
    store = request.app.state.store
    kinds = {d.get("kind") for d in store.devices(limit=ALL_DEVICES)} - {None, ""}
    try:
        return resolve(name, _settings(request), kinds)
    except UnknownDataset as e:
        raise ApiError(404, str(e)) from None


@router.get("/exports", summary="The datasets one may export (open data and published aggregates)")
def list_exports(request: Request, caller: Annotated[Caller, serves(OPEN, derived=True)]) -> Response:
    """Each dataset with its class, whether this caller may export it, and its download URLs per format; titles
    and descriptions in French and English. CSV column headers are stable machine names (the Table Schema describes
    them in either language)."""
    s, classes, base = _settings(request), classifier(request), base_url(request)
    out = []
    for ds in datasets(s).values():
        c = dataset_class(ds, classes)
        urls = {f.id: f"{base}/api/v1/exports/{ds.id}?format={f.id}" for f in formats.FORMATS.values()
                if ds.geo or f.id != "geojson"}
        out.append({"id": ds.id, "type": ds.type, "title": {"fr": ds.title_fr, "en": ds.title_en},
                    "description": {"fr": ds.description_fr, "en": ds.description_en},
                    "kinds": list(ds.kinds), "class": c,
                    "exportable": c == OPEN or (caller.may_read(c) and caller.can(EXPORT_BULK)),
                    "licence": ds.licence or s.licence, "formats": urls})
    return JSONResponse({"datasets": out, "catalog": f"{base}/api/v1/catalog"})


def _stream(request: Request, ex: Export, fmt: str) -> Iterator[bytes]:
    """The file, piece by piece; the audit log's row count follows what has been sent."""
    state = request.state
    for piece in formats.encode(fmt, ex.columns, ex.chunks()):
        state.audit_rows = ex.rows
        yield piece
    state.audit_rows = ex.rows


@router.get("/exports/{dataset}", summary="Export a dataset (CSV, French CSV, GeoJSON, Parquet), streamed",
            response_class=StreamingResponse, responses={200: {"content": _FILE_TYPES}, **errors(401, 403, 404, 422)})
def export_dataset(
    request: Request,
    dataset: str,
    caller: Annotated[Caller, serves(PERSONAL, derived=True)],
    format: Annotated[str, Query(description=f"one of {', '.join(formats.FORMATS)}")] = "csv",
    zone: Annotated[str | None, Query(description="only this zone and the zones under it")] = None,
    since: Annotated[str | None, Query(description="ISO 8601, inclusive (default: `default_days` before "
                                       "`until`)", json_schema_extra={"format": "date-time"})] = None,
    until: Annotated[str | None, Query(description="ISO 8601, exclusive (default: now)",
                                       json_schema_extra={"format": "date-time"})] = None,
) -> Response:
    """Observations of a dataset (a use such as `weather`, or a device kind), the registry (`devices`), the zones
    (`zones`) or the open aggregate (`water-consumption`), with what the caller may read: open rows for everyone,
    restricted and personal rows for keys with their read scope and `export:bulk`; devices left out are counted in
    the `X-Withheld-Devices` header. Times in UTC."""
    s = _settings(request)
    try:
        fmt = formats.get(format)
    except formats.UnknownFormat as e:
        raise ApiError(422, f"query parameter 'format': {e}") from None
    ds = _dataset(request, dataset)
    if fmt.id == "geojson" and not ds.geo:
        raise ApiError(422, f"the dataset {ds.id!r} has no positions: use csv, csv-fr or parquet")
    try:
        start, end = period(_time(since, "since"), _time(until, "until"), s.default_days)
    except OverflowError:
        raise ApiError(422, "query parameters 'since'/'until': out of range") from None
    if start >= end:
        raise ApiError(422, "query parameter 'since': must be before 'until'")
    if end - start > timedelta(days=s.max_days):
        raise ApiError(422, f"at most {s.max_days} days per export (open_data.max_days)")
    c = dataset_class(ds, classifier(request))
    if c != OPEN and caller.may_read(c) and not caller.can(EXPORT_BULK):
        raise denied(caller, f"exporting {c} data needs the scope export:bulk besides {c}:read")
    try:
        ex = export(request.app.state.store, caller, classifier(request), ds, start=start, end=end, zone=zone,
                    settings=request.app.state.settings, chunk_rows=s.chunk_rows)
    except UnknownZone as e:
        raise ApiError(404, str(e)) from None
    view = ex.view
    request.state.audit_rows = 0
    request.state.audit_subjects = sorted(view.subjects)
    request.state.audit_class = view.served_class
    request.state.audit_withheld = view.withheld
    name = f"{ds.id}_{start:%Y%m%d}_{end:%Y%m%d}.{fmt.extension}"
    media = fmt.media_type + ("; charset=utf-8" if fmt.media_type.startswith("text/") else "")
    if fmt.id.startswith("csv"):
        media += "; header=present"
    return StreamingResponse(_stream(request, ex, fmt.id), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Withheld-Devices": str(view.withheld)})


@router.get("/exports/{dataset}/schema", summary="The Table Schema of a dataset's exports",
            responses=errors(404))
def export_schema(request: Request, dataset: str, caller: Annotated[Caller, serves(OPEN)],
                  lang: Language) -> Response:
    """Frictionless Table Schema (the format of schema.data.gouv.fr) of the CSV and Parquet exports. Column names
    are stable machine names whatever the language; titles and descriptions in the language asked (`lang`, else
    `Accept-Language`, else the city's)."""
    ds = _dataset(request, dataset)
    return tag(JSONResponse(table_schema(ds, _settings(request), base_url(request), lang)), lang)


def catalog_format(request: Request, fmt: str | None) -> str:
    """`format=` (turtle|ttl|jsonld|json-ld), else the Accept header; JSON-LD by default."""
    if fmt:
        key = {"ttl": "turtle", "turtle": "turtle", "jsonld": "jsonld", "json-ld": "jsonld", "json": "jsonld"}.get(
            fmt.lower())
        if key is None:
            raise ApiError(422, "query parameter 'format': one of jsonld, turtle")
        return key
    accept = request.headers.get("accept", "")
    best: tuple[float, str] = (0.0, "jsonld")
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        media = media.strip().lower()
        key = "turtle" if media in ("text/turtle", "application/x-turtle") else \
            "jsonld" if media in ("application/ld+json", "application/json") else None
        if key and q > best[0]:
            best = (q, key)
    return best[1]


@router.get("/catalog", summary="The DCAT-AP catalogue of the city's datasets (JSON-LD or Turtle)",
            responses={200: {"content": {"application/ld+json": {}, "text/turtle": {}}}, **errors(422)})
def catalog(request: Request, caller: Annotated[Caller, serves(OPEN)],
            format: Annotated[str | None, Query(description="jsonld or turtle (default: by Accept, "
                                                "else JSON-LD)")] = None) -> Response:
    """DCAT-AP 2.1.1: the catalogue, its datasets (not the personal ones; restricted ones with their access
    rights), their distributions per export format, licences, coverage and the export API, for open-data portals
    (data.gouv.fr, data.europa.eu) to harvest."""
    fmt = catalog_format(request, format)
    store = request.app.state.store
    settings = request.app.state.settings
    agg = getattr(getattr(settings, "charter", None), "aggregates", None)
    g = CatalogBuilder(_settings(request), classifier(request), store.devices(limit=ALL_DEVICES), store.zones(),
                       base_url(request), extent=store.observation_extent(),
                       aggregate_kinds=getattr(agg, "kinds", ["water_meter"])).build()
    return Response(serialize(g, fmt), media_type=MEDIA[fmt] + "; charset=utf-8", headers={"Vary": "Accept"})
