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
# Terms of the models that the core context defines and protects: they keep the core's IRI (a user context may not
# redefine them, so a model's own IRI would never compact back to its term).
CORE_TERMS = frozenset({"location", "status"})


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
    if term in CORE_TERMS:
        return f"{CORE}{term}"
    return terms()[term]


def compact(iri: str) -> str:
    """The term of an IRI of this context (or of a core term the models use), else the IRI itself."""
    if iri.startswith(CORE) and iri[len(CORE):] in CORE_TERMS:
        return iri[len(CORE):]
    return _iris().get(iri, iri)
