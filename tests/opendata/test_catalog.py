"""The DCAT-AP catalogue: generated from a city on both stores, served as JSON-LD and Turtle, and validated with
pySHACL against the DCAT-AP 2.1.1 shapes (tests/fixtures/dcat-ap/, vendored with their source and licence):
no violation of the mandatory constraints, no warning of the recommended ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyshacl import validate
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SH

from clapas.api.app import create_app
from clapas.config import Settings
from clapas.opendata.settings import DatasetSettings, OpenDataSettings
from clapas.store.base import Store
from tests.opendata.city import T0, city_store

__all__ = ["city_store"]

SHAPES = Path(__file__).parents[1] / "fixtures" / "dcat-ap"
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority/"
# The recommended shapes' `dcatap:` prefix lacks its slash (a defect of the 2.1.1 release, see the fixture's
# header): their availability warning asks for <http://data.europa.eu/r5ravailability>, a property that does not
# exist; the catalogue carries DCAT-AP's <http://data.europa.eu/r5r/availability>, checked below instead.
MISSPELT = URIRef("http://data.europa.eu/r5ravailability")
CITY = OpenDataSettings(base_url="https://data.ville.example", publisher="Ville de Clapas",
                        publisher_url="https://www.ville.example", contact_email="opendata@ville.example",
                        datasets={"zones": DatasetSettings(licence="odbl-1.0")})


def shapes() -> Graph:
    g = Graph()
    for f in sorted(SHAPES.glob("*.ttl")):
        g.parse(f)
    return g


def results(report: Graph, severity: URIRef) -> list[tuple]:
    return [(report.value(r, SH.focusNode), report.value(r, SH.resultPath), report.value(r, SH.resultMessage))
            for r in report.subjects(RDF.type, SH.ValidationResult) if report.value(r, SH.resultSeverity) == severity]


@pytest.fixture
def client(city_store: tuple[Store, int]):
    store, _ = city_store
    with TestClient(create_app(store, Settings(open_data=CITY))) as c:
        yield c


def test_catalogue_validates_against_the_dcat_ap_shapes(client: TestClient) -> None:
    r = client.get("/api/v1/catalog", params={"format": "turtle"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/turtle")
    g = Graph().parse(data=r.text, format="turtle")
    conforms, report, text = validate(g, shacl_graph=shapes(), inference="none", allow_warnings=True)
    assert conforms, text
    assert results(report, SH.Violation) == []
    warnings = [w for w in results(report, SH.Warning) if w[1] != MISSPELT]
    assert warnings == [], text
    for dist in g.subjects(RDF.type, DCAT.Distribution):
        assert g.value(dist, URIRef("http://data.europa.eu/r5r/availability")) is not None


def test_a_broken_catalogue_fails_the_shapes(client: TestClient) -> None:
    """The validation can fail: a dataset without a title and a distribution without accessURL are violations."""
    g = Graph().parse(data=client.get("/api/v1/catalog", params={"format": "turtle"}).text, format="turtle")
    ds = next(g.subjects(RDF.type, DCAT.Dataset))
    g.remove((ds, DCTERMS.title, None))
    dist = next(g.subjects(RDF.type, DCAT.Distribution))
    g.remove((dist, DCAT.accessURL, None))
    conforms, report, _ = validate(g, shacl_graph=shapes(), inference="none", allow_warnings=True)
    paths = {str(p) for _, p, _ in results(report, SH.Violation)}
    assert not conforms and {str(DCTERMS.title), str(DCAT.accessURL)} <= paths


def test_what_the_catalogue_says(client: TestClient, city_store: tuple[Store, int]) -> None:
    g = Graph().parse(data=client.get("/api/v1/catalog", headers={"Accept": "application/ld+json"}).content,
                      format="json-ld")
    base = "https://data.ville.example/api/v1/catalog"
    catalog = URIRef(base)
    assert (catalog, RDF.type, DCAT.Catalog) in g
    ids = {str(g.value(d, DCTERMS.identifier)) for d in g.objects(catalog, DCAT.dataset)}
    # the open datasets with devices, the restricted one (listed with its access rights), the aggregate; never
    # the households' meters; no traffic counters in this city, so no traffic dataset
    assert {i.removeprefix(base + "#") for i in ids} == {"weather", "indoor-climate", "water-consumption",
                                                         "devices", "zones"}
    weather, air = URIRef(base + "#weather"), URIRef(base + "#indoor-climate")
    assert Literal("Météo urbaine", lang="fr") in set(g.objects(weather, DCTERMS.title))
    assert Literal("Urban weather", lang="en") in set(g.objects(weather, DCTERMS.title))
    assert g.value(weather, DCTERMS.accessRights) == URIRef(EU + "access-right/PUBLIC")
    assert g.value(air, DCTERMS.accessRights) == URIRef(EU + "access-right/RESTRICTED")
    assert g.value(weather, DCTERMS.accrualPeriodicity) == URIRef(EU + "frequency/UPDATE_CONT")
    assert URIRef(EU + "data-theme/ENVI") in set(g.objects(weather, DCAT.theme))
    publisher = g.value(weather, DCTERMS.publisher)
    assert str(g.value(publisher, FOAF.name)) == "Ville de Clapas"
    assert g.value(g.value(weather, DCAT.contactPoint), VCARD.hasEmail) == URIRef("mailto:opendata@ville.example")
    # temporal coverage from the store, spatial from the zones (WKT bbox)
    period = g.value(weather, DCTERMS.temporal)
    assert str(g.value(period, DCAT.startDate)).startswith(T0.strftime("%Y-%m-%dT%H:%M"))
    bbox = str(g.value(g.value(weather, DCTERMS.spatial), DCAT.bbox))
    assert bbox == "POLYGON((3.86 43.6,3.89 43.6,3.89 43.62,3.86 43.62,3.86 43.6))"
    # distributions: one per format, IANA media type and EU file type, the licence of the dataset
    dists = {str(g.value(d, DCAT.downloadURL)): d for d in g.objects(weather, DCAT.distribution)}
    assert set(dists) == {f"https://data.ville.example/api/v1/exports/weather?format={f}"
                          for f in ("csv", "csv-fr", "geojson", "parquet")}
    parquet = dists["https://data.ville.example/api/v1/exports/weather?format=parquet"]
    assert g.value(parquet, DCAT.mediaType) == URIRef(
        "https://www.iana.org/assignments/media-types/application/vnd.apache.parquet")
    assert g.value(parquet, DCTERMS.format) == URIRef(EU + "file-type/PARQUET")
    etalab = URIRef("https://www.etalab.gouv.fr/licence-ouverte-open-licence/")
    assert g.value(parquet, DCTERMS.license) == etalab
    assert g.value(parquet, DCTERMS.conformsTo) == URIRef("https://data.ville.example/api/v1/exports/weather/schema")


def test_licence_is_selectable_per_dataset(city_store: tuple[Store, int]) -> None:
    store, _ = city_store
    s = OpenDataSettings(base_url="https://d.example", licence="odbl-1.0",
                         datasets={"weather": DatasetSettings(licence="etalab-2.0")})
    with TestClient(create_app(store, Settings(open_data=s))) as c:
        g = Graph().parse(data=c.get("/api/v1/catalog?format=ttl").text, format="turtle")
    odbl = URIRef("https://opendatacommons.org/licenses/odbl/1-0/")
    etalab = URIRef("https://www.etalab.gouv.fr/licence-ouverte-open-licence/")
    licence_of = {str(g.value(d, DCTERMS.identifier)).rsplit("#", 1)[1]:
                  {g.value(x, DCTERMS.license) for x in g.objects(d, DCAT.distribution)}
                  for d in g.subjects(RDF.type, DCAT.Dataset)}
    assert licence_of["weather"] == {etalab} and licence_of["zones"] == {odbl}
    assert g.value(URIRef("https://d.example/api/v1/catalog"), DCTERMS.license) == odbl
    assert (odbl, RDF.type, DCTERMS.LicenseDocument) in g


def test_content_negotiation(client: TestClient) -> None:
    assert client.get("/api/v1/catalog").headers["content-type"].startswith("application/ld+json")
    r = client.get("/api/v1/catalog", headers={"Accept": "text/html;q=0.9, text/turtle;q=0.8, */*;q=0.1"})
    assert r.headers["content-type"].startswith("text/turtle")
    # the answer varies by Accept (negotiated here), and by Accept-Encoding (the app's gzip) when compressed
    assert "Accept" in [v.strip() for v in r.headers["vary"].split(",")]
    r = client.get("/api/v1/catalog", headers={"Accept": "text/turtle;q=0.2, application/ld+json"})
    assert r.headers["content-type"].startswith("application/ld+json")
    assert client.get("/api/v1/catalog", params={"format": "rdfxml"}).status_code == 422


def test_every_human_text_of_the_catalogue_is_in_french_and_in_english(client: TestClient) -> None:
    """DCAT's language-tagged literals: each title and description once @fr and once @en (catalogue, datasets,
    distributions, schemas, the export API, the theme scheme), keywords in both; identifiers and URLs untagged."""
    g = Graph().parse(data=client.get("/api/v1/catalog", params={"format": "turtle"}).text, format="turtle")
    kinds = (DCAT.Catalog, DCAT.Dataset, DCAT.Distribution, DCAT.DataService, DCTERMS.Standard)
    nodes = [n for k in kinds for n in g.subjects(RDF.type, k)]
    assert len(nodes) > 20
    for node in nodes:
        for prop in (DCTERMS.title, DCTERMS.description):
            langs = sorted(o.language for o in g.objects(node, prop))
            if prop == DCTERMS.title or langs:
                assert langs == ["en", "fr"], (node, prop, langs)
    base = "https://data.ville.example/api/v1/catalog"
    weather = URIRef(base + "#weather")
    keywords = {(str(k), k.language) for k in g.objects(weather, DCAT.keyword)}
    assert {("météo", "fr"), ("weather", "en")} <= keywords and ("weather", "fr") not in keywords
    csv_fr = URIRef(base + "#weather-csv-fr")
    assert Literal("Météo urbaine (CSV pour tableurs français (point-virgule, virgule décimale))",
                   lang="fr") in set(g.objects(csv_fr, DCTERMS.title))
    assert Literal("Urban weather (CSV for French spreadsheets (semicolon, decimal comma))",
                   lang="en") in set(g.objects(csv_fr, DCTERMS.title))
    restricted = {str(d) for d in g.objects(URIRef(base + "#indoor-climate-csv"), DCTERMS.description)}
    assert any("export:bulk" in d and d.startswith("CSV (UTF-8, comma) export;") for d in restricted)
    assert any("export:bulk" in d and d.startswith("Export CSV (UTF-8, virgule) ;") for d in restricted)
    schema = URIRef("https://data.ville.example/api/v1/exports/weather/schema")
    assert {(str(t), t.language) for t in g.objects(schema, DCTERMS.title)} == {
        ("Table Schema : weather", "fr"), ("Table Schema: weather", "en")}
