"""The issue's bar from the dashboard, in headless Chromium: the environment department's key opens the settings
page (in French), picks the river gauge's yellow height, types a new one and applies it; the page says it is saved
and lists it in the history; the store and the audit log have the change; the next reading above it opens
`flood.river_level` in the running service, no restart. Another department's key is offered none of it, and a
value the config file's rules refuse is refused on the page with their message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clapas.charter.keys import new_key
from tests.selfservice.test_end_to_end import GAUGE, YELLOW, Run
from tests.web.conftest import serving
from tests.web.test_dashboard import CHROMIUM, needs_chromium

ROW = f'#settings-rows tr[data-path="{YELLOW}"]'


@pytest.fixture
def served(samples: Path, tmp_path: Path) -> Iterator[tuple[Run, str]]:
    run = Run(samples, tmp_path)
    for _ in range(4):
        run.reading(2.0)  # the gauge reports 2 m, under its tagged yellow height (3 m)
    with serving(run.app) as url:
        yield run, url
    run.close()


@pytest.fixture
def browser() -> Iterator:
    from tests.web.cdp import Browser

    assert CHROMIUM is not None
    b = Browser(CHROMIUM)
    yield b
    b.close()


def open_with_key(browser, url: str, token: str, lang: str) -> None:
    browser.goto(url)
    browser.wait_for("document.readyState === 'complete'")
    browser.js(f"sessionStorage.setItem('clapas.key', {json.dumps(token)})")
    browser.goto(f"{url}?lang={lang}#/settings")
    browser.wait_for("document.querySelector('#settings-rows tr') !== null")


@needs_chromium
def test_the_department_changes_the_gauge_threshold_from_the_page(served, browser) -> None:
    run, url = served
    open_with_key(browser, url, run.token, "fr")
    browser.wait_for(f"!!document.querySelector({json.dumps(ROW)})")
    assert "environnement (chaleur, air, crues)" in browser.js("document.getElementById('settings-who').textContent")
    # the gauge's row: the tagged height in use, nothing overridden yet
    row = browser.js(f"[...document.querySelector({json.dumps(ROW)}).cells].map(c => c.textContent)")
    assert row[0] == YELLOW and row[2] == "3" and row[4] == ""
    browser.js(f"document.querySelector({json.dumps(ROW)}).click()")
    assert browser.js("document.getElementById('settings-path').value") == YELLOW
    assert browser.js("document.getElementById('settings-value').value") == "3"
    browser.js("document.getElementById('settings-value').value = '1.5'")
    browser.js("document.getElementById('settings-apply').click()")
    saved = browser.wait_for("document.querySelector('#settings-message[data-state=\"ok\"]')?.textContent")
    assert saved == f"Enregistré : {YELLOW} = 1,5. Il s'applique dès la prochaine mesure."
    history = browser.wait_for("document.querySelector('#settings-history tr[data-change]')?.innerText")
    assert "service des crues (operator-environment)" in history and "1,5" in history
    overridden = browser.wait_for(f"document.querySelector({json.dumps(ROW)}).dataset.overridden === 'true' && "
                              f"document.querySelector({json.dumps(ROW)}).cells[2].textContent")
    assert overridden == "1,5"

    [change] = run.store.settings_history(YELLOW)
    assert (change["actor"], json.loads(change["value"])) == ("service des crues", 1.5)
    run.app.state.access.audit.flush()
    [entry] = run.store.audit_entries(event="settings.changed")
    assert entry["detail"]["path"] == YELLOW and entry["detail"]["value"] == 1.5

    assert run.alerts() == []
    run.reading(2.0)  # the next reading, above the new height: the running detectors use it
    [alert] = run.alerts()
    assert alert["state"] == "open" and alert["evidence"]["threshold_yellow_m"] == 1.5

    # a value the rules refuse: the page says why, in the API's words, and nothing is stored
    browser.js("document.getElementById('settings-value').value = 'haut'")
    browser.js("document.getElementById('settings-apply').click()")
    refused = browser.wait_for("document.querySelector('#settings-message[data-state=\"error\"]')?.textContent")
    assert refused.startswith("Pas une valeur de type float|null")
    browser.js("document.getElementById('settings-path').value = 'flood.rise_1h_m_per_h'")
    browser.js("document.getElementById('settings-value').value = '\"vite\"'")
    browser.js("document.getElementById('settings-apply').click()")
    refused = browser.wait_for("document.querySelector('#settings-message[data-state=\"error\"]')?.textContent"
                           ".includes('Expected')")
    message = browser.js("document.getElementById('settings-message').textContent")
    assert message.startswith("Valeur refusée par les règles de la configuration") and "`float`" in message
    assert len(run.store.settings_history()) == 1


@needs_chromium
def test_another_departments_key_is_offered_none_of_it(served, browser) -> None:
    run, url = served
    k = new_key()
    run.store.create_key(key_id=k.key_id, name="eau", secret_hash=k.hash, role="operator-water")
    open_with_key(browser, url, k.token, "en")
    who = browser.wait_for("document.getElementById('settings-who').textContent")
    assert who.startswith("This key changes the settings of: water.")
    paths = browser.js("[...document.querySelectorAll('#settings-rows tr[data-path]')].map(r => r.dataset.path)")
    assert paths and all(p.startswith(("water.", 'alerts.rule_enabled."water.')) for p in paths), paths
    assert GAUGE not in " ".join(paths)
