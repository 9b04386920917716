"""The DCAT-AP catalogue of the city's datasets (DCAT-AP 2.1.1, what data.gouv.fr and European portals harvest).

One dcat:Catalog; per dataset a dcat:Dataset with dct:identifier, titles and descriptions in French and English
(language-tagged literals, `"…"@fr` and `"…"@en`, as every human-facing text of the catalogue: distributions,
schemas, the export API; `clapas.i18n` holds the generated ones), keywords in each language, EU data themes,
publisher (foaf:Agent), contact point (vcard:Kind), update frequency (EU frequency vocabulary), access rights
(EU access-right vocabulary), spatial coverage (bbox, centroid and GeoJSON of the city's zones), temporal coverage
(first and last observation of the dataset's kinds, from the store), the schema it conforms to (its Table Schema,
`/api/v1/exports/{id}/schema`), and one dcat:Distribution per export format with accessURL, downloadURL, IANA media
type, EU file type and licence; plus the export API as a dcat:DataService.
Personal datasets never appear (their open aggregate does); restricted ones only with `list_restricted`.
tests/opendata/test_catalog.py validates the graph against the DCAT-AP SHACL shapes with pySHACL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from clapas.charter import OPEN, PERSONAL, RESTRICTED, most_restrictive
from clapas.charter.classes import Classifier
from clapas.i18n import EMPTY, LANGUAGES, T, render
from clapas.opendata import formats
from clapas.opendata.datasets import AGGREGATE, COUNT_SCHEMA, COUNTS, OBSERVATIONS, Dataset, datasets
from clapas.opendata.settings import LICENCES, OpenDataSettings

VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
EU = "http://publications.europa.eu/resource/authority/"
ADMS_LICENCE = "http://purl.org/adms/licencetype/"
ADMS_PUBLISHER = "http://purl.org/adms/publishertype/"
IANA = "https://www.iana.org/assignments/media-types/"
ACCESS = {OPEN: "PUBLIC", RESTRICTED: "RESTRICTED", PERSONAL: "NON_PUBLIC"}
MEDIA = {"turtle": "text/turtle", "jsonld": "application/ld+json"}
CONTEXT = {"dcat": str(DCAT), "dct": str(DCTERMS), "foaf": str(FOAF), "vcard": str(VCARD), "locn": str(LOCN),
           "gsp": str(GSP), "dcatap": str(DCATAP), "skos": str(SKOS), "xsd": str(XSD)}


def _bbox(geometries: Iterable[Any]) -> tuple[float, float, float, float] | None:
    """lon/lat bounds of GeoJSON geometries (any nesting of coordinates)."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if isinstance(c, list | tuple) and len(c) >= 2 and all(isinstance(v, int | float) for v in c[:2]):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        elif isinstance(c, list | tuple):
            for v in c:
                walk(v)

    for g in geometries:
        if isinstance(g, dict):
            walk(g.get("coordinates"))
            for sub in g.get("geometries") or ():
                walk((sub or {}).get("coordinates"))
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


def _wkt_box(b: tuple[float, float, float, float]) -> str:
    x0, y0, x1, y1 = b
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def _when(t: datetime) -> Literal:
    return Literal(t.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"), datatype=XSD.dateTime)


def dataset_class(ds: Dataset, classes: Classifier) -> str:
    """What a dataset holds at most: its kinds' class (aggregates, zones: open; the registry: what it lists)."""
    if ds.type in (OBSERVATIONS, COUNTS):
        return most_restrictive(*(classes.kind(k) for k in ds.kinds)) if ds.kinds else RESTRICTED
    return OPEN


class CatalogBuilder:
    """The catalogue graph of one city: its settings, its registry and zones (read once)."""

    def __init__(self, settings: OpenDataSettings, classes: Classifier, devices: list[dict[str, Any]],
                 zones: list[dict[str, Any]], base_url: str, *, extent: dict[str, tuple[datetime, datetime]],
                 aggregate_kinds: Iterable[str] = ("water_meter",), now: datetime | None = None) -> None:
        """`extent`: per device kind, its first and last observation (`Store.observation_extent`)."""
        self.s, self.classes, self.devices, self.zones, self.extent = settings, classes, devices, zones, extent
        self.base = base_url.rstrip("/")
        self.aggregate_kinds = tuple(aggregate_kinds)
        self.now = now or datetime.now(UTC)
        self.g = Graph()
        for prefix, ns in CONTEXT.items():
            self.g.bind(prefix, ns)

    # shared nodes ----------------------------------------------------------------------------------------
    def _publisher(self) -> URIRef | BNode:
        node = URIRef(self.s.publisher_url) if self.s.publisher_url else BNode("publisher")
        g = self.g
        g.add((node, RDF.type, FOAF.Agent))
        g.add((node, RDF.type, FOAF.Organization))
        g.add((node, FOAF.name, Literal(self.s.publisher)))
        g.add((node, DCTERMS.type, URIRef(ADMS_PUBLISHER + self.s.publisher_type)))
        return node

    def _contact(self) -> BNode:
        node, g, s = BNode("contact"), self.g, self.s
        g.add((node, RDF.type, VCARD.Kind))
        g.add((node, RDF.type, VCARD.Organization))
        g.add((node, VCARD.fn, Literal(s.contact_name or s.publisher)))
        if s.contact_email:
            g.add((node, VCARD.hasEmail, URIRef(f"mailto:{s.contact_email}")))
        if s.contact_url or s.publisher_url:
            g.add((node, VCARD.hasURL, URIRef(s.contact_url or s.publisher_url)))
        return node

    def _licence(self, key: str) -> URIRef:
        lic = LICENCES[key or self.s.licence]
        node, g = URIRef(lic.url), self.g
        g.add((node, RDF.type, DCTERMS.LicenseDocument))
        g.add((node, DCTERMS.title, Literal(lic.title)))
        g.add((node, DCTERMS.identifier, Literal(lic.spdx)))
        for t in lic.types:
            g.add((node, DCTERMS.type, URIRef(ADMS_LICENCE + t)))
        return node

    def _location(self, geometries: list[Any]) -> BNode | None:
        box = _bbox(geometries)
        if box is None:
            return None
        node, g = BNode(), self.g
        g.add((node, RDF.type, DCTERMS.Location))
        g.add((node, DCAT.bbox, Literal(_wkt_box(box), datatype=GSP.wktLiteral)))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        g.add((node, DCAT.centroid, Literal(f"POINT({cx} {cy})", datatype=GSP.wktLiteral)))
        geo = {"type": "Polygon", "coordinates": [[[box[0], box[1]], [box[2], box[1]], [box[2], box[3]],
                                                   [box[0], box[3]], [box[0], box[1]]]]}
        g.add((node, LOCN.geometry, Literal(json.dumps(geo), datatype=GSP.geoJSONLiteral)))
        return node

    def _city_geometries(self) -> list[Any]:
        zones = [z["geometry"] for z in self.zones if z.get("geometry")]
        if zones:
            return zones
        return [{"type": "Point", "coordinates": [d["lon"], d["lat"]]} for d in self.devices
                if d.get("lat") is not None and d.get("lon") is not None and self.classes.device(d) == OPEN]

    def _period(self, kinds: Iterable[str] | None) -> BNode | None:
        """The first and last observation of these kinds (None: of every kind)."""
        spans = [v for k, v in self.extent.items() if kinds is None or k in kinds]
        if not spans:
            return None
        node, g = BNode(), self.g
        g.add((node, RDF.type, DCTERMS.PeriodOfTime))
        g.add((node, DCAT.startDate, _when(min(a for a, _ in spans))))
        g.add((node, DCAT.endDate, _when(max(b for _, b in spans))))
        return node

    # datasets -----------------------------------------------------------------------------------------
    def _devices_of(self, ds: Dataset) -> list[dict[str, Any]]:
        kinds = ds.kinds if ds.type in (OBSERVATIONS, COUNTS) else self.aggregate_kinds if ds.type == AGGREGATE \
            else ()
        return [d for d in self.devices if d.get("kind") in kinds] if kinds else self.devices

    def listed(self) -> list[tuple[Dataset, str]]:
        """The datasets the catalogue describes, with their class."""
        out = []
        for ds in datasets(self.s).values():
            c = dataset_class(ds, self.classes)
            if c == PERSONAL or (c == RESTRICTED and not self.s.list_restricted):
                continue
            if ds.type in (OBSERVATIONS, COUNTS) and not self._devices_of(ds):
                continue  # no device of these kinds in the city: nothing to publish
            out.append((ds, c))
        return out

    def export_url(self, ds: Dataset) -> str:
        return f"{self.base}/api/v1/exports/{ds.id}"

    def _dataset(self, ds: Dataset, data_class: str, catalog: URIRef, publisher: Any, contact: Any,
                 city: BNode | None) -> URIRef:
        g, s = self.g, self.s
        node = URIRef(f"{catalog}#{ds.id}")
        g.add((catalog, DCAT.dataset, node))
        g.add((node, RDF.type, DCAT.Dataset))
        g.add((node, DCTERMS.identifier, Literal(str(node))))
        g.add((node, DCTERMS.title, Literal(ds.title_fr, lang="fr")))
        g.add((node, DCTERMS.title, Literal(ds.title_en, lang="en")))
        g.add((node, DCTERMS.description, Literal(ds.description_fr, lang="fr")))
        g.add((node, DCTERMS.description, Literal(ds.description_en, lang="en")))
        for k in ds.keywords:
            g.add((node, DCAT.keyword, Literal(k, lang="fr")))
        for k in ds.keywords_en:
            g.add((node, DCAT.keyword, Literal(k, lang="en")))
        for t in ds.themes:
            g.add((node, DCAT.theme, URIRef(f"{EU}data-theme/{t}")))
        g.add((node, DCTERMS.publisher, publisher))
        g.add((node, DCAT.contactPoint, contact))
        g.add((node, DCTERMS.accrualPeriodicity, URIRef(f"{EU}frequency/{ds.frequency or s.frequency}")))
        g.add((node, DCTERMS.accessRights, URIRef(f"{EU}access-right/{ACCESS[data_class]}")))
        g.add((node, DCTERMS.language, URIRef(f"{EU}language/FRA")))
        if city is not None:  # the city's zones (or its open sensors): what every dataset covers
            g.add((node, DCTERMS.spatial, city))
        kinds = ds.kinds if ds.type in (OBSERVATIONS, COUNTS) else self.aggregate_kinds if ds.type == AGGREGATE \
            else None
        period = self._period(kinds)
        if period is not None:
            g.add((node, DCTERMS.temporal, period))
        schema = URIRef(COUNT_SCHEMA if ds.type == COUNTS else f"{self.export_url(ds)}/schema")
        g.add((schema, RDF.type, DCTERMS.Standard))
        for lang in LANGUAGES:
            g.add((schema, DCTERMS.title, Literal(
                render(T("opendata.count_schema") if ds.type == COUNTS else T("opendata.schema", id=ds.id), lang),
                lang=lang)))
        g.add((node, DCTERMS.conformsTo, schema))
        licence = self._licence(ds.licence)
        g.add((node, DCTERMS.license, licence))
        for fmt in formats.FORMATS.values():
            if fmt.id == "geojson" and not ds.geo:
                continue
            self._distribution(ds, node, fmt, licence, schema, data_class)
        return node

    def _distribution(self, ds: Dataset, dataset: URIRef, fmt: formats.Format, licence: URIRef, schema: URIRef,
                      data_class: str) -> None:
        g = self.g
        url = URIRef(f"{self.export_url(ds)}?format={fmt.id}")
        node = URIRef(f"{dataset}-{fmt.id}")
        g.add((dataset, DCAT.distribution, node))
        g.add((node, RDF.type, DCAT.Distribution))
        titles = {"fr": ds.title_fr, "en": ds.title_en}
        for lang in LANGUAGES:
            name = formats.title(fmt, lang)
            g.add((node, DCTERMS.title, Literal(
                render(T("opendata.distribution_title", title=titles[lang], format=name), lang), lang=lang)))
            access = EMPTY if data_class == OPEN else T("opendata.access")
            g.add((node, DCTERMS.description, Literal(render(T(
                "opendata.distribution", format=name, days=self.s.default_days, access=access), lang), lang=lang)))
        g.add((node, DCAT.accessURL, url))
        g.add((node, DCAT.downloadURL, url))
        g.add((node, DCAT.mediaType, URIRef(IANA + fmt.media_type)))
        g.add((node, DCTERMS.format, URIRef(f"{EU}file-type/{fmt.file_type}")))
        g.add((node, DCTERMS.license, licence))
        g.add((node, DCTERMS.conformsTo, schema))
        g.add((node, DCATAP.availability, URIRef(f"{EU}planned-availability/STABLE")))

    # the catalogue ------------------------------------------------------------------------------------
    def build(self) -> Graph:
        g, s = self.g, self.s
        catalog = URIRef(f"{self.base}/api/v1/catalog")
        g.add((catalog, RDF.type, DCAT.Catalog))
        g.add((catalog, DCTERMS.title, Literal(s.catalog_title_fr, lang="fr")))
        g.add((catalog, DCTERMS.title, Literal(s.catalog_title_en, lang="en")))
        g.add((catalog, DCTERMS.description, Literal(s.catalog_description_fr, lang="fr")))
        g.add((catalog, DCTERMS.description, Literal(s.catalog_description_en, lang="en")))
        publisher, contact = self._publisher(), self._contact()
        g.add((catalog, DCTERMS.publisher, publisher))
        g.add((catalog, FOAF.homepage, URIRef(s.publisher_url or self.base + "/")))
        g.add((catalog, DCTERMS.language, URIRef(f"{EU}language/FRA")))
        g.add((catalog, DCTERMS.language, URIRef(f"{EU}language/ENG")))
        g.add((catalog, DCTERMS.license, self._licence("")))
        firsts = [a for a, _ in self.extent.values()]
        g.add((catalog, DCTERMS.issued, _when(min(firsts) if firsts else self.now)))
        g.add((catalog, DCTERMS.modified, _when(self.now)))
        themes = URIRef(f"{EU}data-theme")
        g.add((themes, RDF.type, SKOS.ConceptScheme))
        for lang in LANGUAGES:
            g.add((themes, DCTERMS.title, Literal(render(T("opendata.themes"), lang), lang=lang)))
        g.add((catalog, DCAT.themeTaxonomy, themes))
        city = self._location(self._city_geometries())
        if city is not None:
            g.add((catalog, DCTERMS.spatial, city))
        served = [self._dataset(ds, c, catalog, publisher, contact, city) for ds, c in self.listed()]
        api = URIRef(f"{self.base}/api/v1/exports")
        g.add((catalog, DCAT.service, api))
        g.add((api, RDF.type, DCAT.DataService))
        for lang in LANGUAGES:
            g.add((api, DCTERMS.title, Literal(render(T("opendata.api"), lang), lang=lang)))
        g.add((api, DCAT.endpointURL, URIRef(f"{self.base}/api/v1/")))
        g.add((api, DCAT.endpointDescription, URIRef(f"{self.base}/openapi.json")))
        g.add((api, DCTERMS.license, self._licence("")))
        for node in served:
            g.add((api, DCAT.servesDataset, node))
        return g


def serialize(g: Graph, fmt: str) -> bytes:
    """Turtle or JSON-LD (compacted with the DCAT-AP prefixes)."""
    if fmt == "turtle":
        return g.serialize(format="turtle", encoding="utf-8")
    return g.serialize(format="json-ld", context=CONTEXT, auto_compact=True, encoding="utf-8")
