"""The alerts API in French and English, on both stores: alerts made by the detectors' `Text`s are written in the
city's language (`[web] language`, the store's `message` and the outbox) and answered in the language asked —
`?lang=`, else `Accept-Language`, else the city's — their history's texts too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from clapas.alerts.routing import Router
from clapas.alerts.sink import PersistentAlerts
from clapas.api.app import create_app
from clapas.config import AlertSettings, Settings, WebhookSettings, WebSettings
from clapas.detectors.base import CLEAR, OPEN, Detection, Registry
from clapas.i18n import T
from clapas.store.alerts import AlertChange
from clapas.store.base import Store
from tests.helpers import as_local
from tests.store import test_store as suite

make_store = suite.make_store

T0 = datetime(2026, 7, 14, 4, tzinfo=UTC)
DEV = "e4403dac812d9fc5"
BURST = T("water.burst.opened", flow=2200.0, minutes=20.0, threshold=1500.0)
FR_BURST = "Débit de 2200 L/h pendant 20 min (au-dessus de 1500 L/h) : casse probable"
EN_BURST = "Flow of 2200 L/h for 20 min (above 1500 L/h): probable burst"


def alerting(store: Store, language: str) -> Settings:
    """The city's settings; a burst opened then cleared, and an alert written without a key (by an older version)."""
    settings = Settings(alerts=AlertSettings(webhook=WebhookSettings(url="http://127.0.0.1:9/h")),
                        web=WebSettings(language=language))
    router = Router.from_settings(settings.alerts)
    registry = Registry(devices=[{"eui": DEV, "kind": "water_meter", "zone": "dma-01"}])
    sink = PersistentAlerts(store, router, registry, settings.web.language)
    sink.handle([Detection("water.burst", DEV, OPEN, T0, "critical", {"flow_lph": 2200.0}, BURST)])
    sink.handle([Detection("water.burst", DEV, CLEAR, T0 + timedelta(hours=1), "info", {"flow_lph": 12.0},
                           T("water.burst.cleared", threshold=1500.0))])
    store.apply_alert_changes([AlertChange("water.continuous_flow", "f000000000000001", "open", T0, "major", {},
                                           "leak (stored text)", "device", "dma-01")], router)
    return settings


@pytest.fixture
def city(make_store: Callable[..., Store]) -> Iterator[tuple[TestClient, Store]]:
    store = make_store()
    with TestClient(as_local(create_app(store, alerting(store, "fr")))) as c:
        yield c, store


def burst(c: TestClient, **kw) -> dict:
    r = c.get("/api/v1/alerts", params={"rule": "water.burst", **kw.pop("params", {})}, **kw)
    assert r.status_code == 200, r.text
    [a] = r.json()["alerts"]
    return {**a, "_lang": r.headers["content-language"], "_vary": r.headers.get("vary", "")}


def test_a_french_city_answers_in_french_by_default(city) -> None:
    c, store = city
    a = burst(c)
    assert a["message"] == FR_BURST and a["_lang"] == "fr" and "Accept-Language" in a["_vary"]
    # written in the city's language: the store's column and the notification sent to the webhook
    assert store.alert(a["id"])["message"] == FR_BURST
    [opened] = [n for n in store.notifications() if n["alert_id"] == a["id"] and n["event"] == "opened"]
    assert opened["payload"]["text"] == FR_BURST and opened["payload"]["data"]["text"]["key"] == "water.burst.opened"


def test_accept_language_then_lang_choose(city) -> None:
    c, _ = city
    assert burst(c, headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"})["message"] == EN_BURST
    assert burst(c, headers={"Accept-Language": "de-DE, fr;q=0.3"})["message"] == FR_BURST
    en = burst(c, params={"lang": "en"}, headers={"Accept-Language": "fr"})
    assert en["message"] == EN_BURST and en["_lang"] == "en"
    r = c.get("/api/v1/alerts", params={"lang": "de"})
    assert r.status_code == 422 and "lang" in r.text


def test_one_alert_and_its_history_in_the_language_asked(city) -> None:
    c, _ = city
    aid = burst(c)["id"]
    en = c.get(f"/api/v1/alerts/{aid}", headers={"Accept-Language": "en"})
    assert en.headers["content-language"] == "en"
    body = en.json()
    assert body["message"] == EN_BURST
    assert [(e["kind"], e["text"]) for e in body["events"]] == [
        ("opened", EN_BURST), ("resolved", "Flow back below 1500 L/h")]
    fr = c.get(f"/api/v1/alerts/{aid}").json()
    assert [e["text"] for e in fr["events"]] == [FR_BURST, "Débit revenu sous 1500 L/h"]
    # an action's answer follows the same choice; a person's comment stays as written
    r = c.post(f"/api/v1/alerts/{aid}/comments", params={"lang": "en"}, json={"author": "ana", "text": "vanne fermée"})
    assert r.status_code == 201 and r.json()["message"] == EN_BURST and r.json()["events"][-1]["text"] == "vanne fermée"


def test_an_alert_stored_without_a_key_keeps_its_text(city) -> None:
    c, _ = city
    for lang in ("fr", "en"):
        [a] = c.get("/api/v1/alerts", params={"rule": "water.continuous_flow", "lang": lang}).json()["alerts"]
        assert a["message"] == "leak (stored text)"


def test_the_store_s_own_texts_are_translated_too(city) -> None:
    """A silent device makes its open alerts stale: that event is the store's, in the city's language and asked."""
    c, store = city
    registry = Registry(devices=[{"eui": DEV, "kind": "water_meter", "zone": "dma-01"}])
    sink = PersistentAlerts(store, None, registry, "fr")
    sink.handle([Detection("water.burst", DEV, OPEN, T0 + timedelta(hours=2), "critical", {}, BURST),
                 Detection("health.silent", DEV, OPEN, T0 + timedelta(hours=3), "warning", {},
                           T("health.silent.never"))])
    [a] = c.get("/api/v1/alerts", params={"rule": "water.burst", "state": "open"}).json()["alerts"]
    stale = [e for e in store.alert(a["id"])["events"] if e["kind"] == "stale"]
    assert [e["text"] for e in stale] == ["le capteur est muet : cette alerte n'est plus à jour"]
    en = c.get(f"/api/v1/alerts/{a['id']}", params={"lang": "en"}).json()
    assert [e["text"] for e in en["events"] if e["kind"] == "stale"] == ["the device is silent: this alert is stale"]
    [silent] = c.get("/api/v1/alerts", params={"rule": "health.silent", "lang": "fr"}).json()["alerts"]
    assert silent["message"] == "jamais entendu"


def test_an_english_city_answers_in_english(make_store: Callable[..., Store]) -> None:
    store = make_store()
    with TestClient(as_local(create_app(store, alerting(store, "en")))) as c:
        assert burst(c)["message"] == EN_BURST
        assert burst(c, headers={"Accept-Language": "fr-FR"})["message"] == FR_BURST
    assert store.alerts(rule="water.burst")[0]["message"] == EN_BURST
