"""`[open_data]`: the example file's section and its commented datasets are valid; bad names are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clapas.config import ConfigError, load_settings
from clapas.opendata.datasets import BUILTIN, datasets, resolve

ROOT = Path(__file__).parents[2]


def test_example_section_and_its_commented_datasets(tmp_path: Path) -> None:
    text = (ROOT / "city.example.toml").read_text(encoding="utf-8")
    start, end = text.index("[open_data]"), text.index("# --- The environmental uses")
    block = re.sub(r"(?m)^# (\[open_data\.datasets\.[\w-]+\]|[a-z_0-9]+ = )", r"\1", text[start:end])
    f = tmp_path / "city.toml"
    f.write_text(text[:start] + block + text[end:], encoding="utf-8")
    s = load_settings(f, env={})
    assert s.open_data.licence == "etalab-2.0" and s.open_data.default_days == 31
    table = datasets(s.open_data)
    assert table["bike-counts"].licence == "odbl-1.0" and table["bike-counts"].kinds == ("bike_counter",)
    assert table["noise"].kinds == ("noise_meter",) and table["noise"].themes == ("ENVI",)
    assert set(BUILTIN) <= set(table)


@pytest.mark.parametrize(("env", "says"), [
    ({"CLAPAS_OPEN_DATA_LICENCE": "cc-by-4.0"}, "Licence Ouverte or ODbL"),
    ({"CLAPAS_OPEN_DATA_FREQUENCY": "sometimes"}, "open_data.frequency"),
    ({"CLAPAS_OPEN_DATA_BASE_URL": "data.ville.example"}, "http(s)"),
    ({"CLAPAS_OPEN_DATA_CHUNK_ROWS": "10"}, "chunk_rows"),
])
def test_bad_settings_are_refused(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_settings(env=env)


def test_a_kind_is_a_dataset_and_unknown_names_say_what_exists() -> None:
    assert resolve("rain_gauge", None, {"rain_gauge"}).kinds == ("rain_gauge",)
    with pytest.raises(KeyError, match="weather"):
        resolve("météo", None, {"rain_gauge"})
