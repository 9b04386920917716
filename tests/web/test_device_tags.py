"""Device tags from the dashboard, in headless Chromium: the environment department's key opens the river gauge's
page (in French), finds its tags in a form, lowers `threshold_yellow` and saves; the page says so, the store and the
settings history have it, and the next reading opens `flood.river_level` in the running service. The water
department's key sees the tags but no form."""

from __future__ import annotations

import json

from clapas.charter.keys import new_key
from tests.selfservice.test_end_to_end import GAUGE
from tests.web.test_dashboard import needs_chromium
from tests.web.test_settings_page import browser, served  # noqa: F401 (fixtures)


def open_device(browser, url: str, token: str, lang: str) -> None:  # noqa: F811
    browser.goto(url)
    browser.wait_for("document.readyState === 'complete'")
    browser.js(f"sessionStorage.setItem('clapas.key', {json.dumps(token)})")
    browser.goto(f"{url}?lang={lang}#/device/{GAUGE}")
    browser.wait_for("document.getElementById('dv-tags-list').textContent.includes('threshold_yellow=3.00')")


@needs_chromium
def test_the_department_changes_a_gauge_tag_from_its_page(served, browser) -> None:  # noqa: F811
    run, url = served
    open_device(browser, url, run.token, "fr")
    assert browser.js("document.getElementById('dv-tags-h').textContent") == "Étiquettes"
    text = browser.wait_for("!document.getElementById('dv-tags-form').hidden && "
                            "document.getElementById('dv-tags-text').value")
    assert "threshold_yellow=3.00" in text
    browser.js(f"document.getElementById('dv-tags-text').value = "
               f"{json.dumps(text.replace('threshold_yellow=3.00', 'threshold_yellow=1.50'))}")
    browser.js("document.getElementById('dv-tags-save').click()")
    saved = browser.wait_for("document.querySelector('#dv-tags-message[data-state=\"ok\"]')?.textContent")
    assert saved.startswith("Enregistré")
    assert run.store.device(GAUGE)["tags"]["threshold_yellow"] == "1.50"
    assert run.store.settings_history(f"devices.{GAUGE}.tags")[0]["actor"] == "service des crues"
    run.reading(2.0)
    [alert] = run.alerts()
    assert alert["evidence"]["threshold_yellow_m"] == 1.5
    # refused tags: the API's reason on the page
    browser.js("document.getElementById('dv-tags-text').value = 'threshold_red=haut'")
    browser.js("document.getElementById('dv-tags-save').click()")
    refused = browser.wait_for("document.querySelector('#dv-tags-message[data-state=\"error\"]')?.textContent")
    assert "threshold_red: read as a number" in refused


@needs_chromium
def test_another_departments_key_sees_the_tags_without_a_form(served, browser) -> None:  # noqa: F811
    run, url = served
    k = new_key()
    run.store.create_key(key_id=k.key_id, name="eau", secret_hash=k.hash, role="operator-water")
    open_device(browser, url, k.token, "en")
    assert browser.js("document.getElementById('dv-tags-h').textContent") == "Tags"
    assert browser.js("document.getElementById('dv-tags-form').hidden") is True
