"""The dashboard's static files with cache headers that never serve a stale script after a release (issue 16's
first-view budget).

Two rules. A file the page names with its content's hash (`vendor/leaflet/leaflet.js?v=3f1c…`, written into
index.html by `versioned`) is cached for a year as immutable: a new file is a new hash, hence a new URL, and
index.html itself is `no-cache`. Every other file (the page's ES modules, which import one another by plain relative
paths, the catalogs, images) is `no-cache`: the browser keeps it but asks again each time with the ETag Starlette
sends, and gets a bodiless 304 while it has not changed.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

IMMUTABLE = "public, max-age=31536000, immutable"  # a year: RFC 9111 §5.2.2.1 (max-age), RFC 8246 (immutable)
REVALIDATE = "no-cache"  # kept, but revalidated (ETag / If-None-Match) before each use
VERSION_PARAM = "v"
# the page's classic scripts and style sheets: <script src="…"> and <link href="…">, relative paths only. Not its ES
# modules: they import one another by plain paths, and a module under two URLs would run twice.
_ASSET = re.compile(r'(<(?:script|link)\b[^>]*?\s(?:src|href)=")([\w./-]+\.(?:js|css))("[^>]*>)', re.IGNORECASE)
_MODULE = re.compile(r'type="module"|rel="modulepreload"', re.IGNORECASE)
_hashes: dict[tuple[str, int, int], str] = {}


def content_hash(path: Path) -> str | None:
    """The first 12 hex digits of the file's SHA-256 (kept per path, mtime and size), None when there is no file."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _hashes:
        _hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return _hashes[key]


def versioned(html: str, root: Path) -> str:
    """The page with `?v=<content hash>` on each classic script and style sheet it names that is under `root`."""
    def one(m: re.Match[str]) -> str:
        digest = None if _MODULE.search(m.group(0)) else content_hash(root / m.group(2))
        return m.group(0) if digest is None else f"{m.group(1)}{m.group(2)}?{VERSION_PARAM}={digest}{m.group(3)}"
    return _ASSET.sub(one, html)


class DashboardFiles(StaticFiles):
    """StaticFiles with the cache rules above. Responses over 1 kB are compressed by the app's GZipMiddleware."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        query = scope.get("query_string", b"").decode("latin-1")
        # pinned only by the hash of the file as it is now: an old page's URL is not cached as this content
        pinned = f"{VERSION_PARAM}={content_hash(Path(full_path))}" in query.split("&")
        response.headers["Cache-Control"] = IMMUTABLE if pinned else REVALIDATE
        return response
