"""Screenshots of each dashboard page (PNG) for the README: `docs/screenshots/<page>.<lang>.png`.

    PYTHONPATH=src:. python scripts/screenshots.py                 # a demo-like city, built and served here
    PYTHONPATH=src:. python scripts/screenshots.py --url http://127.0.0.1:8000/   # a running dashboard

Without --url the script builds the demo-like city of the page tests (tests/web/demo_city.py: the simulator's week
through the real pipeline and detectors, about ten seconds) and serves it on a free loopback port, every section
readable (the local caller), so that each page shows what it holds. With --url it shoots what that dashboard shows
its anonymous visitor. The machine's Chromium draws them (CLAPAS_CHROMIUM or `chromium` on PATH); no request leaves
the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PAGES = ["", "water", "heat", "floods", "air", "museum", "mobility", "health"]
# the alert pages shown: one per kind of evidence drawn
EVIDENCE_RULES = ["water.district_night_flow", "heat.heatwave", "flood.river_level"]
WIDTH, HEIGHT = 1280, 1500


def chromium() -> str:
    import os

    path = os.environ.get("CLAPAS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        sys.exit("screenshots: no Chromium found (set CLAPAS_CHROMIUM)")
    return path


def shoot(browser: str, url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=8000",
                        "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={out}", url],
                       capture_output=True, timeout=120, check=True)
    if not out.exists() or out.stat().st_size < 10_000:
        sys.exit(f"screenshots: {url} gave no picture")


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def routes(base: str) -> Iterator[tuple[str, str]]:
    """(file stem, route) of each page: the use pages, a device page, the alert pages with evidence."""
    for p in PAGES:
        yield p or "overview", p
    shown_device = ""
    for rule in EVIDENCE_RULES:
        alerts = get(f"{base}api/v1/alerts?rule={rule}&limit=1")["alerts"]
        if alerts and not alerts[0].get("withheld"):
            yield f"alert-{rule.replace('.', '-')}", f"alert/{alerts[0]['id']}"
            if alerts[0]["subject_kind"] == "device":
                shown_device = shown_device or alerts[0]["subject"]
    if shown_device:
        yield "device", f"device/{shown_device}"


@contextlib.contextmanager
def demo_like() -> Iterator[str]:
    from clapas.api.app import create_app
    from clapas.config import Settings
    from tests.helpers import as_local
    from tests.web.conftest import serving
    from tests.web.demo_city import build_demo_store

    with tempfile.TemporaryDirectory() as tmp:
        store = build_demo_store(Path(tmp) / "city.duckdb")
        try:
            with serving(as_local(create_app(store, Settings()))) as url:
                yield url
        finally:
            store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running dashboard (default: build and serve a demo-like city)")
    ap.add_argument("--out", default="docs/screenshots", help="folder for the PNG files")
    ap.add_argument("--lang", default="fr", help="languages, comma-separated (fr, en); the README shows French")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    langs = [lang.strip() for lang in args.lang.split(",") if lang.strip()]
    with contextlib.nullcontext(args.url) if args.url else demo_like() as base:
        base = base if base.endswith("/") else base + "/"
        for stem, route in routes(base):
            for lang in langs:
                path = out / f"{stem}.{lang}.png"
                shoot(browser, f"{base}?lang={lang}#/{route}", path)
                print(path, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
