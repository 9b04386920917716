"""`@context` handling: the built-in core context, user contexts (inline or by URL), term expansion and compaction.

Why not PyLD: NGSI-LD needs only JSON-LD's term ↔ IRI mapping for entity types, attribute names and a few
`@vocab`-typed values (ETSI GS CIM 009 §5.5.7); a full JSON-LD expansion of every entity of a query answer costs
≈ 1 ms an entity in PyLD (expand, then compact again) where a dictionary lookup per key costs microseconds, and the
NGSI-LD structure (Property/Relationship/sub-attributes) is walked by `entity.py` anyway. The rules kept from JSON-LD
1.1: term definitions (string or `{"@id": ...}`), compact IRIs (`prefix:suffix`), absolute IRIs kept as they are,
`@vocab` (the core context's default-context vocabulary unless a user context sets one), the core context
`@protected` (a user context cannot redefine its terms), contexts merged in array order (a later term wins), and
compaction to the term, else to a compact IRI with a prefix term, else the IRI.

Contexts by URL (§6.3.11, a `Link` header or `@context` strings) are resolved from, in order: the vendored core
context (every `ngsi-ld-core-context*.jsonld` URL) and FIWARE test context; the process cache; the on-disk cache
(`[ngsi_ld] context_cache`, one file per URL named `quote(url, safe="")`); a fetch, only from `[ngsi_ld]
context_hosts` (loopback by default, never the Internet unless the city says so), whose answer is cached on disk.
Anything else is `LdContextNotAvailable` (503).

Public API (stable): `CORE_URL`, `NGSI_LD`, `DEFAULT_VOCAB`, `Context` (`expand`, `compact`, `expand_value`,
`compact_value`, `link`, `body_context`), `CORE`, `ContextResolver` (`resolve(value)`), `core_term(iri)`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from clapas.api.ngsi_ld.errors import NgsiError

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
CORE_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
_CORE_URL = re.compile(r"^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(-v1\.\d+)?\.jsonld$")
FIWARE_TEST_URL = "https://fiware.github.io/NGSI-LD_TestSuite/ldContext/testContext.jsonld"
_VENDORED = {FIWARE_TEST_URL: "fiware-testContext.jsonld"}
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//|[^/]).*")
_MAX_DEPTH = 8  # contexts that import contexts: deeper than this is refused (a loop, or abuse)
_MAX_CACHED = 256
# Contexts clapas serves itself, by URL path, whatever the host a client names it with (the city's tenant registers
# /ngsi-ld/contexts/clapas.jsonld): their documents, never fetched.
BUILT_IN_PATHS: dict[str, Any] = {}


def _vendored_text(name: str) -> str:
    return (resources.files("clapas.api.ngsi_ld") / "contexts" / name).read_text(encoding="utf-8")


def _term_iri(defn: Any) -> tuple[str | None, str | None]:
    """A term definition's IRI and its `@type` (e.g. `@vocab`, `@id`, `DateTime`)."""
    if isinstance(defn, str):
        return defn, None
    if isinstance(defn, Mapping):
        iri = defn.get("@id")
        return (iri if isinstance(iri, str) else None), defn.get("@type")
    return None, None


def _resolve_compact(iri: str, terms: Mapping[str, str]) -> str:
    """`ngsi-ld:Property` → its IRI through the prefix term; an absolute IRI or unknown prefix stays."""
    if ":" in iri and not iri.startswith("@"):
        prefix, _, suffix = iri.partition(":")
        if not suffix.startswith("//") and prefix in terms:
            return terms[prefix] + suffix
    return iri


def _core_terms() -> tuple[dict[str, str], dict[str, str | None]]:
    ctx = msgspec.json.decode(_vendored_text("core-context-v1.9.jsonld"))["@context"]
    raw = {k: v for k, v in ctx.items() if not k.startswith("@")}
    prefixes = {k: v for k, v in raw.items() if isinstance(v, str) and v.endswith(("/", "#"))}
    terms: dict[str, str] = {}
    types: dict[str, str | None] = {}
    for k, v in raw.items():
        iri, typ = _term_iri(v)
        if iri is None or iri.startswith("@"):
            continue
        terms[k] = _resolve_compact(iri, prefixes)
        types[k] = typ
    return terms, types


_CORE_TERMS, _CORE_TYPES = _core_terms()
_CORE_REVERSE = {v: k for k, v in _CORE_TERMS.items()}


def core_term(iri: str) -> str | None:
    """The core context's term of an IRI (`https://uri.etsi.org/ngsi-ld/location` → `location`), if any."""
    return _CORE_REVERSE.get(iri)


@dataclass(frozen=True)
class Context:
    """A resolved `@context`: the user's terms laid under the protected core context.

    `source` is the `@context` as the client gave it (echoed in `application/ld+json` bodies), `link_url` the one
    URL a response's Link header names (the core context when the client's context was not a single URL).
    """

    terms: Mapping[str, str] = field(default_factory=dict)
    types: Mapping[str, str | None] = field(default_factory=dict)
    vocab: str = DEFAULT_VOCAB
    source: Any = CORE_URL
    link_url: str = CORE_URL
    _reverse: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _prefixes: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        rev = self._reverse
        for term, iri in self.terms.items():
            if term not in _CORE_TERMS:
                rev.setdefault(iri, term)  # the first term of an IRI (JSON-LD picks the shortest; close enough)
        prefixes = sorted(((iri, t) for t, iri in self.terms.items() if iri.endswith(("/", "#", ":"))),
                          key=lambda p: -len(p[0]))
        object.__setattr__(self, "_prefixes", tuple(prefixes))

    def expand(self, term: str) -> str:
        """A term (type or attribute name) → its IRI: core term, user term, compact IRI, absolute IRI, @vocab."""
        iri = _CORE_TERMS.get(term)
        if iri is not None:
            return iri
        iri = self.terms.get(term)
        if iri is not None:
            return iri
        if ":" in term:
            prefix, _, suffix = term.partition(":")
            if not suffix.startswith("//"):
                base = _CORE_TERMS.get(prefix) or self.terms.get(prefix)
                if base is not None:
                    return base + suffix
            if _ABSOLUTE.match(term):
                return term
        return self.vocab + term

    def compact(self, iri: str) -> str:
        """An IRI → the term a client of this context knows: core term, user term, compact IRI, @vocab, IRI."""
        term = _CORE_REVERSE.get(iri)
        if term is not None:
            return term
        term = self._reverse.get(iri)
        if term is not None:
            return term
        if iri.startswith(self.vocab) and len(iri) > len(self.vocab):
            return iri[len(self.vocab):]
        for base, prefix in self._prefixes:
            if iri.startswith(base) and len(iri) > len(base):
                return f"{prefix}:{iri[len(base):]}"
        return iri

    def expand_value(self, value: str) -> str:
        """A `@vocab`-typed value (VocabProperty's `vocab`, type names in discovery): a term → its IRI."""
        return self.expand(value)

    def compact_value(self, value: str) -> str:
        return self.compact(value)

    @property
    def link(self) -> str:
        """The Link header value naming this context (§6.3.11)."""
        return f'<{self.link_url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'

    def body_context(self) -> Any:
        """The `@context` member of an `application/ld+json` body: the client's own, else the core context URL."""
        return self.source


CORE = Context()


class ContextResolver:
    """Turns a `@context` value (URL, object, or array of them) into a `Context`, with the caches described above.

    `hosts`: hosts a context may be fetched from; `cache_dir`: the on-disk cache (None: none); `timeout_s`: a
    fetch's limit. Thread-safe: routes run in FastAPI's thread pool.
    """

    def __init__(self, hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1"), cache_dir: str | Path | None = None,
                 timeout_s: float = 3.0) -> None:
        self.hosts = frozenset(h.strip().lower() for h in hosts if h.strip())
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.timeout_s = timeout_s
        self._docs: dict[str, Any] = {}
        self._resolved: dict[str, Context] = {}
        self._lock = threading.Lock()

    def resolve(self, value: Any) -> Context:
        """The Context of a `@context` value; None → the core context. LdContextNotAvailable (503) or
        InvalidRequest (400, a malformed context) otherwise."""
        if value is None:
            return CORE
        if isinstance(value, str):
            if _CORE_URL.match(value):
                return CORE
            with self._lock:
                hit = self._resolved.get(value)
            if hit is not None:
                return hit
        terms: dict[str, str] = {}
        types: dict[str, str | None] = {}
        vocab = [DEFAULT_VOCAB]
        self._merge(value, terms, types, vocab, 0)
        resolved = {k: _resolve_compact(v, {**_CORE_TERMS, **terms}) for k, v in terms.items()}
        link_url = value if isinstance(value, str) else (
            value[0] if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str) else CORE_URL)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            urls = [v for v in value if not _CORE_URL.match(v)]
            if len(urls) == 1:
                link_url = urls[0]
        ctx = Context(terms=resolved, types=types, vocab=vocab[-1], source=value, link_url=link_url)
        if isinstance(value, str):
            with self._lock:
                if len(self._resolved) >= _MAX_CACHED:
                    self._resolved.clear()
                self._resolved[value] = ctx
        return ctx

    def _merge(self, value: Any, terms: dict[str, str], types: dict[str, str | None], vocab: list[str],
               depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise NgsiError("LdContextNotAvailable", "@context nested too deeply (a loop?)")
        if value is None:
            return
        if isinstance(value, list):
            for v in value:
                self._merge(v, terms, types, vocab, depth + 1)
            return
        if isinstance(value, str):
            if _CORE_URL.match(value):
                return
            doc = self._document(value)
            self._merge(doc.get("@context") if isinstance(doc, Mapping) else None, terms, types, vocab, depth + 1)
            return
        if not isinstance(value, Mapping):
            raise NgsiError("InvalidRequest", f"@context must be a URL, an object or an array, not {value!r:.80}")
        for k, v in value.items():
            if k == "@vocab" and isinstance(v, str):
                vocab.append(_resolve_compact(v, {**_CORE_TERMS, **terms}))
            elif k.startswith("@") or k in _CORE_TERMS:
                continue  # keywords, and the protected core terms (a user context cannot redefine them)
            else:
                iri, typ = _term_iri(v)
                if iri is None and isinstance(v, Mapping) and "@id" not in v:
                    iri = k  # {"@type": ...} alone: the term expands by @vocab (resolved below)
                if iri is not None and not iri.startswith("@"):
                    terms[k] = iri
                    types[k] = typ

    def _document(self, url: str) -> Any:
        """A context document by URL: vendored, cached, or fetched from an allowed host."""
        name = _VENDORED.get(url)
        if name is not None:
            return msgspec.json.decode(_vendored_text(name))
        built_in = BUILT_IN_PATHS.get(urlsplit(url).path)
        if built_in is not None:
            return built_in()
        with self._lock:
            doc = self._docs.get(url)
        if doc is not None:
            return doc
        path = self.cache_dir / quote(url, safe="") if self.cache_dir else None
        if path is not None and path.is_file():
            doc = _decode(path.read_bytes(), url)
        else:
            raw = self._fetch(url)
            doc = _decode(raw, url)
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(raw)
                except OSError:
                    pass  # a read-only cache still serves: the process cache keeps it
        with self._lock:
            if len(self._docs) >= _MAX_CACHED:
                self._docs.clear()
            self._docs[url] = doc
        return doc

    def _fetch(self, url: str) -> bytes:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or host not in self.hosts:
            raise NgsiError("LdContextNotAvailable", f"@context {url} is neither built in nor cached, and "
                            f"{host or 'its host'} is not among the hosts contexts may be fetched from "
                            "([ngsi_ld] context_hosts)")
        import httpx

        try:
            r = httpx.get(url, timeout=self.timeout_s, headers={"Accept": "application/ld+json, application/json"})
        except httpx.HTTPError as e:
            raise NgsiError("LdContextNotAvailable", f"@context {url} could not be fetched: {e}") from None
        if r.status_code != 200:
            raise NgsiError("LdContextNotAvailable", f"@context {url} answered {r.status_code}")
        return r.content


def _decode(raw: bytes, url: str) -> Any:
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise NgsiError("LdContextNotAvailable", f"@context {url} is not JSON") from None
    if not isinstance(doc, Mapping) or "@context" not in doc:
        raise NgsiError("LdContextNotAvailable", f"@context {url} holds no @context member")
    return doc
