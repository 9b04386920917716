"""The dashboard: its files are served (and nothing is fetched from outside), and in headless Chromium the
JavaScript renders the overview (devices, their values, the counts, the alerts, the quarantine) and a device's page
(its series charted, its alerts)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from clapas.api.app import static_dir
from tests.api.city import BROKEN, ROOM, STATION

CHROMIUM = next((p for p in (os.environ.get("CLAPAS_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), "/usr/bin/chromium") if p and Path(p).exists()),
                None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")

ASSETS = {
    "": "text/html",
    "index.html": "text/html",
    "app.css": "text/css",
    "js/main.js": "javascript",
    "js/alerts.js": "javascript",
    "js/api.js": "javascript",
    "js/chart.js": "javascript",
    "js/router.js": "javascript",
    "js/i18n.js": "javascript",
    "js/overview.js": "javascript",
    "js/usechart.js": "javascript",
    "js/device.js": "javascript",
    "js/alertpage.js": "javascript",
    "js/evidence.js": "javascript",
    "js/health.js": "javascript",
    "js/environment.js": "javascript",
    "i18n/en.json": "application/json",
    "i18n/fr.json": "application/json",
    "js/format.js": "javascript",
    "js/panels.js": "javascript",
    "js/mobility.js": "javascript",
    "vendor/uplot/uPlot.iife.min.js": "javascript",
    "vendor/uplot/uPlot.min.css": "text/css",
}


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers["content-type"], r.read()


@pytest.mark.parametrize(("path", "ctype"), ASSETS.items())
def test_page_and_vendored_assets_are_served(served_city: str, path: str, ctype: str) -> None:
    status, content_type, body = fetch(served_city + path)
    assert status == 200 and ctype in content_type and body  # module scripts need a JavaScript MIME type


def test_uplot_is_vendored_with_licence_and_version() -> None:
    vendor = static_dir() / "vendor" / "uplot"
    assert "MIT" in (vendor / "LICENSE").read_text()
    assert re.search(r"\*\*\d+\.\d+\.\d+\*\*", (vendor / "README.md").read_text())
    assert "uPlot" in (vendor / "uPlot.iife.min.js").read_text()[:20000]


def test_nothing_is_fetched_from_outside() -> None:
    """Offline: the page and its scripts only name relative URLs."""
    for f in [static_dir() / "index.html", static_dir() / "app.css", *(static_dir() / "js").glob("*.js")]:
        text = f.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), f
        assert not re.search(r"""(fetch|import)\s*\(?\s*["'](https?:)?//""", text), f
        assert not re.search(r"""from\s+["'](https?:)?//""", text), f


def chromium(*args: str, timeout: float = 60) -> str:
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=8000", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    return out.stdout


@needs_chromium
def test_overview_renders_devices_in_chromium(served_city: str) -> None:
    dom = chromium("--dump-dom", served_city + "?lang=en#/")
    assert 'id="dev-rows"' in dom, dom[:500]
    rows = re.findall(r'<tr[^>]*data-eui="([0-9a-f]{16})"', dom)
    assert set(rows) == {STATION, ROOM, BROKEN}, dom[:3000]
    assert "Station Comédie" in dom and "Salle 12" in dom
    assert f'href="#/device/{STATION}"' in dom  # a device's name leads to its page
    assert "°C" in dom and "61 %" in dom  # latest values with display units
    assert re.search(r'data-count="quarantined">\s*2<', dom)
    assert re.search(r'data-count="observations">\s*41<', dom)
    assert "truncated Cayenne LPP" in dom  # the quarantine list
    alert = re.search(r'<tr[^>]*data-alert-id="1"[^>]*>.*?</tr>', dom, re.S)  # the alerts section
    assert alert, dom[:3000]
    row = alert.group(0)
    assert 'data-state="open"' in row and "water.continuous_flow" in row and STATION in row
    assert ">Continuous flow<" in row and 'href="#/alert/1"' in row  # the rule's name, linking to its page
    assert "major" in row and "minimum hourly flow (L/h): 18.2" in row  # the evidence field named
    assert ">Acknowledge</button>" in row and ">Resolve</button>" in row
    # resolved alerts are history: the latest eight, then a button for the rest
    assert len(re.findall(r'<tr[^>]*data-state="resolved"', dom)) == 8, dom[:3000]
    assert ">Show 2 more resolved</button>" in dom
    assert "Update failed" not in dom


@needs_chromium
def test_overview_in_french(served_city: str) -> None:
    """The same page in French: texts from the catalog, numbers in the French way."""
    dom = chromium("--dump-dom", served_city + "?lang=fr#/")
    assert '<html lang="fr"' in dom and "<title>Vue d'ensemble · clapas</title>" in dom
    assert re.search(r'id="status"[^>]*>Mis à jour à ', dom), dom[:2000]
    assert ">Débit permanent<" in dom and ">Prendre en compte</button>" in dom
    assert "débit horaire minimal (L/h): 18,2" in dom  # named in French, a decimal comma
    assert "Échec" not in dom


@needs_chromium
def test_device_page_charts_its_series(served_city: str) -> None:
    dom = chromium("--dump-dom", f"{served_city}?lang=en#/device/{STATION}")
    assert "<title>Station Comédie · clapas</title>" in dom, dom[:2000]
    figures = re.findall(r'<figure class="series" data-quantity="([\w.]+)">.*?</figure>', dom, re.S)
    assert {"air.temperature", "air.humidity"} <= set(figures), figures
    points = [int(n) for n in re.findall(r'class="chart small"[^>]*data-points="(\d+)"', dom)]
    assert points and all(n > 0 for n in points), points  # every quantity charted with its points
    assert 'class="uplot' in dom
    assert re.search(r'<section id="dv-alerts".*data-alert-id="1".*</section>', dom, re.S)  # its alerts
    assert "Update failed" not in dom


@needs_chromium
def test_dashboard_screenshot(served_city: str, tmp_path: Path) -> None:
    """A picture to look at (set CLAPAS_SCREENSHOT=/path.png to keep it)."""
    path = Path(os.environ.get("CLAPAS_SCREENSHOT") or tmp_path / "dashboard.png")
    chromium(f"--screenshot={path}", "--window-size=1280,1500", "--hide-scrollbars", served_city + "?lang=en")
    assert path.exists() and path.stat().st_size > 10_000


@needs_chromium
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_alerts_acknowledge_button_fits_a_1280_px_window(served_city: str, lang: str) -> None:
    """The alerts table wraps its long cells rather than push the Acknowledge column out of a 1280-px window."""
    from tests.web.cdp import Browser

    assert CHROMIUM is not None
    with Browser(CHROMIUM, width=1280, height=800) as b:
        b.goto(served_city + f"?lang={lang}#/")
        b.wait_for("document.querySelector('tr[data-alert-id=\"1\"] button') !== null")
        right, width = b.js("[document.querySelector('tr[data-alert-id=\"1\"] td.actions').getBoundingClientRect()"
                            ".right, document.documentElement.clientWidth]")
        assert width <= 1280 and right <= width, (right, width)
