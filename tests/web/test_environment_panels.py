"""The dashboard's environment panels in headless Chromium, over the small known city of tests/reports (its air and
heat series written for the whole of today, so the page's figures do not depend on the hour of the run)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from clapas.api.app import create_app, static_dir
from clapas.config import Settings
from tests.helpers import as_local
from tests.reports.env_city import PARIS, G, open_city
from tests.web.conftest import serving
from tests.web.test_dashboard import chromium, fetch, needs_chromium


@pytest.fixture(scope="module")
def served_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    today = datetime.now(PARIS).date()
    end_of_today = datetime.combine(today + timedelta(days=1), datetime.min.time(), PARIS) - timedelta(seconds=1)
    store = open_city(str(tmp_path_factory.mktemp("env-web") / "city.duckdb"), today, end_of_today)
    with serving(as_local(create_app(store, Settings()))) as url:
        yield url
    store.close()


def panel(dom: str, panel_id: str) -> str:
    m = re.search(rf'<article id="{panel_id}".*?</article>', dom, re.S)
    assert m, dom[:2000]
    return m.group(0)


def test_environment_script_is_served(served_env: str) -> None:
    status, ctype, body = fetch(served_env + "js/environment.js")
    assert status == 200 and "javascript" in ctype and b"api/v1/air/atmo" in body
    assert 'src="js/environment.js"' in (static_dir() / "index.html").read_text()


@needs_chromium
def test_environment_panels_render(served_env: str) -> None:
    """Each panel on its use's page (air, heat, floods, museum)."""
    pages = {p: chromium("--dump-dom", f"{served_env}?lang=en#/{p}") for p in ("air", "heat", "floods", "museum")}
    air = panel(pages["air"], "env-air")
    assert "indicatif" in air and "Indicatif" in air  # the heading and the statement under the table
    centre = re.search(r'<tr data-zone="dma-01".*?</tr>', air, re.S).group(0)
    assert 'data-index="3"' in centre and ">Dégradé<" in centre and "background: rgb(240, 230, 65)" in centre
    assert ">Indisponible<" in re.search(r'<tr data-zone="dma-02".*?</tr>', air, re.S).group(0)
    heat = panel(pages["heat"], "env-heat")
    assert re.search(r'id="heat-today"[^>]*>heatwave conditions met<', heat), heat
    assert "Hérault (34) thresholds: IBMn ≥ 22 °C" in heat and "Météo-France" in heat
    assert heat.count('data-state="heatwave"') == 2  # yesterday and today
    refuges = panel(pages["heat"], "env-refuges")
    assert re.findall(r'<li data-zone="([^"]+)"', refuges) == ["park-01", "park-03"]  # park-02 has no figure
    assert "format=csv" in refuges
    assert re.search(r"day \d+(\.\d+)? °C cooler", refuges), refuges  # surroundings − park > 0: cooler, in words
    rivers = panel(pages["floods"], "env-rivers")
    assert f'data-eui="{G}"' in rivers and 'class="bar"' in rivers and rivers.count('class="tick') == 3
    assert "Pluviomètre Lez" in rivers
    museum = panel(pages["museum"], "env-museum")
    room = re.search(r'<tr data-zone="museum-room-01".*?</tr>', museum, re.S)
    assert room and "Salle des Courbet" in room.group(0) and re.search(r">\d+(\.\d)?\s?%<", room.group(0)), museum
    assert not [p for p, dom in pages.items() if "Update failed" in dom or "Unavailable" in dom]


@needs_chromium
def test_environment_screenshot(served_env: str, tmp_path: Path) -> None:
    """A picture to look at (set CLAPAS_ENV_SCREENSHOT=/path.png to keep it)."""
    import os

    path = Path(os.environ.get("CLAPAS_ENV_SCREENSHOT") or tmp_path / "environment.png")
    chromium(f"--screenshot={path}", "--window-size=1280,1400", "--hide-scrollbars", f"{served_env}?lang=en#/heat")
    assert path.exists() and path.stat().st_size > 10_000
