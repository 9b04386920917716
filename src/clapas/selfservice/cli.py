"""`clapas settings show` and `clapas settings export`: what the departments changed, and the config it makes.

The config file stays the base: `show` lists each value overridden in the store (its value, the file's, who changed
it and when) and the overrides the file no longer accepts; `export` prints the effective configuration as TOML,
each overridden value followed by a comment saying so — a file the city can take as its new base.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from clapas.cli import add_config_argument
from clapas.config import load_settings
from clapas.selfservice import paths
from clapas.selfservice.holder import SettingsHolder
from clapas.selfservice.toml import dumps
from clapas.store.base import open_store


def _holder(args: argparse.Namespace) -> tuple[SettingsHolder, Any]:
    settings = load_settings(args.config)
    store = open_store(settings.store, timezone=settings.timezone, postgres=settings.postgres)
    return SettingsHolder(settings, store), store


def _text(v: Any) -> str:
    return "unset" if v is None else json.dumps(v, ensure_ascii=False)


def _mark(r: dict[str, Any], base: Any) -> str:
    return (f"overridden by {r['actor']}" + (f" ({r['role']})" if r["role"] else "")
            + f" at {r['time'].isoformat(timespec='seconds')}; config file: {_text(base)}")


def cmd_show(args: argparse.Namespace) -> int:
    h, store = _holder(args)
    try:
        base = paths.tree(h.base)
        rows = [{"path": p, "value": r["value"], "base": paths.get(base, paths.split(p)), "actor": r["actor"],
                 "role": r["role"], "time": r["time"].isoformat(), "department": paths.department(paths.split(p))}
                for p, r in h.overrides.items()]
        if args.json:
            json.dump({"overridden": rows, "skipped": h.skipped}, sys.stdout, ensure_ascii=False, indent=1)
            print()
            return 0
        if not rows and not h.skipped:
            print("no value overridden: the config file's settings apply")
        for r in rows:
            print(f"{r['path']} = {_text(r['value'])}  (config file: {_text(r['base'])}; {r['department']}, "
                  f"by {r['actor']} at {r['time']})")
        for p, why in h.skipped.items():
            print(f"{p}: override not applied, {why}")
        return 0
    finally:
        store.close()


SECRET_KEYS = ("secret", "password")


def _hide_secrets(tree: Any, at: list[str], marks: dict[str, str]) -> None:
    """Secrets stay where they are (the environment, a file the city protects): left out, with a comment."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in list(items):
        if isinstance(k, str) and k in SECRET_KEYS and v:
            tree[k] = None
            var = "CLAPAS_" + "_".join([*at, k]).upper()
            marks[paths.join([*at, k])] = f"hidden: a secret, keep it in {var} or the config file"
        elif isinstance(v, (dict, list)):
            _hide_secrets(v, [*at, k] if isinstance(k, str) else at, marks)


def cmd_export(args: argparse.Namespace) -> int:
    h, store = _holder(args)
    try:
        base = paths.tree(h.base)
        marks = {p: _mark(r, paths.get(base, paths.split(p))) for p, r in h.overrides.items()}
        tree = paths.tree(h.current)
        _hide_secrets(tree, [], marks)
        text = dumps(tree, marks)
        head = (f"# clapas settings export: the config file with {len(h.overrides)} value(s) overridden at run time "
                "(marked)\n")
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(head + text)
        else:
            sys.stdout.write(head + text)
        return 0
    finally:
        store.close()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("settings", help="settings changed at run time by the departments: show, export",
                       description="The departments change their settings at run time (PUT /api/v1/settings, the "
                       "dashboard's #/settings page); the config file stays the base.")
    s = p.add_subparsers(dest="settings_command", metavar="ACTION", required=True)
    show = s.add_parser("show", help="which values are overridden (value, config file's value, who, when)")
    add_config_argument(show)
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(func=cmd_show)
    exp = s.add_parser("export", help="the effective configuration as TOML, overridden values marked")
    add_config_argument(exp)
    exp.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    exp.set_defaults(func=cmd_export)
