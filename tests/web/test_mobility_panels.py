"""The dashboard's mobility panels (issue 12) over a demo-like store: the simulator's mobility scenario (GBFS polls
and counter uplinks through the real pipeline) for the nine days up to now, so that stations have a state now and
the counters complete working days."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import pytest

from clapas.api.app import create_app, static_dir
from clapas.config import Settings
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.mobility import build_mobility, mobility_incidents, scenario_messages
from clapas.store.alerts import AlertChange
from clapas.store.base import open_store
from tests.helpers import as_local
from tests.web.cdp import Browser
from tests.web.conftest import serving
from tests.web.test_dashboard import CHROMIUM, chromium, fetch, needs_chromium
from tests.web.test_environment_panels import panel
from tests.web.test_map import visible_point

STATES = {"empty", "full", "ok", "closed", "unknown"}


@pytest.fixture(scope="module")
def served_mobility(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    city = build_mobility(3, stations=8, counters=2)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(days=9)  # whatever the weekday, complete working days for TMJO
    store = open_store(f"duckdb:///{tmp_path_factory.mktemp('mob-web') / 'city.duckdb'}")
    store.migrate()
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    pipeline = Pipeline(store)
    pipeline.submit_many(list(scenario_messages(city, mobility_incidents(city, start, end, 3), start, end)))
    pipeline.close()
    # one station under an open alert, as the detector leaves it: outlined in red on the map, its fill its state
    alerted = city.stations[0]
    store.apply_alert_changes([AlertChange("mobility.station_empty", alerted.eui, "open", end - timedelta(hours=2),
                                           "warning", {}, "", "device", alerted.zone)])
    with serving(as_local(create_app(store, Settings()))) as url:
        yield url, [c.eui for c in city.counters]
    store.close()


def get(url: str) -> dict:
    status, ctype, body = fetch(url)
    assert status == 200 and ctype.startswith("application/json"), (url, status, ctype)
    return json.loads(body)


def js_iso(t: datetime) -> str:
    """`Date.toISOString()`: milliseconds and Z, what the page sends."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_mobility_script_is_served(served_mobility: tuple[str, list[str]]) -> None:
    url, _ = served_mobility
    status, ctype, body = fetch(url + "js/mobility.js")
    assert status == 200 and "javascript" in ctype and b"api/v1/mobility/" in body and b"uPlot" in body
    status, _, page = fetch(url)
    assert status == 200 and b'src="js/mobility.js"' in page
    assert b'id="mob-bikes"' in page and b'id="mob-counters"' in page
    assert 'src="js/mobility.js"' in (static_dir() / "index.html").read_text()


def test_the_api_answers_the_panels_requests(served_mobility: tuple[str, list[str]]) -> None:
    """The page's exact requests (js/mobility.js) answer with data on the simulated city."""
    url, counters = served_mobility
    mob = url + "api/v1/mobility/"
    stations = get(mob + "stations")["stations"]
    assert len(stations) == 8 and {s["state"] for s in stations} <= STATES
    assert any(s["state"] in ("ok", "empty", "full") for s in stations)  # polled up to now: a state, not unknown
    systems = get(mob + "systems")["systems"]
    assert [s["system"] for s in systems] == ["velomagg-sim"] and systems[0]["polls"] > 0
    assert {s["system"] for s in stations} == {"velomagg-sim"}
    kpis = get(mob + "stations/kpis")["stations"]
    shares = [k["empty_share"] or 0 for k in kpis]
    assert len(kpis) == 8 and shares == sorted(shares, reverse=True)
    assert sorted(c["eui"] for c in get(mob + "counters")["counters"]) == sorted(counters)
    now = datetime.now(UTC)
    eui = quote(counters[0])
    hourly = get(f"{mob}counters/{eui}/series?"
                 + urlencode({"start": js_iso(now - timedelta(days=7)), "resolution": "1h"}))
    total = hourly["directions"]["total"]
    assert len(total) >= 47 and sum(r["count"] or 0 for r in total) > 0 and {"start", "count", "flag"} <= set(total[0])
    daily = get(f"{mob}counters/{eui}/series?"
                + urlencode({"start": js_iso(now - timedelta(days=90)), "resolution": "1d"}))
    assert {"day", "count"} <= set(daily["directions"]["total"][0])
    obs = get(f"{mob}counters/{eui}/observatory?year={now.year}")
    assert {"tmja", "tmja_days_used", "tmjo", "tmjo_days_used"} <= set(obs["directions"]["total"])


@needs_chromium
def test_mobility_panels_render(served_mobility: tuple[str, list[str]]) -> None:
    url, counters = served_mobility
    dom = chromium("--dump-dom", url + "?lang=en#/mobility")
    bikes = panel(dom, "mob-bikes")
    assert 'data-system="velomagg-sim"' in bikes and "8 stations now" in bikes, bikes[:2000]
    counts = dict(re.findall(r'<td class="num[^"]*" data-state="(\w+)">(\d+)</td>', bikes))
    assert set(counts) == STATES and sum(map(int, counts.values())) == 8
    assert 'data-status="ok"' in bikes or 'data-status="failing"' in bikes
    board = panel(dom, "mob-counters")
    assert sorted(re.findall(r'<tr data-eui="([0-9a-f]{16})"', board)) == sorted(counters)
    assert 'aria-pressed="true"' in board and 'class="uplot' in board  # the first counter selected and charted
    # the figure the API gives for the selected counter's year (none only in the first days of January)
    pressed = next(b for b in re.findall(r"<button[^>]*>", board) if 'aria-pressed="true"' in b)
    selected = re.search(r'data-eui="([0-9a-f]{16})"', pressed).group(1)
    year = datetime.now(UTC).year
    tmjo = get(f"{url}api/v1/mobility/counters/{selected}/observatory?year={year}")["directions"]["total"]["tmjo"]
    shown = r'data-figure="tmjo">[\d  .,]+<' if tmjo is not None else r'data-figure="tmjo">–<'
    assert re.search(shown, board), board[-2000:]
    assert "Unavailable" not in bikes + board


MOB_MAP = '[data-map-use="mobility"]'


@needs_chromium
def test_map_fills_stations_with_their_state_and_a_click_opens_the_station(
        served_mobility: tuple[str, list[str]]) -> None:
    """The mobility page's map: every station drawn with its state now (the API's), the alerted one outlined as
    alerted, the legend counting stations by state, and a click on a station going to its page."""
    url, _ = served_mobility
    stations = {s["eui"]: s for s in get(url + "api/v1/mobility/stations")["stations"]}
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as b:
        b.goto(url + "?lang=en#/mobility")
        b.wait_for(f"document.querySelector('{MOB_MAP}')?.dataset.mapState === 'ready'"
                   f" && document.querySelectorAll('{MOB_MAP} path.map-device[data-bike-state]').length === 8")
        drawn = b.js(f"""Object.fromEntries([...document.querySelectorAll(
                     '{MOB_MAP} path.map-device[data-kind="bike_station"]')]
                     .map((p) => [p.dataset.eui, [p.dataset.bikeState, p.dataset.state]]))""")
        assert {e: v[0] for e, v in drawn.items()} == {e: s["state"] for e, s in stations.items()}
        alerted = [e for e, v in drawn.items() if v[1] == "alert"]
        assert len(alerted) == 1
        legend = b.js(f"document.querySelector('{MOB_MAP} .map-legend').textContent")
        for state in {s["state"] for s in stations.values()}:
            n = sum(s["state"] == state for s in stations.values())
            word = {"ok": "bikes and docks free", "unknown": "state unknown"}.get(state, state)
            assert f"station {word} ({n})" in legend, legend
        ok = next((e for e, v in drawn.items() if v[0] == "ok" and e not in alerted), alerted[0])
        b.click_at(*visible_point(b, f'{MOB_MAP} path.map-device[data-eui="{ok}"]'))
        b.wait_for(f"location.hash === '#/device/{ok}'")


RANK_ROWS = """Object.fromEntries(['empty', 'full'].map((k) => [k, [...document.querySelectorAll(
  `#mob-rank [data-ranking="${k}"] tbody tr`)].map((r) => [r.dataset.eui, Number(r.dataset.share),
  Number(r.dataset.episodes), r.querySelector('a').getAttribute('href'), r.cells[2].textContent])]))"""


def expected_rankings(url: str, start: str, end: str) -> dict[str, list[list]]:
    """What the rankings should list for the period the page asked: the API's kpis, empty share order and its
    full_ranking, stations with some time in the state, the first 8."""
    kp = get(url + "api/v1/mobility/stations/kpis?" + urlencode({"start": start, "end": end}))
    by = {k["eui"]: k for k in kp["stations"]}
    rows = {"empty": kp["stations"], "full": [by[e] for e in kp["full_ranking"]]}
    return {kind: [[k["eui"], k[f"{kind}_share"], k[f"{kind}_episodes"], f"#/device/{k['eui']}",
                    str(k[f"{kind}_episodes"])] for k in rs if k[f"{kind}_share"]][:8] for kind, rs in rows.items()}


@needs_chromium
def test_rankings_list_the_apis_worst_stations_over_a_day_or_a_week(served_mobility: tuple[str, list[str]]) -> None:
    """The empty and full rankings: the rows are the API's kpis for the period the page asked (last day, then the
    7 days picked in the selector), each station linking to its device page."""
    url, _ = served_mobility
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as b:
        b.goto(url + "?lang=en#/mobility")
        seen = {}
        for span, days in (("1d", 1), ("7d", 7)):
            if span != "1d":
                b.js(f"(() => {{ const s = document.getElementById('mob-span'); s.value = '{span}';"
                     " s.dispatchEvent(new Event('change')); })()")
            box = b.wait_for(f"(() => {{ const r = document.querySelector('#mob-rank .rankings');"
                             f" return r?.dataset.span === '{span}' && {{ ...r.dataset }}; }})()", timeout=60)
            start, end = datetime.fromisoformat(box["start"]), datetime.fromisoformat(box["end"])
            assert abs((end - start) - timedelta(days=days)) < timedelta(seconds=1), box
            shown = b.js(RANK_ROWS)
            want = expected_rankings(url, box["start"], box["end"])
            assert shown == want, (span, shown, want)
            assert want["empty"], want  # the simulated stuck-empty station: a ranking with rows, not only "none"
            text = b.js("document.getElementById('mob-rank').textContent")
            assert "Most often empty" in text and "Episodes" in text
            if not want["full"]:
                assert "No station was full over the period." in text
            seen[span] = shown
        first = seen["7d"]["empty"][0][0]
        b.click(f'#mob-rank [data-ranking="empty"] tr[data-eui="{first}"] a')
        b.wait_for(f"location.hash === '#/device/{first}'")


# the pixels of the total direction's colour (#0b5cad) on a profile's canvas: the line and its points drawn
BLUE_PIXELS = """((id) => {{ const c = document.querySelector(`#${{id}} canvas`); if (!c) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 11) < 30 && Math.abs(d[i + 1] - 92) < 30
    && Math.abs(d[i + 2] - 173) < 30 && d[i + 3] > 200) n++;
  return n; }})('{}')"""


@needs_chromium
def test_selected_counters_profiles_are_charted_with_its_peak_hours(served_mobility: tuple[str, list[str]]) -> None:
    """The selected counter's hourly (24 local hours) and weekly (7 days) profiles of the year, drawn with uPlot per
    direction, and the morning and evening peak hours the observatory gives, stated."""
    url, _ = served_mobility
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as b:
        b.goto(url + "?lang=en#/mobility")
        b.wait_for("!!document.getElementById('mob-peaks')?.textContent", timeout=60)
        eui = b.js("document.querySelector('#mob-counters button[aria-pressed=\"true\"]').dataset.eui")
        year = b.js("new Date().getFullYear()")
        obs = get(f"{url}api/v1/mobility/counters/{eui}/observatory?year={year}")["directions"]
        if not obs["total"]["hourly_profile"]:  # the first day of January: no complete day in the year yet
            assert b.js("document.getElementById('mob-peaks').textContent") == (
                f"No complete day in {year} for a profile yet.")
            return
        assert len(obs["total"]["hourly_profile"]) == 24 and len(obs["total"]["weekly_profile"]) >= 1
        b.wait_for("document.getElementById('mob-hourly')?.dataset.points === '24'"
                   " && document.getElementById('mob-weekly')?.dataset.points === '7'", timeout=60)
        peaks = obs["total"]["peak_hours"]
        shown = b.js("(() => { const p = document.getElementById('mob-peaks');"
                     " return [p.dataset.morning, p.dataset.evening, p.textContent]; })()")
        assert shown[:2] == [str(peaks["morning"]), str(peaks["evening"])]
        m, e = peaks["morning"], peaks["evening"]
        assert f"Morning peak hour: {m:02d}:00–{m + 1:02d}:00, evening peak hour: {e:02d}:00–{e + 1:02d}:00" == shown[2]
        for box in ("mob-hourly", "mob-weekly"):
            legend = b.js(f"document.querySelector('#{box} .u-legend')?.textContent ?? ''")
            assert all(d in legend for d in ("total", "in", "out")), legend
            # the total's line and points drawn on the canvas (early January: a few weekdays' points only)
            least = 50 if box == "mob-hourly" or len(obs["total"]["weekly_profile"]) == 7 else 1
            assert b.js(BLUE_PIXELS.format(box)) >= least, box
