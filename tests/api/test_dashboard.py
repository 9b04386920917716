"""The dashboard's page carries the city's language (`<html data-default-lang>`, read by js/i18n.js); the other
static files are served as they are, compressed, cached by content hash or revalidated (clapas.api.static)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app, static_dir
from clapas.api.dashboard import with_default_language
from clapas.config import Settings, WebSettings
from clapas.store.duckdb import DuckDBStore


@pytest.fixture
def store(tmp_path):
    s = DuckDBStore(f"duckdb:///{tmp_path}/web.duckdb")
    yield s
    s.close()


def html_tag(body: str) -> str:
    return re.search(r"<html\b[^>]*>", body).group(0)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_page_carries_the_city_language(store, language: str) -> None:
    with TestClient(create_app(store, Settings(web=WebSettings(language=language)))) as c:
        for path in ("/", "/index.html"):
            r = c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert f'data-default-lang="{language}"' in html_tag(r.text)
            assert html_tag(r.text).count("data-default-lang") == 1
        # the rest of the page is the file's own, its scripts and style sheets named with their content's hash
        page = (static_dir() / "index.html").read_text(encoding="utf-8")
        served = re.sub(r"\?v=[0-9a-f]{12}\"", '"', r.text)
        assert served.replace(html_tag(served), "") == page.replace(html_tag(page), "")
        assert c.get("/js/i18n.js").text == (static_dir() / "js" / "i18n.js").read_text(encoding="utf-8")


def test_the_default_is_french(store) -> None:
    with TestClient(create_app(store, Settings())) as c:
        assert 'data-default-lang="fr"' in html_tag(c.get("/").text)


def test_an_attribute_already_in_the_file_is_replaced() -> None:
    page = '<!doctype html>\n<html lang="en" data-default-lang="fr"><body>x</body></html>'
    assert with_default_language(page, "en") == page.replace('data-default-lang="fr"', 'data-default-lang="en"')
    assert with_default_language("<HTML><p>", "fr") == '<HTML data-default-lang="fr"><p>'
    assert with_default_language("no page", "fr") == "no page"


def pinned_assets(html: str) -> list[tuple[str, str]]:
    return re.findall(r'(?:src|href)="([\w./-]+\.(?:js|css))\?v=([0-9a-f]{12})"', html)


def test_scripts_named_by_their_hash_are_cached_for_good_the_others_revalidated(store, tmp_path) -> None:
    with TestClient(create_app(store, Settings())) as c:
        page = c.get("/")
        assert page.headers["cache-control"] == "no-cache"
        assets = pinned_assets(page.text)
        names = {a for a, _ in assets}
        assert {"vendor/leaflet/leaflet.js", "vendor/uplot/uPlot.iife.min.js", "app.css", "map.css"} <= names
        assert not any(n.startswith("js/") for n in names)  # modules import each other by plain paths: one URL each
        for path, digest in assets:
            r = c.get(f"/{path}?v={digest}")
            assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
            # another hash (an old page's URL) is not pinned to today's content
            assert c.get(f"/{path}?v=000000000000").headers["cache-control"] == "no-cache"
        # the modules main.js imports by plain paths: revalidated by their ETag, a bodiless 304 when unchanged
        r = c.get("/js/api.js")
        assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
        again = c.get("/js/api.js", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_every_module_is_asked_at_once() -> None:
    page = (static_dir() / "index.html").read_text(encoding="utf-8")
    preloaded = set(re.findall(r'<link rel="modulepreload" href="js/([\w.]+\.js)">', page))
    assert preloaded == {f.name for f in (static_dir() / "js").glob("*.js")}


def test_a_changed_file_is_a_new_url(tmp_path) -> None:
    from clapas.api.static import versioned
    (tmp_path / "a.js").write_text("one")
    html = ('<script src="a.js" defer></script><link rel="stylesheet" href="none.css">'
            '<script type="module" src="a.js"></script><link rel="modulepreload" href="a.js">')
    first = versioned(html, tmp_path)
    assert first.startswith('<script src="a.js?v=')
    assert first.endswith(html[html.index("<link"):])  # no file, and modules: as they are
    (tmp_path / "a.js").write_text("two!")
    assert versioned(html, tmp_path) != first


@pytest.mark.parametrize("path", ["/js/map.js", "/vendor/leaflet/leaflet.js", "/i18n/fr.json",
                                  "/api/v1/quantities",
                                  "/"])
def test_answers_are_compressed_for_a_browser(store, path: str) -> None:
    with TestClient(create_app(store, Settings())) as c:
        plain = c.get(path, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        r = c.get(path, headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip" and r.content == plain.content  # httpx decodes it
        if len(plain.content) > 5000:  # the bytes on the wire (a large file is streamed, without Content-Length)
            assert r.num_bytes_downloaded < len(plain.content) / 2
