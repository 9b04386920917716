"""`clapas grafana provision DIR [--create-role]`: Grafana's provisioning files for the city's store.

Writes DIR/datasources/clapas.yaml (the store as a PostgreSQL data source, as the read-only role of `views.py`),
DIR/dashboards/provider.yaml (a file provider for the folder "clapas") and one dashboard JSON per use beside it.
Point Grafana's `paths.provisioning` at DIR (or copy the two folders into its provisioning folder). The password is
never written: the data source reads it from the environment Grafana runs in (`$CLAPAS_GRAFANA_DB_PASSWORD` by
default), and `--create-role` sets it from the same variable here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from clapas.cli import add_config_argument

PASSWORD_ENV = "CLAPAS_GRAFANA_DB_PASSWORD"
DATASOURCE_NAME = "clapas"
FOLDER = "clapas"
UPDATE_INTERVAL_S = 60  # Grafana's file provider default: how often it reads the dashboards folder again


def datasource(url: str, role: str, password_env: str = PASSWORD_ENV, host: str | None = None) -> dict[str, Any]:
    """The provisioning document of the data source: the store's host and database, the role, no password."""
    from clapas.grafana.dashboards import DATASOURCE_TYPE, DATASOURCE_UID

    u = urlparse(url)
    sslmode = parse_qs(u.query).get("sslmode", ["disable"])[0]
    return {"apiVersion": 1, "datasources": [{
        "name": DATASOURCE_NAME, "uid": DATASOURCE_UID, "type": DATASOURCE_TYPE, "access": "proxy",
        "url": host or f"{u.hostname or 'localhost'}:{u.port or 5432}", "user": role, "editable": False,
        "jsonData": {"database": (u.path or "/").lstrip("/"), "sslmode": sslmode, "postgresVersion": 1500,
                     "timescaledb": False, "maxOpenConns": 10},
        "secureJsonData": {"password": f"${{{password_env}}}"}}]}


def provider(path: str) -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{
        "name": "clapas", "folder": FOLDER, "type": "file", "disableDeletion": False, "allowUiUpdates": False,
        "updateIntervalSeconds": UPDATE_INTERVAL_S, "options": {"path": path, "foldersFromFilesStructure": False}}]}


def _yaml(doc: dict[str, Any], path: Path) -> None:
    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    with path.open("w", encoding="utf-8") as f:
        f.write("# written by `clapas grafana provision`; run it again rather than editing\n")
        y.dump(doc, f)


def provision(out: Path, settings: Any, *, role: str, password_env: str = PASSWORD_ENV, host: str | None = None,
              dashboards_path: str | None = None) -> list[Path]:
    """Write the provisioning files; returns them."""
    from clapas.grafana.dashboards import Rules, dashboards
    from clapas.grafana.views import check_role

    check_role(role)
    (out / "datasources").mkdir(parents=True, exist_ok=True)
    boards = out / "dashboards"
    boards.mkdir(parents=True, exist_ok=True)
    written = [out / "datasources" / "clapas.yaml", boards / "provider.yaml"]
    _yaml(datasource(settings.store, role, password_env, host), written[0])
    _yaml(provider(dashboards_path or str(boards.resolve())), written[1])
    rules = Rules(timezone=settings.timezone, mnf_start_hour=settings.water.mnf_start_hour,
                  mnf_end_hour=settings.water.mnf_end_hour, silent_factor=settings.health.silent_factor)
    for name, doc in dashboards(rules).items():
        (boards / name).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(boards / name)
    return written


def run(args: argparse.Namespace) -> int:
    from clapas.charter.classes import Classifier
    from clapas.config import load_settings
    from clapas.grafana.views import RoleError, create_role

    settings = load_settings(args.config)
    try:
        if args.create_role:
            from clapas.store.base import open_store

            open_store(settings.store, timezone=settings.timezone, postgres=settings.postgres).close()  # migrated
            password = os.environ.get(args.password_env) or None
            done = create_role(settings.store, Classifier(settings.charter), settings.timezone, args.role, password)
            print(f"role {done['role']}: reads the views of schema {done['schema']} in database {done['database']}"
                  + ("" if password else f" (no password set: ${args.password_env} is empty)"), file=sys.stderr)
        files = provision(Path(args.dir), settings, role=args.role, password_env=args.password_env,
                          host=args.host, dashboards_path=args.dashboards_path)
    except RoleError as e:
        print(f"clapas grafana provision: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"clapas grafana provision: {e}", file=sys.stderr)
        return 1
    for f in files:
        print(f)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from clapas.grafana.views import DEFAULT_ROLE

    g = sub.add_parser("grafana", help="Grafana: provisioning files (data source, one dashboard per use)",
                       description="Grafana over the store (PostgreSQL), as a read-only role that sees open and "
                       "restricted data only.")
    gs = g.add_subparsers(dest="grafana_command", metavar="ACTION", required=True)
    p = gs.add_parser("provision", help="write DIR/datasources/clapas.yaml and DIR/dashboards/*",
                      description="Write Grafana's provisioning files: the store as a PostgreSQL data source read "
                      "as a role that sees only the open and restricted views (schema clapas_grafana), and one "
                      "dashboard per use (water, heat, floods, air, museum, mobility, device health).")
    add_config_argument(p)
    p.add_argument("dir", metavar="DIR", help="the provisioning folder to write")
    p.add_argument("--create-role", action="store_true", help="create or update the views and the role in the "
                   "store (as the store's owner; idempotent)")
    p.add_argument("--role", default=DEFAULT_ROLE, help=f"the PostgreSQL role Grafana logs in as (default "
                   f"{DEFAULT_ROLE})")
    p.add_argument("--password-env", default=PASSWORD_ENV, metavar="VAR", help="the environment variable holding "
                   f"the role's password, here and in Grafana's environment (default {PASSWORD_ENV})")
    p.add_argument("--host", metavar="HOST:PORT", help="the database as Grafana reaches it (default: the store "
                   "URL's host and port)")
    p.add_argument("--dashboards-path", metavar="PATH", help="the dashboards folder as Grafana sees it (default: "
                   "DIR/dashboards, absolute)")
    p.set_defaults(func=run)
