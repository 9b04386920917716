"""The `clapas` command: run, demo, simulate, replay, devices, zones, codecs, score.

Each subcommand's module adds its own parser (`add_parser(subparsers)`), so this file stays a table of contents.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from clapas import __version__
from clapas.config import ConfigError
from clapas.store.base import StoreError

SUBCOMMANDS: list[str] = [
    "clapas.service:add_parser",  # run, demo
    "clapas.simulator.cli:add_parser",  # simulate
    "clapas.pipeline.replay:add_parser",  # replay
    "clapas.registry.cli:add_parser",  # devices, zones
    "clapas.codecs.cli:add_parser",  # codecs
    "clapas.detectors.score:add_parser",  # score
    "clapas.detectors.rebuild:add_parser",  # state rebuild
    "clapas.reports.cli:add_parser",  # museum report
    "clapas.charter.keys_cli:add_parser",  # keys
    "clapas.charter.audit_cli:add_parser",  # audit
    "clapas.charter.cli:add_parser",  # retention, erase
    "clapas.opendata.cli:add_parser",  # export
    "clapas.serve:add_parser",  # serve (the API alone)
    "clapas.pipeline.worker:add_parser",  # worker (partitioned mode)
    "clapas.connectors.broker.route:add_parser",  # route, bridge (partitioned mode)
    "clapas.connectors.import_cli:add_parser",  # import ngsi, import counts
    "clapas.grafana.cli:add_parser",  # grafana provision
    "clapas.selfservice.cli:add_parser",  # settings show, settings export
]


def _load(spec: str) -> Callable[[argparse._SubParsersAction], None]:
    import importlib

    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clapas",
        description="An open, sovereign IoT data platform for cities.",
        epilog="Settings come from --config FILE (TOML) and CLAPAS_* environment variables; "
        "see city.example.toml.",
    )
    parser.add_argument("--version", action="version", version=f"clapas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for spec in SUBCOMMANDS:
        _load(spec)(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per GBFS poll or delivery otherwise
    try:
        code = args.func(args)
    except ConfigError as e:
        print(f"clapas: configuration error: {e}", file=sys.stderr)
        code = 2
    except StoreError as e:
        print(f"clapas: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `clapas devices export | head`: the reader has gone, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code or 0)


def add_config_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="city settings (TOML); CLAPAS_* variables override it")


if __name__ == "__main__":
    main()
