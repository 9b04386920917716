"""The clapas JSON-LD context: the city's terms mapped to Smart Data Models IRIs.

Vendored as `clapas.jsonld` beside this module (made from `models.context_terms`, which a test keeps it equal to)
and served by clapas itself, so that no client nor clapas needs the network to expand or compact the city's terms.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

CORE = "https://uri.etsi.org/ngsi-ld/"
CONTEXT_FILE = "clapas.jsonld"
CONTEXT_PATH = "/ngsi-ld/contexts/clapas.jsonld"  # where clapas serves it


@cache
def document() -> dict[str, Any]:
    """The context document as served."""
    return json.loads((resources.files(__package__) / CONTEXT_FILE).read_text(encoding="utf-8"))


@cache
def terms() -> dict[str, str]:
    return dict(document()["@context"])


@cache
def _iris() -> dict[str, str]:
    return {iri: term for term, iri in terms().items()}


def expand(term: str) -> str:
    """A clapas term's IRI (`location` and the other core terms are NGSI-LD's own)."""
    if term == "location":
        return f"{CORE}location"
    return terms()[term]


def compact(iri: str) -> str:
    """The term of an IRI of this context (or of the core's `location`), else the IRI itself."""
    if iri == f"{CORE}location":
        return "location"
    return _iris().get(iri, iri)
