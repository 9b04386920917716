"""Settings: the example file, environment overrides, and clear errors."""

from __future__ import annotations

import re

import pytest

from clapas.config import ConfigError, load_settings
from tests.conftest import ROOT


def test_example_file_is_valid():
    s = load_settings(ROOT / "city.example.toml", env={})
    assert s.chirpstack.topic == "application/+/device/+/event/+"
    assert s.profiles["Pluviomètre"].remap["counter.count"].scale == 0.2


def test_no_file_at_all_uses_defaults_and_environment():
    env = {"CLAPAS_STORE": "postgresql://clapas@db/clapas", "CLAPAS_CHIRPSTACK_MQTT_URL": "mqtt://broker:1883",
           "CLAPAS_HTTP_HOST": "0.0.0.0", "CLAPAS_HTTP_PORT": "9000", "CLAPAS_PIPELINE_BATCH_SIZE": "2000"}
    s = load_settings(None, env=env)
    assert (s.store, s.chirpstack.mqtt_url, s.http.host, s.http.port, s.pipeline.batch_size) == (
        "postgresql://clapas@db/clapas", "mqtt://broker:1883", "0.0.0.0", 9000, 2000)
    assert load_settings(None, env={}).store == "duckdb:///clapas.duckdb"


def test_environment_wins_over_file(tmp_path):
    f = tmp_path / "city.toml"
    f.write_text('store = "duckdb:///a.duckdb"\n[http]\nport = 8001\n')
    s = load_settings(f, env={"CLAPAS_HTTP_PORT": "8002"})
    assert (s.store, s.http.port) == ("duckdb:///a.duckdb", 8002)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("", {"CLAPAS_HTTP_PORT": "eighty"}, r"Expected `int`, got `str` - at `\$.http.port`"),
        ("", {"CLAPAS_STORE": "mysql://x"}, "store must be duckdb:///path or postgresql://"),
        ("", {"CLAPAS_CHIRPSTACK_MQTT_URL": "tcp://x"}, "CLAPAS_CHIRPSTACK_MQTT_URL must look like mqtt://"),
        ("", {"CLAPAS_TIMEZONE": "Mars/Olympus"}, "unknown time zone"),
        ("colour = 1\n", {}, "Object contains unknown field `colour`"),
        ("[http\n", {}, "not valid TOML"),
        ("[heat]\ndepartment = \"99\"\n", {}, "heat.department '99' has no canicule thresholds"),
        ("[web]\nlanguage = \"de\"\n", {}, "web.language must be fr or en, got 'de'"),
        ("", {"CLAPAS_WEB_LANGUAGE": "FR"}, "web.language must be fr or en"),
    ],
)
def test_bad_settings_are_named(tmp_path, text, env, message):
    f = tmp_path / "city.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(f, env=env)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings("/nonexistent/city.toml", env={})


def test_environmental_sections_from_file_and_environment(tmp_path):
    f = tmp_path / "city.toml"
    f.write_text('[heat]\ndepartment = "13"\n[museum]\nmould_rh = 70.0\n[islands]\nnight_start_hour = 20\n')
    s = load_settings(f, env={"CLAPAS_AIR_INDICATIVE": "false"})
    assert (s.heat.department, s.heat.thresholds().ibmn_c, s.museum.mould_rh, s.islands.night_start_hour) == (
        "13", 24.0, 70.0, 20)
    assert s.air.indicative is False
    assert load_settings(None, env={}).heat.thresholds().name == "Hérault"


def test_departments_table_and_city_timezone(tmp_path):
    f = tmp_path / "city.toml"
    f.write_text('timezone = "Europe/Brussels"\n[heat]\ndepartment = "84"\n'
                 '[heat.departments.84]\nname = "Vaucluse"\nibmn_c = 21.0\nibmx_c = 36.0\n')
    s = load_settings(f, env={})
    th = s.heat.thresholds()
    assert (th.code, th.name, th.ibmn_c, th.ibmx_c) == ("84", "Vaucluse", 21.0, 36.0)
    assert s.heat.department_table()["34"].ibmx_c == 35.0  # the built-in table stays
    assert (s.heat.timezone, s.islands.timezone) == ("Europe/Brussels", "Europe/Brussels")
    f.write_text('[islands]\ntimezone = "UTC"\n')
    s = load_settings(f, env={"CLAPAS_TIMEZONE": "Europe/Madrid"})
    assert (s.heat.timezone, s.islands.timezone) == ("Europe/Madrid", "UTC")


def test_example_environmental_sections_with_their_commented_examples(tmp_path):
    # the commented examples of the environmental sections are valid settings once uncommented
    text = (ROOT / "city.example.toml").read_text(encoding="utf-8")
    start, end = text.index("# --- The environmental uses"), text.index("# Device profiles")
    block = re.sub(r"(?m)^# (\[[a-z]+\.[a-z]+\.\w+\]|[a-z_0-9]+ = )", r"\1", text[start:end])
    f = tmp_path / "city.toml"
    f.write_text(text[:start] + block + text[end:], encoding="utf-8")
    s = load_settings(f, env={})
    assert s.museum.rooms == {"museum-fabre-room-05": "A1"}
    assert s.flood.level_thresholds("70b3d5e75e00abcd", {}) == (1.6, 2.4, 3.4)
    assert s.heat.department_table()["84"].ibmx_c == 36.0
    assert s.heat.reference_stations == ("70b3d5e75e001234",)


@pytest.mark.parametrize(("text", "message"), [
    ('[health.quality."air.temprature"]\nmin = 0\n', "unknown quantities air.temprature"),
    ('[health]\nvoltage_thresholds = { "li-socl2" = [3.1, 3.3] }\n', "warn ≥ critical"),
    ("[health]\ndebounce_checks = 0\n", "debounce_checks"),
])
def test_bad_health_settings_are_named(tmp_path, text, message):
    p = tmp_path / "city.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(p, env={})


def test_the_city_language_is_french_unless_set(tmp_path):
    assert load_settings(env={}).web.language == "fr"
    assert load_settings(ROOT / "city.example.toml", env={}).web.language == "fr"
    assert load_settings(env={"CLAPAS_WEB_LANGUAGE": "en"}).web.language == "en"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLAPAS_WEB_TILE_URL": "tiles.example.org/{z}/{x}/{y}.png"}, r"\[web\] tile_url must be http\(s\)://"),
        ({"CLAPAS_WEB_TILE_URL": "https://tiles.example.org/{z}/{x}.png"}, r"\[web\] tile_url must be"),
        ({"CLAPAS_WEB_TILE_MAX_ZOOM": "30"}, r"\[web\] tile_max_zoom must be 0…24"),
    ],
)
def test_bad_web_settings_are_named(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(None, env=env)


def test_web_tiles_default_to_none_and_are_read_from_the_environment():
    assert load_settings(None, env={}).web.tile_url == ""  # offline: no tile server unless the city sets one
    s = load_settings(None, env={"CLAPAS_WEB_TILE_URL": "https://tiles.example.org/{z}/{x}/{y}.png",
                                 "CLAPAS_WEB_TILE_ATTRIBUTION": "© la Ville"})
    assert (s.web.tile_url, s.web.tile_attribution) == ("https://tiles.example.org/{z}/{x}/{y}.png", "© la Ville")
