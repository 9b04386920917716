"""Each page of the dashboard over a demo-like city (tests/web/demo_city.py: the simulator's week through the real
pipeline and detectors), in headless Chromium, in French and in English: the page's title and nav in the language,
its chart drawing points, and on an alert's page its evidence drawn (the district's night flows, the IBM days,
the river against its vigilance heights)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from clapas.api.app import create_app, static_dir
from clapas.config import Settings
from tests.helpers import as_local
from tests.web.conftest import serving
from tests.web.demo_city import build_demo_store
from tests.web.test_dashboard import chromium, fetch, needs_chromium

USE_PAGES = ["water", "heat", "floods", "air", "museum", "mobility", "health"]
NAV = ["overview", *USE_PAGES, "settings"]
CATALOGS = {lang: json.loads((static_dir() / "i18n" / f"{lang}.json").read_text()) for lang in ("en", "fr")}
UPDATED = {"en": "Updated ", "fr": "Mis à jour à "}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = build_demo_store(tmp_path_factory.mktemp("demo-web") / "city.duckdb")
    with serving(as_local(create_app(store, Settings()))) as url:
        yield url
    store.close()


def api(url: str, path: str) -> dict:
    status, _, body = fetch(url + path)
    assert status == 200, path
    return json.loads(body)


def page(url: str, lang: str, route: str) -> str:
    dom = chromium("--dump-dom", f"{url}?lang={lang}#/{route}")
    assert f'<html lang="{lang}"' in dom, dom[:300]
    assert re.search(rf'id="status"[^>]*>{UPDATED[lang]}', dom), re.search(r'id="status"[^>]*>[^<]*', dom)
    return dom


def nav_texts(dom: str) -> dict[str, str]:
    return dict(re.findall(r'<a href="#/\w*" data-nav="(\w+)"[^>]*>([^<]*)</a>', dom))


def shown_page(dom: str) -> str:
    """The part of the DOM of the page shown (the others are hidden)."""
    pages = re.findall(r'<(div|section)([^>]*data-page="(\w+)"[^>]*)>', dom)
    shown = [name for _, attrs, name in pages if "hidden" not in attrs]
    assert len(shown) == 1, pages
    start = dom.index(f'data-page="{shown[0]}"')
    return dom[start:dom.index("</main>")]


def chart_points(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'class="chart[^"]*"[^>]*data-points="(\d+)"', html)]


@needs_chromium
@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("name", ["overview", *USE_PAGES, "settings"])
def test_page_in_language(demo: str, lang: str, name: str) -> None:
    cat = CATALOGS[lang]
    dom = page(demo, lang, "" if name == "overview" else name)
    title = re.search(r"<title>([^<]*)</title>", dom).group(1)
    assert title == f"{cat[f'page.{name}.title']} · clapas"
    assert nav_texts(dom) == {n: cat[f"nav.{n}"] for n in NAV}
    assert re.search(rf'data-nav="{name}"[^>]*aria-current="page"', dom)
    shown = shown_page(dom)
    if name == "settings":  # the settings page is another module's (js/settings.js): its section, empty here
        assert 'id="settings-page"' in dom
        return
    maps = re.findall(r'data-map-use="(\w+)"', shown)
    assert maps[:1] == ["all" if name == "overview" else name]  # where js/map.js mounts the page's map
    if name == "overview":
        assert len(re.findall(r'<tr data-eui="[0-9a-f]{16}"', shown)) == 50  # the first page of 60 devices
        return
    points = chart_points(shown)
    assert points and max(points) > 0, shown[-3000:]  # the page's chart drew points
    assert 'class="uplot' in shown


@needs_chromium
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_use_pages_list_their_own_alerts(demo: str, lang: str) -> None:
    dom = page(demo, lang, "floods")
    rules = set(re.findall(r'<tr class="alert-\w+" data-alert-id="\d+" data-state="\w+" data-rule="([\w.]+)"',
                           shown_page(dom)))
    assert rules and all(r.startswith("flood.") for r in rules), rules
    assert CATALOGS[lang]["rule.flood.river_level"] in dom


@needs_chromium
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_device_page(demo: str, lang: str) -> None:
    gauge = next(a for a in api(demo, "api/v1/alerts?rule=flood.river_level")["alerts"])["subject"]
    dom = page(demo, lang, f"device/{gauge}")
    shown = shown_page(dom)
    assert 'data-quantity="water.level"' in shown
    assert chart_points(shown) and min(chart_points(shown)) > 0
    assert 'data-rule="flood.river_level"' in shown  # its alerts
    assert re.search(r'id="dv-health".*?<div class="body">.+?</div>', shown, re.S)
    assert re.search(r'<tr data-event="\w+">', shown) or CATALOGS[lang]["device.no_events"] in shown
    name = api(demo, f"api/v1/devices/{gauge}")["name"]
    assert f"<title>{name} · clapas</title>" in dom


EVIDENCE = {  # rule: (the evidence charts drawn, a series' label in the legend)
    "water.district_night_flow": (["balance", "night-flow"], "evidence.threshold"),
    "heat.heatwave": (["ibm"], "evidence.ibmx_threshold"),
    "flood.river_level": (["river"], "evidence.height.yellow"),
}


@needs_chromium
@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("rule", list(EVIDENCE))
def test_alert_page_draws_its_evidence(demo: str, lang: str, rule: str) -> None:
    alert = api(demo, f"api/v1/alerts?rule={rule}")["alerts"][0]
    dom = page(demo, lang, f"alert/{alert['id']}")
    shown = shown_page(dom)
    charts, legend = EVIDENCE[rule]
    drawn = re.findall(r'<figure class="evidence-chart" data-evidence="([\w-]+)">(.*?)</figure>', shown, re.S)
    assert [k for k, _ in drawn] == charts, [k for k, _ in drawn]
    for kind, html in drawn:
        assert chart_points(html) and chart_points(html)[0] > 0, kind
        assert 'class="uplot' in html
    assert CATALOGS[lang][legend] in shown  # the threshold drawn beside the values
    # the figures: each field named in the page's language (the raw key only as the title)
    rows = re.findall(r'<tr data-key="(\w+)"><th scope="row" title="\w+">([^<]*)</th>', shown)
    assert rows and all(name == CATALOGS[lang][f"field.{k}"] for k, name in rows), rows
    assert f"{CATALOGS[lang][f'rule.{rule}']} · clapas" in dom


def test_every_text_key_is_in_both_catalogs() -> None:
    """Keys named literally in the pages and scripts (t("…"), data-i18n) exist in English and in French, and the
    French catalog is French: no key left with the English text, apart from words the two languages share."""
    static = static_dir()
    used: set[str] = set()
    for f in [static / "index.html", *(f for f in (static / "js").glob("*.js") if f.name != "i18n.js")]:
        text = f.read_text()
        used |= set(re.findall(r'\bt\("([\w.]+)"', text)) | set(re.findall(r'data-i18n="([\w.]+)"', text))
        used |= {k for pair in re.findall(r'data-i18n-attr="([^"]+)"', text) for k in re.findall(r":([\w.]+)", pair)}
    en, fr = CATALOGS["en"], CATALOGS["fr"]
    assert used - en.keys() == set() and used - fr.keys() == set()
    assert en.keys() == fr.keys()
    same = {k for k in en if en[k] == fr[k] and not re.fullmatch(r"[\W\d]*|[A-Z]{2,5}|.*\{\w+\}.*", en[k])}
    assert len(same) < 0.1 * len(en), sorted(same)  # Zone, Station, Radio, Source…


def test_pages_of_the_router_exist_in_the_page() -> None:
    html = (static_dir() / "index.html").read_text()
    for name in [*NAV, "device", "alert"]:
        assert f'data-page="{name}"' in html, name
        if name in NAV:
            assert f'data-nav="{name}"' in html
    assert '<section id="settings-page" class="page" data-page="settings" hidden></section>' in html


def test_demo_city_has_each_evidence(tmp_path: Path) -> None:
    """The alerts the evidence tests draw are the detectors' own, from the simulated week; their fields are named."""
    store = build_demo_store(tmp_path / "city.duckdb")
    try:
        alerts = store.alerts(limit=10_000)
        rules = {a["rule"] for a in alerts}
    finally:
        store.close()
    assert set(EVIDENCE) <= rules, rules
    # every field of the detectors' evidence has its name in both catalogs (the alert page's figures)
    fields = {k for a in alerts for k in (a["evidence"] or {})}
    assert {k for k in fields if f"field.{k}" not in CATALOGS["en"] or f"field.{k}" not in CATALOGS["fr"]} == set()
