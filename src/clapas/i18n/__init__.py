"""What the server says to people, in French and English: alert messages, notifications, export descriptions.

Why a catalog and not strings in the code: an alert is written once, in the city's language (`[web] language`: the
store's `message` column and the notifications), but read in either (the API answers in the one asked). So
detectors produce a `Text` — a catalog key and its parameters, plain JSON values — that is kept in the alert's
history and rendered again when read. Catalogs are `fr.toml` and `en.toml` beside this module (`clapas.i18n.text`).
"""

from clapas.i18n.negotiate import LANGUAGES, UnsupportedLanguage, check_language, negotiate
from clapas.i18n.text import EMPTY, T, Text, has_key, render, render_json, term

__all__ = ["EMPTY", "LANGUAGES", "T", "Text", "UnsupportedLanguage", "check_language", "has_key", "negotiate",
           "render", "render_json", "term"]
