"""The catalogs and the rendering of `Text`: the same keys in both languages, every key the code uses present,
French numbers, dates and regulatory words, fallbacks that show rather than break."""

from __future__ import annotations

import re
from pathlib import Path

from clapas.i18n import T, Text, render, render_json
from clapas.i18n.text import catalog

SRC = Path(__file__).parents[2] / "src" / "clapas"
# keys built at run time (f"…{x}"): every value the code can give them
DYNAMIC = [f"mobility.station.{s}" for s in ("empty", "full")] + [
    f"museum.fluctuation.{q}" for q in ("humidity", "temperature")] + [
    f"alert.{k}" for k in ("stale", "resumed")] + [f"opendata.format.{f}" for f in ("csv", "csv-fr", "geojson",
                                                                                   "parquet")]


def test_both_catalogs_have_the_same_keys() -> None:
    assert set(catalog("fr")) == set(catalog("en"))


def test_every_key_the_code_names_is_in_both_catalogs() -> None:
    used = set(DYNAMIC)
    for p in SRC.rglob("*.py"):
        used |= set(re.findall(r"\bT\(\s*\"([a-z_.0-9-]+)\"", p.read_text(encoding="utf-8")))
        # T("a" if x else "b", …): both branches
        used |= {k for pair in re.findall(r"\bT\(\s*\"([a-z_.0-9-]+)\" if [^\n]*? else \"([a-z_.0-9-]+)\"",
                                          p.read_text(encoding="utf-8")) for k in pair}
    assert len(used) > 80
    missing = sorted(k for k in used if k not in catalog("en") or k not in catalog("fr"))
    assert missing == []


def test_french_numbers_dates_and_words() -> None:
    t = T("water.overconsumption.opened", volume=1234.5678, days=7, ratio=2.54, subscriber="AB-12",
          respond_by="2026-08-03")
    fr = render(t, "fr")
    assert "loi Warsmann" in fr and "1234,57 m³" in fr and "2,5 fois" in fr and "jusqu'au 03/08/2026" in fr
    assert "informer sans délai l'abonné AB-12" in fr
    en = render(t, "en")
    assert "1234.57 m³" in en and "2.5×" in en and "(reply by 2026-08-03)" in en
    assert render(T("air.threshold.opened", pollutant="pm2_5", value=61.0, zone="centre", level="information",
                    threshold=50, span=T("air.span_days", n=2), sensors=3, completeness=0.875,
                    atmo=T("air.atmo", day="2026-07-14", label="Mauvais")), "fr") == (
        "PM2,5 : moyenne horaire 61 µg/m³ en zone centre, au-dessus du seuil d'information-recommandation "
        "(50 µg/m³ pendant 2 jours consécutifs), d'après 3 capteur(s), données complètes à 88\u202f% ; indicatif "
        "(capteurs à bas coût) ; indice ATMO du 14/07/2026 : Mauvais")
    level = T("flood.river_level.opened", gauge=T("flood.gauge.named", river="Lez", eui="a1"), level=3.4,
              at="14/07 09:00", colour="red", threshold=3.3, rising=T("flood.rising", rate=0.25))
    assert render(level, "fr") == ("Lez, station a1 : hauteur 3,40 m le 14/07 09:00, au-dessus du seuil de vigilance "
                                   "rouge (3,30 m), en hausse de +0,25 m/h")
    assert render(level, "en") == ("Lez gauge a1: level 3.40 m at 14/07 09:00, above the red height (3.30 m), "
                                   "rising +0.25 m/h")
    assert "vigilance canicule officielle (jaune, orange, rouge) est celle de Météo-France" in render(
        T("heat.official"), "fr")
    assert render(T("health.silent.since", last="2026-07-14T07:00:00+00:00"), "fr") == (
        "aucune remontée depuis le 14/07/2026 07:00 UTC")
    assert render(T("museum.fluctuation.opened", room="Salle 1", cls="A1", ranges=[
        T("museum.fluctuation.humidity", range=12.0, limit=10), T("museum.fluctuation.temperature", range=5.0,
                                                                  limit=4)]), "fr") == (
        "Salle 1 : amplitude d'HR 12,0 (limite 10) et amplitude de T 5,0 (limite 4) en 24 h (classe A1)")


def test_thousands_and_unknown_values() -> None:
    assert render(T("opendata.distribution", format="CSV", days=1500, access=Text("")), "en").startswith(
        "CSV export;")
    assert render(T("water.meter_alarm.opened", flag="leak"), "fr").startswith("Le compteur signale LEAK (fuite)")
    # a value the catalog has no word for is shown as it is; a key no catalog has is shown as the key
    assert render(T("water.meter_alarm.opened", flag="sensor_fraud"), "en") == "Meter reports sensor_fraud"
    assert render(T("no.such.key", x=1), "fr") == "no.such.key"
    # a parameter missing shows its placeholder, never raises
    assert render(T("water.burst.cleared"), "en") == "Flow back below {threshold:.0f} L/h"


def test_stored_texts_render_again_in_either_language() -> None:
    t = T("flood.rain.opened", eui="r1", zone="lez", at="14/07 09:00", tier="intense",
          amounts=[T("flood.rain_amount", mm=62.0, hours=3), T("flood.rain_amount", mm=95.0, hours=6)])
    stored = t.as_json()
    assert Text.from_json(stored) == t
    assert render_json(stored, "fr") == ("Fortes pluies au pluviomètre r1 (lez) le 14/07 09:00 : 62 mm en 3 h, 95 mm "
                                         "en 6 h, au niveau des cumuls de pluies intenses (période de retour 10 ans) "
                                         "ou au-delà")
    assert render_json(stored, "en").startswith("Heavy rain at gauge r1 (lez) by 14/07 09:00: 62 mm in 3 h, 95 mm")
    # what was stored before texts had keys keeps its text
    assert render_json(None, "fr", "leak") == "leak"
    assert render_json({"key": "gone.key", "params": {}}, "fr", "old text") == "old text"
