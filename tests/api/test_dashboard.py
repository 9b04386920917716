"""The dashboard's page carries the city's language (`<html data-default-lang>`, read by js/i18n.js); the other
static files are served as they are."""

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
        # the rest of the page is the file's own
        page = (static_dir() / "index.html").read_text(encoding="utf-8")
        assert r.text.replace(html_tag(r.text), "") == page.replace(html_tag(page), "")
        assert c.get("/js/i18n.js").text == (static_dir() / "js" / "i18n.js").read_text(encoding="utf-8")


def test_the_default_is_french(store) -> None:
    with TestClient(create_app(store, Settings())) as c:
        assert 'data-default-lang="fr"' in html_tag(c.get("/").text)


def test_an_attribute_already_in_the_file_is_replaced() -> None:
    page = '<!doctype html>\n<html lang="en" data-default-lang="fr"><body>x</body></html>'
    assert with_default_language(page, "en") == page.replace('data-default-lang="fr"', 'data-default-lang="en"')
    assert with_default_language("<HTML><p>", "fr") == '<HTML data-default-lang="fr"><p>'
    assert with_default_language("no page", "fr") == "no page"
