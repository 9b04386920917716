"""`clapas keys` and `clapas audit` on both stores, as an administrator runs them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clapas.cli import main
from clapas.store.base import Store, open_store


@pytest.fixture(params=["duckdb", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"duckdb:///{tmp_path}/city.duckdb" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("CLAPAS_STORE", url)
    yield url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def opened(url: str) -> Store:
    return open_store(url, "Europe/Paris")


def test_keys_create_list_show_rotate_revoke(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "keys", "create", "labo-hydro", "--role", "partner", "--expires", "90d",
                       "--rate-minute", "120", "--note", "convention 2026-14")
    assert code == 0
    token = next(w for w in out.split() if w.startswith("clapas_"))
    key_id = token.split("_")[1]
    code, out, _ = run(capsys, "keys", "list")
    assert key_id in out and "labo-hydro" in out and "partner" in out and token not in out
    code, out, _ = run(capsys, "keys", "show", "labo-hydro", "--json")
    shown = json.loads(out)
    assert (shown["id"], shown["state"], shown["rate_per_minute"], shown["note"]) == (
        key_id, "active", 120, "convention 2026-14")
    assert "secret_hash" not in shown and token not in out
    assert run(capsys, "keys", "create", "labo-hydro", "--role", "partner")[0] == 2  # one active key per name
    assert run(capsys, "keys", "create", "x", "--role", "nobody")[0] == 2
    assert run(capsys, "keys", "create", "x", "--scopes", "open:read,write:everything")[0] == 2
    assert run(capsys, "keys", "create", "x")[0] == 2  # neither role nor scopes
    code, out, _ = run(capsys, "keys", "rotate", key_id, "--grace", "1h")
    fresh = next(w for w in out.split() if w.startswith("clapas_"))
    assert code == 0 and fresh != token and fresh.split("_")[1] == key_id
    s = opened(store_url)
    try:
        k = s.key(key_id)
        from datetime import UTC, datetime

        from clapas.charter.keys import matches

        now = datetime.now(UTC)
        assert matches(fresh, k, now) and matches(token, k, now)  # the old one during its grace
    finally:
        s.close()
    assert run(capsys, "keys", "revoke", "labo-hydro")[0] == 0
    assert run(capsys, "keys", "show", "labo-hydro")[0] == 1  # revoked keys are not found by name
    code, out, _ = run(capsys, "keys", "list", "--all", "--json")
    assert [k["state"] for k in json.loads(out)] == ["revoked"]
    assert run(capsys, "keys", "rotate", key_id)[0] == 1
    s = opened(store_url)
    try:
        events = [(e["event"], e["key_id"]) for e in s.audit_entries()[::-1]]
        assert events == [("key.created", key_id), ("key.rotated", key_id), ("key.revoked", key_id)]
        assert token not in json.dumps(s.audit_entries(), default=str)
    finally:
        s.close()


def test_audit_verify_export_and_prune(store_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        assert run(capsys, "keys", "create", name, "--role", "public")[0] == 0
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "3 entries, the hash chain holds" in out
    code, out, _ = run(capsys, "audit", "export")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3] and rows[0]["detail"]["name"] == "a" and rows[0]["hash"]
    out_csv = tmp_path / "audit.csv"
    assert run(capsys, "audit", "export", "--format", "csv", "-o", str(out_csv))[0] == 0
    table = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [r["event"] for r in table] == ["key.created"] * 3 + ["audit.exported"]  # the first export is logged
    assert json.loads(table[1]["detail"])["name"] == "b"
    code, out, _ = run(capsys, "audit", "prune", "--dry-run")
    assert code == 0 and "0 entries" in out
    s = opened(store_url)
    try:
        with s._alert_tx() as cur:  # someone changes an entry in the database
            cur.execute(s._q("UPDATE audit_log SET actor = 'nobody' WHERE id = ?"), [2])
    finally:
        s.close()
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 1 and "BROKEN at entry 2" in out
