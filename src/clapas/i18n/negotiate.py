"""Which language to answer in: `?lang=`, else the best of `Accept-Language` (RFC 9110 §12.5.4), else the city's."""

from __future__ import annotations

LANGUAGES = ("fr", "en")


class UnsupportedLanguage(ValueError):
    """A language asked by name (`?lang=`, a setting) that has no catalog."""


def check_language(lang: str, where: str) -> str:
    if lang not in LANGUAGES:
        raise UnsupportedLanguage(f"{where}: {lang[:20]!r} is not one of {', '.join(LANGUAGES)}")
    return lang


def _accepted(header: str) -> str | None:
    """The supported language the header prefers most (its first one on a tie); `*` stands for none in
    particular. Region subtags do not matter (`fr-CA` is `fr`)."""
    best: tuple[float, str | None] = (0.0, None)
    for part in header.split(",")[:50]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and 0 < q <= 1 and q > best[0]:
            best = (q, primary)
    return best[1]


def negotiate(asked: str | None, accept_language: str | None, default: str) -> str:
    """`asked` (raises `UnsupportedLanguage` if it is not a catalog's), else the header's choice, else `default`."""
    if asked:
        return check_language(asked.strip().lower(), "query parameter 'lang'")
    return (_accepted(accept_language) if accept_language else None) or default
