"""@context handling (ETSI GS CIM 009 §5.5.7, §6.3.5): term expansion and compaction, protected core terms,
contexts by URL from the built-in ones, the disk cache or an allowed host, and LdContextNotAvailable otherwise."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from clapas.api.ngsi_ld.context import CORE, CORE_URL, DEFAULT_VOCAB, FIWARE_TEST_URL, NGSI_LD, ContextResolver
from clapas.api.ngsi_ld.errors import NgsiError

from .conftest import SAMPLES_NGSI


def test_core_terms_expand_and_compact() -> None:
    assert CORE.expand("location") == NGSI_LD + "location"
    assert CORE.expand("Property") == NGSI_LD + "Property"
    assert CORE.compact(NGSI_LD + "observationSpace") == "observationSpace"
    assert CORE.expand("temperature") == DEFAULT_VOCAB + "temperature"  # @vocab
    assert CORE.compact(DEFAULT_VOCAB + "temperature") == "temperature"
    assert CORE.expand("http://example.org/x") == "http://example.org/x"
    assert CORE.expand("urn:ngsi-ld:x") == "urn:ngsi-ld:x"
    assert CORE.compact("http://example.org/x") == "http://example.org/x"


def test_the_vendored_core_context_is_the_sample() -> None:
    from importlib import resources

    vendored = (resources.files("clapas.api.ngsi_ld") / "contexts" / "core-context-v1.9.jsonld").read_bytes()
    if SAMPLES_NGSI.is_dir():
        assert vendored == (SAMPLES_NGSI / "core-context-v1.9.jsonld").read_bytes()


def test_user_terms_prefixes_and_protected_core() -> None:
    r = ContextResolver(hosts=())
    ctx = r.resolve([{"ex": "http://example.org/", "Car": "ex:Car", "speed": {"@id": "ex:speed", "@type": "xsd:int"},
                      "location": "http://evil.example/location"}, CORE_URL])
    assert ctx.expand("Car") == "http://example.org/Car"
    assert ctx.expand("speed") == "http://example.org/speed"
    assert ctx.expand("ex:brand") == "http://example.org/brand"
    assert ctx.compact("http://example.org/Car") == "Car"
    assert ctx.compact("http://example.org/brand") == "ex:brand"  # a compact IRI through the prefix
    assert ctx.expand("location") == NGSI_LD + "location"  # core terms are @protected
    later = r.resolve([{"T": "http://a.org/T"}, {"T": "http://b.org/T"}])
    assert later.expand("T") == "http://b.org/T"  # later definitions win
    vocab = r.resolve({"@vocab": "http://v.org/"})
    assert vocab.expand("anything") == "http://v.org/anything" and vocab.compact("http://v.org/x") == "x"


def test_the_fiware_test_context_is_built_in() -> None:
    ctx = ContextResolver(hosts=()).resolve(FIWARE_TEST_URL)
    assert ctx.expand("P1") == "http://example.org/P1" and ctx.expand("Vehicle") == "http://schema.org/Vehicle"
    assert ctx.link_url == FIWARE_TEST_URL and FIWARE_TEST_URL in ctx.link
    assert ctx.types["DateProp"] == "http://uri.etsi.org/ngsi-ld/DateTime"


def test_a_context_of_a_host_not_allowed_is_not_available(tmp_path: Path) -> None:
    with pytest.raises(NgsiError) as e:
        ContextResolver(hosts=()).resolve("https://example.com/ctx.jsonld")
    assert e.value.kind == "LdContextNotAvailable" and e.value.status == 503
    with pytest.raises(NgsiError) as e:
        ContextResolver(hosts=()).resolve(42)
    assert e.value.kind == "InvalidRequest"


def test_the_disk_cache_serves_contexts_without_network(tmp_path: Path) -> None:
    url = "https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/jsonld-contexts/x.jsonld"
    (tmp_path / quote(url, safe="")).write_text('{"@context": {"Building": "https://ngsi-ld-test-suite/context#Building"}}')
    ctx = ContextResolver(hosts=(), cache_dir=tmp_path).resolve([url, CORE_URL])
    assert ctx.expand("Building") == "https://ngsi-ld-test-suite/context#Building"
    assert ctx.link_url == url


@pytest.fixture
def context_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    (tmp_path / "ctx.jsonld").write_text('{"@context": {"Bus": "http://example.org/Bus"}}')
    (tmp_path / "bad.jsonld").write_text("not json")
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, directory=str(tmp_path), **k)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_loopback_contexts_are_fetched_once_and_cached(context_server: tuple[str, list[str]], tmp_path: Path) -> None:
    base, seen = context_server
    cache = tmp_path / "cache"
    r = ContextResolver(cache_dir=cache)
    assert r.resolve(f"{base}/ctx.jsonld").expand("Bus") == "http://example.org/Bus"
    assert r.resolve([f"{base}/ctx.jsonld"]).expand("Bus") == "http://example.org/Bus"
    assert len(seen) == 1 and len(list(cache.iterdir())) == 1
    # another process finds it on disk
    assert ContextResolver(hosts=(), cache_dir=cache).resolve(f"{base}/ctx.jsonld").expand("Bus").endswith("Bus")
    for bad in ("bad.jsonld", "missing.jsonld"):
        with pytest.raises(NgsiError) as e:
            r.resolve(f"{base}/{bad}")
        assert e.value.kind == "LdContextNotAvailable"
