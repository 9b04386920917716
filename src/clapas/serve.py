"""`clapas serve`: the API and dashboard alone, reading the store (partitioned mode: as many as needed, beside the
`clapas worker` processes that write it). Without a pipeline the HTTP ingest answers 503 and /healthz says so."""

from __future__ import annotations

import argparse
import asyncio
import logging

from clapas.cli import add_config_argument
from clapas.config import load_settings


def cmd_serve(args: argparse.Namespace) -> int:
    from clapas.api.app import create_app
    from clapas.service import run_loop, serve_app, stop_on_signals
    from clapas.store.base import open_store

    settings = load_settings(args.config)
    logging.getLogger().setLevel(settings.log_level.upper())
    if args.port:
        settings.http.port = args.port
    store = open_store(settings.store, timezone=settings.timezone)

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await serve_app(create_app(store, settings), settings, stop)

    try:
        run_loop(main())
    finally:
        store.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the API and dashboard only, reading the store (several can run)",
                       description="Serve the API and dashboard from the store without ingesting (partitioned "
                       "mode: `clapas worker` processes write the store). Settings as for `clapas run`.")
    add_config_argument(p)
    p.add_argument("--port", type=int, default=None, help="HTTP port (default 8000 or CLAPAS_HTTP_PORT)")
    p.set_defaults(func=cmd_serve)
