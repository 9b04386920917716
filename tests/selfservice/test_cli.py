"""`clapas settings show` and `clapas settings export` over a real store and the city's example config: what is
overridden is said (with the file's value, who, when), and the export reads back as the effective settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clapas.cli import main
from clapas.config import load_settings
from clapas.selfservice.holder import SettingsHolder
from clapas.store.base import open_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "city.example.toml"
GAUGE = "0004a30b001c2f3a"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example config on a store of its own, with two changes a department made and a secret in the env."""
    for k in [k for k in os.environ if k.startswith("CLAPAS_")]:
        monkeypatch.delenv(k)
    path = tmp_path / "city.toml"
    text = EXAMPLE.read_text()
    assert 'store = "duckdb:///var/lib/clapas/city.duckdb"' in text
    path.write_text(text.replace("duckdb:///var/lib/clapas/city.duckdb", f"duckdb:///{tmp_path / 'city.duckdb'}"))
    settings = load_settings(path)
    store = open_store(settings.store)
    h = SettingsHolder(settings, store)
    h.change(f"flood.gauges.{GAUGE}.yellow_m", 2.4, actor="crues", role="operator-environment")
    h.change('alerts.rule_enabled."mobility.station_full"', False, actor="velo", role="operator-mobility")
    h.change("water.burst_q3_share", 0.6, actor="eau", role="operator-water")
    store.close()
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    assert e.value.code == 0
    return capsys.readouterr().out


def test_show_says_which_values_are_overridden(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "settings", "show", "--config", str(config))
    assert f"flood.gauges.{GAUGE}.yellow_m = 2.4  (config file: unset; environment, by crues at " in out
    assert "water.burst_q3_share = 0.6  (config file: 0.8; water, by eau at " in out
    assert 'alerts.rule_enabled."mobility.station_full" = false  (config file: unset; mobility, by velo' in out
    shown = json.loads(run(capsys, "settings", "show", "--config", str(config), "--json"))
    assert {r["path"]: r["base"] for r in shown["overridden"]} == {
        f"flood.gauges.{GAUGE}.yellow_m": None, 'alerts.rule_enabled."mobility.station_full"': None,
        "water.burst_q3_share": 0.8}


def test_export_is_the_effective_config_with_overrides_marked(config: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAPAS_ALERTS_WEBHOOK_SECRET", "s3cret")
    out = run(capsys, "settings", "export", "--config", str(config))
    assert out.startswith("# clapas settings export: the config file with 3 value(s) overridden at run time")
    assert "burst_q3_share = 0.6  # overridden by eau (operator-water) at " in out
    assert out.count("config file: 0.8") == 1
    assert f"[flood.gauges.{GAUGE}]\nyellow_m = 2.4  # overridden by crues" in out
    assert "s3cret" not in out and "keep it in CLAPAS_ALERTS_WEBHOOK_SECRET" in out
    exported = tmp_path / "exported.toml"
    exported.write_text(out)
    monkeypatch.delenv("CLAPAS_ALERTS_WEBHOOK_SECRET")
    again = load_settings(exported)
    store = open_store(again.store)
    try:
        assert again == SettingsHolder(load_settings(config), store).current  # the same settings, file and store
    finally:
        store.close()
    assert again.water.burst_q3_share == 0.6 and again.flood.level_thresholds(GAUGE, {})[0] == 2.4
