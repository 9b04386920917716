"""Which language an answer is in: `?lang=`, else Accept-Language (q-values, regions, `*`), else the city's."""

from __future__ import annotations

import pytest

from clapas.i18n import UnsupportedLanguage, negotiate


@pytest.mark.parametrize(("asked", "header", "expected"), [
    ("en", "fr-FR,fr;q=0.9", "en"),  # ?lang= wins over the header
    ("FR", None, "fr"),
    (None, "en-GB,en;q=0.9,fr;q=0.8", "en"),
    (None, "de-DE,fr-CA;q=0.5,en;q=0.4", "fr"),  # the best supported, region ignored
    (None, "en;q=0.2, fr;q=0.9", "fr"),
    (None, "en;q=0, fr;q=0", "fr"),  # q=0: not acceptable → the city's
    (None, "de, it", "fr"),
    (None, "*", "fr"),
    (None, "", "fr"),
    (None, "en;q=bad", "fr"),
    (None, None, "fr"),
])
def test_negotiate(asked, header, expected) -> None:
    assert negotiate(asked, header, "fr") == expected


def test_the_city_default_applies() -> None:
    assert negotiate(None, "de", "en") == "en"


def test_an_unknown_language_asked_by_name_is_refused() -> None:
    with pytest.raises(UnsupportedLanguage, match="'de' is not one of fr, en"):
        negotiate("de", "fr", "fr")
