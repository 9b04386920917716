"""`clapas grafana provision DIR --create-role`: the files Grafana reads, and the role, in one command."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest
from ruamel.yaml import YAML

from clapas.cli import main


def provision(monkeypatch, store: str, *argv: str) -> int:
    monkeypatch.setenv("CLAPAS_STORE", store)
    with pytest.raises(SystemExit) as done:
        main(["grafana", "provision", *argv])
    return done.value.code


def test_provision_writes_the_data_source_provider_and_dashboards(pg_url: str, tmp_path: Path, monkeypatch,
                                                                  capsys) -> None:
    role = f"grafana_{uuid.uuid4().hex[:10]}"
    out = tmp_path / "provisioning"
    monkeypatch.setenv("CLAPAS_GRAFANA_DB_PASSWORD", "s3cret")
    try:
        assert provision(monkeypatch, pg_url, str(out), "--create-role", "--role", role) == 0
        assert provision(monkeypatch, pg_url, str(out), "--create-role", "--role", role) == 0  # again: the same
        yaml = YAML(typ="safe", pure=True)
        [ds] = yaml.load((out / "datasources" / "clapas.yaml").read_text())["datasources"]
        u = urlparse(pg_url)
        assert (ds["user"], ds["url"], ds["jsonData"]["database"]) == (role, f"{u.hostname}:{u.port}",
                                                                       u.path.lstrip("/"))
        assert ds["secureJsonData"]["password"] == "${CLAPAS_GRAFANA_DB_PASSWORD}"  # never the password itself
        assert "s3cret" not in (out / "datasources" / "clapas.yaml").read_text()
        [prov] = yaml.load((out / "dashboards" / "provider.yaml").read_text())["providers"]
        assert prov["options"]["path"] == str((out / "dashboards").resolve())
        boards = sorted(p.name for p in (out / "dashboards").glob("*.json"))
        assert len(boards) == 7 and all(json.loads((out / "dashboards" / b).read_text())["panels"] for b in boards)
        with psycopg.connect(pg_url) as con:  # the role exists, with its read-only sessions and the password
            [(config, has_password)] = con.execute(
                "SELECT r.rolconfig, a.rolpassword IS NOT NULL FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid "
                "WHERE r.rolname = %s", [role]).fetchall()
        assert "default_transaction_read_only=on" in config and has_password
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            if con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                con.execute(f"DROP OWNED BY {role}")
                con.execute(f"DROP ROLE {role}")


def test_a_duckdb_store_has_no_role_to_create(tmp_path: Path, monkeypatch, capsys) -> None:
    code = provision(monkeypatch, f"duckdb:///{tmp_path / 'c.duckdb'}", str(tmp_path / "p"), "--create-role")
    assert code == 2 and "Grafana reads PostgreSQL" in capsys.readouterr().err


def test_a_role_name_that_needs_quoting_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    code = provision(monkeypatch, "postgresql://postgres@127.0.0.1:5432/test", str(tmp_path / "p"), "--role",
                     "Grafana Reader")
    assert code == 2 and "lowercase letters" in capsys.readouterr().err


def test_a_store_user_without_createrole_is_told_so(pg_url: str) -> None:
    """A store user that owns nothing and may not create roles: a clear refusal (no traceback), nothing made."""
    from clapas.charter.classes import Classifier
    from clapas.grafana.views import RoleError, create_role
    from clapas.store.base import open_store

    open_store(pg_url).close()  # the store, made by its owner
    weak = f"weak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"CREATE ROLE {weak} LOGIN")
    u = urlparse(pg_url)
    try:
        with pytest.raises(RoleError, match="may not"):
            create_role(u._replace(netloc=f"{weak}@{u.netloc.split('@')[-1]}").geturl(), Classifier(),
                        "Europe/Paris", f"g_{weak}")
        with psycopg.connect(pg_url) as con:
            assert con.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [f"g_{weak}"]).fetchone() == (0,)
            assert con.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'clapas_grafana'").fetchone() \
                == (0,)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"DROP OWNED BY {weak}")
            con.execute(f"DROP ROLE {weak}")
