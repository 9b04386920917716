"""The map (js/map.js) in headless Chromium over a small simulated city (zones of every kind, 120 devices, the charter
as it ships): it draws the city's zones and the devices the caller may see, coloured by their alerts; a filter hides
devices; a click on a device goes to its page and on a zone lists its devices and alerts; an anonymous visitor gets
no dwelling's meter drawn; and no request leaves 127.0.0.1 (every request is intercepted)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clapas.api.app import create_app, static_dir
from clapas.charter.keys import new_key
from clapas.config import AuthSettings, Settings, WebSettings
from clapas.simulator.city import build_city
from clapas.store.alerts import AlertChange
from clapas.store.duckdb import DuckDBStore
from tests.web.cdp import Browser
from tests.web.conftest import serving
from tests.web.test_dashboard import CHROMIUM, fetch, needs_chromium

MAP = '[data-map-use="all"]'
READY = f'document.querySelector(\'{MAP}\')?.dataset.mapState === "ready"'
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class MapCity:
    url: str
    token: str  # an admin key: every class
    alerted: str  # an open weather station with an open alert
    silent: str  # an open device with an open health.silent alert
    home: str  # a dwelling's meter (personal) with an open alert
    zones: list[dict[str, Any]]


def city_store(path: Path) -> tuple[DuckDBStore, Any]:
    city = build_city(seed=3, devices=120)
    store = DuckDBStore(f"duckdb:///{path}")
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    return store, city


@pytest.fixture(scope="module")
def map_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MapCity]:
    store, city = city_store(tmp_path_factory.mktemp("web-map") / "city.duckdb")
    by_kind = {k: [d.device for d in city.devices if d.device.kind == k] for k in ("weather_station", "air_quality",
                                                                                   "water_meter")}
    station, sensor = by_kind["weather_station"][1], by_kind["air_quality"][0]
    home = next(d for d in by_kind["water_meter"] if d.premises_use == "habitation")
    store.apply_alert_changes([
        AlertChange("heat.heat_stress", station.eui, "open", NOW - timedelta(hours=2), "warning", {}, "", "device",
                    station.zone),
        AlertChange("health.silent", sensor.eui, "open", NOW - timedelta(hours=5), "warning", {}, "", "device",
                    sensor.zone),
        AlertChange("water.continuous_flow", home.eui, "open", NOW - timedelta(hours=1), "major",
                    {"min_hourly_flow_lph": 12.0}, "", "device", home.zone),
    ])
    k = new_key()
    store.create_key(key_id=k.key_id, name="map admin", secret_hash=k.hash, role="admin")
    app = create_app(store, Settings(auth=AuthSettings(rate_limits=False)))
    with serving(app) as url:
        zones = json.loads(fetch(url + "api/v1/zones")[2])["features"]
        yield MapCity(url, k.token, station.eui, sensor.eui, home.eui, zones)
    app.state.access.close()
    store.close()


def api(url: str, path: str, token: str = "") -> Any:
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as b:
        yield b


def open_map(b: Browser, url: str, token: str = "") -> None:
    """The dashboard in English (the city's default is French; `test_map_speaks_french` reads that)."""
    if token:  # the key as the page keeps it (sessionStorage), typed before the page's scripts read it
        b.goto(url + "healthz")
        b.wait_for("document.readyState === 'complete'")
        b.js(f"sessionStorage.setItem('clapas.key', {json.dumps(token)})")
    b.goto(url if "?" in url else url + "?lang=en")
    b.wait_for(READY)
    # the page laid out (the status says "Updated …" in English, "Mis à jour …" in French, the city's default)
    b.wait_for("/^(Updated|Mis à jour) /.test(document.getElementById('status').textContent)")


def drawn(b: Browser) -> dict[str, str]:
    """EUI → state of every device circle drawn on the map (SVG paths)."""
    return b.js(f"""Object.fromEntries([...document.querySelectorAll('{MAP} svg path.map-device')]
                    .map((p) => [p.dataset.eui, p.dataset.state]))""")


def test_leaflet_is_vendored_with_licence_and_version() -> None:
    vendor = static_dir() / "vendor" / "leaflet"
    assert "BSD" in (vendor / "LICENSE").read_text()
    readme = (vendor / "README.md").read_text()
    assert "**1.9.4**" in readme and "npm pack leaflet@1.9.4" in readme
    assert "Leaflet 1.9.4" in (vendor / "leaflet.js").read_text()[:300]
    css = (vendor / "leaflet.css").read_text()
    assert all((vendor / u).exists() for u in ("images/layers.png", "images/layers-2x.png", "images/marker-icon.png")
               if u in css)


def test_map_files_are_served(map_city: MapCity) -> None:
    for path, ctype in (("js/map.js", "javascript"), ("map.css", "text/css"), ("vendor/leaflet/leaflet.js",
                        "javascript"), ("vendor/leaflet/leaflet.css", "text/css")):
        status, content_type, body = fetch(map_city.url + path)
        assert status == 200 and ctype in content_type and body


def test_every_map_text_is_in_both_catalogs() -> None:
    """The keys map.js asks for (literal and built from a kind, zone kind, use, state) are in en.json and fr.json,
    and French differs from English where it should."""
    import re

    source = (static_dir() / "js" / "map.js").read_text()
    literal = set(re.findall(r"""\bt\("(map\.[\w.]+)\"""", source))
    built = {f"map.{ns}.{v}" for ns, values in {
        "state": ("alert", "silent", "ok"), "legend": ("alert", "silent", "ok"),
        "bike": ("empty", "full", "ok", "closed", "unknown"),
        "alert_state": ("open", "acknowledged", "resolved"), "class": ("open", "restricted", "personal"),
        "use": ("water", "heat", "floods", "air", "museum", "mobility", "health", "all"),
        "zone_kind": ("district", "dma", "park", "rural", "museum", "museum_room", "catchment"),
    }.items() for v in values}
    from clapas.model import DEVICE_KINDS

    built |= {f"map.kind.{k}" for k in DEVICE_KINDS}
    catalogs = {lang: json.loads((static_dir() / "i18n" / f"{lang}.json").read_text()) for lang in ("en", "fr")}
    for lang, texts in catalogs.items():
        missing = sorted(k for k in literal | built if k not in texts)
        assert missing == [], (lang, missing)
    assert catalogs["fr"]["map.legend.alert"] != catalogs["en"]["map.legend.alert"]
    assert len(literal) > 20


@needs_chromium
def test_map_draws_zones_and_visible_devices_coloured_by_state(map_city: MapCity, browser: Browser) -> None:
    open_map(browser, map_city.url, map_city.token)
    everything = api(map_city.url, "api/v1/devices?limit=10000", map_city.token)["devices"]
    assert len(everything) == 120
    states = drawn(browser)
    assert set(states) == {d["eui"] for d in everything if d["lat"] is not None}
    assert states[map_city.alerted] == "alert" and states[map_city.silent] == "silent"
    assert states[map_city.home] == "alert"  # the admin reads the dwelling's alert
    assert sum(s == "ok" for s in states.values()) == len(states) - 3
    # zones: every shape but the museum rooms drawn, the rooms listed
    shapes = browser.js(f"[...document.querySelectorAll('{MAP} svg path.map-zone')].map((p) => p.dataset.zone)")
    rooms = {z["id"] for z in map_city.zones if z["properties"]["kind"] == "museum_room"}
    assert sorted(shapes) == sorted(z["id"] for z in map_city.zones if z["id"] not in rooms)
    listed = browser.js(f"[...document.querySelectorAll('{MAP} .map-zone-list [data-zone]')]"
                        ".map((b) => b.dataset.zone)")
    assert set(listed) == rooms
    legend = browser.js(f"document.querySelector('{MAP} .map-legend').textContent")
    assert "alert open (2)" in legend and "silent (1)" in legend and f"ok ({len(states) - 3})" in legend
    assert browser.blocked == [] and browser.requests
    assert all(u.startswith(map_city.url) or u.startswith("data:") for u in browser.requests), browser.requests


@needs_chromium
def test_anonymous_map_draws_no_personal_device(map_city: MapCity, browser: Browser) -> None:
    open_map(browser, map_city.url)
    public = api(map_city.url, "api/v1/devices?limit=10000")
    states = drawn(browser)
    assert set(states) == {d["eui"] for d in public["devices"] if d["lat"] is not None}
    assert map_city.home not in states and len(states) < 120
    assert all(d["class"] == "open" for d in public["devices"])
    # the withheld devices are counted, the dwelling's alert is in its zone reduced
    note = browser.js(f"document.querySelector('{MAP} .map-note').textContent")
    withheld = sum(w["devices"] for w in public["withheld"])
    assert f"Not drawn: {withheld} devices" in note and "personal" in note
    page = browser.js("document.documentElement.outerHTML")
    assert map_city.home not in page
    for d in api(map_city.url, "api/v1/devices?limit=10000", map_city.token)["devices"]:
        if d["class"] != "open":
            assert d["eui"] not in page and f"{d['lat']}" not in page, d["eui"]
    assert browser.blocked == []


@needs_chromium
def test_kind_filter_hides_devices(map_city: MapCity, browser: Browser) -> None:
    open_map(browser, map_city.url, map_city.token)
    before = drawn(browser)
    browser.js(f"""(() => {{ const s = document.querySelector('{MAP} select.map-kind');
                   s.value = 'weather_station'; s.dispatchEvent(new Event('change')); }})()""")
    after = drawn(browser)
    kinds = {d["eui"]: d["kind"] for d in api(map_city.url, "api/v1/devices?limit=10000", map_city.token)["devices"]}
    assert after and set(after) == {e for e in before if kinds[e] == "weather_station"} and len(after) < len(before)
    # a use: the water devices only, and the zones of water (DMAs) or holding them
    browser.js(f"""(() => {{ const s = document.querySelector('{MAP} select.map-use');
                   s.value = 'water'; s.dispatchEvent(new Event('change')); }})()""")
    water = drawn(browser)
    assert water and {kinds[e] for e in water} == {"water_meter", "district_meter"}
    zone_kinds = browser.js(f"[...document.querySelectorAll('{MAP} path.map-zone')].map((p) => p.dataset.zoneKind)")
    assert set(zone_kinds) == {"dma"}


def visible_point(b: Browser, selector: str) -> tuple[float, float]:
    """A point where the element is what a click hits (not under another circle or shape), once the page around it
    has stopped moving (panels above it still filling in)."""
    b.js(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})")
    rect = f"JSON.stringify(document.querySelector({json.dumps(selector)}).getBoundingClientRect())"
    last, still = None, 0
    for _ in range(100):
        now = b.js(rect)
        still = still + 1 if now == last else 0
        if still >= 4:
            break
        last = now
        time.sleep(0.1)
    point = b.js(f"""(() => {{
        const e = document.querySelector({json.dumps(selector)});
        const r = e.getBoundingClientRect();
        const steps = [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.1, 0.9];  // from the middle out, whole pixels
        for (const fx of steps) for (const fy of steps) {{
          const x = Math.round(r.left + r.width * fx), y = Math.round(r.top + r.height * fy);
          if (document.elementFromPoint(x, y) === e) return [x, y];
        }}
        return null; }})()""")
    assert point is not None, f"{selector} is covered everywhere"
    return point[0], point[1]


@needs_chromium
def test_click_on_device_goes_to_its_page_and_on_zone_lists_it(map_city: MapCity, browser: Browser) -> None:
    open_map(browser, map_city.url, map_city.token)
    browser.click_at(*visible_point(browser, f'{MAP} path.map-device[data-eui="{map_city.alerted}"]'))
    assert browser.wait_for("location.hash") == f"#/device/{map_city.alerted}"
    browser.js("history.back()")  # the device's own page replaced the overview: back to its map
    browser.wait_for(f"document.querySelector('{MAP}').offsetParent !== null")
    # the zone of the silent device: click inside its shape, away from every device circle
    zone = api(map_city.url, f"api/v1/devices/{map_city.silent}", map_city.token)["zone"]
    browser.click_at(*visible_point(browser, f'{MAP} path.map-zone[data-zone="{zone}"]'))
    details = browser.wait_for(f"""document.querySelector('{MAP} .map-zone-details[data-zone="{zone}"]')
                                    ?.textContent""")
    assert "Active alerts" in details and "health.silent" in details
    links = browser.js(f"[...document.querySelectorAll('{MAP} .map-zone-devices a')].map((a) => a.hash)")
    assert f"#/device/{map_city.silent}" in links


@needs_chromium
def test_map_in_french(map_city: MapCity, browser: Browser) -> None:
    browser.goto(map_city.url + "?lang=fr")
    browser.wait_for(READY)
    legend = browser.js(f"document.querySelector('{MAP} .map-legend').textContent")
    assert "alerte ouverte" in legend and "normal" in legend


@needs_chromium
def test_hidden_map_measures_itself_when_shown(map_city: MapCity, browser: Browser) -> None:
    """A map on a hidden page is not built (its SVG would cost the first view for nothing); shown (hashchange), it
    is built and fitted to the city."""
    open_map(browser, map_city.url, map_city.token)
    browser.js("""(() => { const host = document.createElement('div'); host.id = 'later';
                  host.innerHTML = '<div class="map" data-map-use="floods"></div>';
                  document.querySelector('[data-page="floods"]').prepend(host); })()""")
    # the page's DOM watcher (a MutationObserver) has seen it, and left it alone while its page is hidden
    browser.js("new Promise((ok) => setTimeout(ok, 50))")
    assert browser.js("document.querySelector('#later [data-map-use]').dataset.mapState ?? 'none'") == "none"
    assert browser.js("document.querySelectorAll('[data-page=\"floods\"] .map-canvas').length") == 0
    browser.js("location.hash = '#/floods'")
    browser.wait_for("document.querySelector('#later [data-map-use]').dataset.mapState === 'ready'")
    # fitted once shown: every drawn device inside the visible map
    browser.wait_for("""(() => { const box = document.querySelector('#later .map-canvas').getBoundingClientRect();
        const dots = [...document.querySelectorAll('#later path.map-device')].map((p) => p.getBoundingClientRect());
        return box.width > 0 && dots.length > 0 && dots.every((d) => d.left >= box.left && d.right <= box.right
                                                                  && d.top >= box.top && d.bottom <= box.bottom);
    })()""")
    kinds = browser.js("[...document.querySelectorAll('#later path.map-device')].map((p) => p.dataset.kind)")
    assert set(kinds) == {"water_level", "rain_gauge"}


@needs_chromium
def test_configured_tiles_are_drawn_from_the_city_url(tmp_path: Path) -> None:
    """`[web] tile_url`: the map asks the city's tile server (here this very server: a path that answers 404 is
    enough to see the requests go there, and only there)."""
    store, _ = city_store(tmp_path / "tiles.duckdb")
    app = create_app(store, Settings(web=WebSettings(tile_url="/tiles/{z}/{x}/{y}.png",
                                                     tile_attribution="<b>Ville</b> & co")))
    try:
        with serving(app) as url, Browser(CHROMIUM) as b:  # type: ignore[arg-type]
            b.goto(url)
            b.wait_for(READY)
            b.wait_for("document.querySelectorAll('.leaflet-tile').length > 0")
            tiles = [u for u in b.requests if "/tiles/" in u]
            assert tiles and all(u.startswith(url + "tiles/") for u in tiles)
            attribution = b.js("document.querySelector('.leaflet-control-attribution').textContent")
            assert "<b>Ville</b> & co" in attribution  # shown as text, not as HTML
            assert b.blocked == []
    finally:
        app.state.access.close()
        store.close()
