"""The class of every value: §8.9 defaults by kind, the registry's class, the city's overrides, derived data."""

from __future__ import annotations

import pytest

from clapas.charter import OPEN, PERSONAL, RESTRICTED
from clapas.charter.classes import KIND_CLASSES, ClassError, Classifier, check_settings
from clapas.config import CharterSettings, ConfigError, load_settings
from clapas.model import DEVICE_KINDS

DEFAULT = Classifier()


def dev(kind: str, data_class: str = "open", premises_use: str = "", eui: str = "0000000000000001") -> dict:
    return {"eui": eui, "kind": kind, "data_class": data_class, "premises_use": premises_use}


@pytest.mark.parametrize(("kind", "premises", "expected"), [
    ("water_meter", "habitation", PERSONAL),
    ("water_meter", "", PERSONAL),  # premises unknown: a home until the registry says otherwise
    ("water_meter", "professional", RESTRICTED),
    ("district_meter", "", RESTRICTED),
    ("indoor_climate", "", RESTRICTED),
    ("weather_station", "", OPEN), ("rain_gauge", "", OPEN), ("air_quality", "", OPEN), ("water_level", "", OPEN),
    ("traffic_counter", "", OPEN), ("bike_counter", "", OPEN), ("bike_station", "", OPEN),
    ("generic", "", RESTRICTED), ("", "", RESTRICTED), ("smart_bin", "", RESTRICTED),
])
def test_default_class_of_each_kind_follows_the_table(kind: str, premises: str, expected: str) -> None:
    assert DEFAULT.device(dev(kind, premises_use=premises)) == expected


def test_every_kind_of_the_model_has_a_class() -> None:
    assert {k for k in DEVICE_KINDS if k != "generic"} <= set(KIND_CLASSES)


def test_the_registry_class_can_only_add_restriction() -> None:
    assert DEFAULT.device(dev("weather_station", "restricted")) == RESTRICTED
    assert DEFAULT.device(dev("weather_station", "personal")) == PERSONAL
    assert DEFAULT.device(dev("water_meter", "open", "habitation")) == PERSONAL
    assert DEFAULT.device(dev("weather_station", "")) == OPEN  # empty: nothing said
    assert DEFAULT.device(dev("weather_station", "secret")) == PERSONAL  # unknown: the most restrictive


def test_city_overrides_per_kind_and_per_quantity_most_restrictive_wins() -> None:
    c = Classifier(CharterSettings(kinds={"indoor_climate": OPEN, "water_meter.non_residential": PERSONAL},
                                   quantities={"occupancy": RESTRICTED, "battery": OPEN}))
    room = dev("indoor_climate")
    assert c.device(room) == OPEN
    assert c.value(room, "air.temperature") == OPEN
    assert c.value(room, "occupancy") == RESTRICTED
    assert c.value(dev("water_meter", premises_use="habitation"), "battery") == PERSONAL  # cannot lower
    assert c.device(dev("water_meter", premises_use="shop")) == PERSONAL
    assert c.device(dev("indoor_climate", "restricted")) == RESTRICTED  # the device's own class still counts


def test_derived_data_carries_the_class_of_its_source() -> None:
    home, shop, station = dev("water_meter", premises_use="habitation"), dev("water_meter", premises_use="shop"), \
        dev("weather_station")
    device_alert = {"rule": "water.continuous_flow", "subject_kind": "device", "subject": home["eui"]}
    assert DEFAULT.alert(device_alert, home) == PERSONAL
    assert DEFAULT.alert(device_alert, shop) == RESTRICTED
    assert DEFAULT.alert({**device_alert, "rule": "heat.heat_stress"}, station) == OPEN
    assert DEFAULT.alert(device_alert, None) == PERSONAL  # an unknown subject may be a home
    zone = {"subject_kind": "zone", "subject": "ecusson"}
    assert DEFAULT.alert({**zone, "rule": "water.district_night_flow"}, None) == RESTRICTED
    assert DEFAULT.alert({**zone, "rule": "flood.warning"}, None) == OPEN
    assert DEFAULT.alert({**zone, "rule": "museum.climate"}, None) == RESTRICTED
    assert DEFAULT.alert({**zone, "rule": "something.new"}, None) == RESTRICTED
    assert DEFAULT.frame(None) == RESTRICTED and DEFAULT.frame(station) == RESTRICTED
    assert DEFAULT.frame(home) == PERSONAL


def test_rule_overrides_raise_alert_classes() -> None:
    c = Classifier(CharterSettings(rules={"heat": RESTRICTED, "heat.heatwave": OPEN}))
    assert c.rule("heat.heat_stress") == RESTRICTED
    assert c.rule("heat.heatwave") == OPEN  # the longest prefix
    assert c.alert({"rule": "heat.heat_stress", "subject_kind": "device"}, dev("weather_station")) == RESTRICTED


def test_a_class_setting_that_is_no_class_is_refused(tmp_path) -> None:
    with pytest.raises(ClassError, match=r"charter\.quantities\.occupancy"):
        check_settings(CharterSettings(quantities={"occupancy": "private"}))
    p = tmp_path / "city.toml"
    p.write_text('[charter.kinds]\nwater_meter = "secret"\n')
    with pytest.raises(ConfigError, match=r"charter\.kinds\.water_meter"):
        load_settings(p, env={})


def test_the_commented_class_examples_of_city_example_toml_are_valid(tmp_path) -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "city.example.toml").read_text(encoding="utf-8")
    start, end = text.index("# [charter.kinds]"), text.index("\n# How callers prove")
    block = re.sub(r'(?m)^# (\[charter\.\w+\]|"?[\w.]+"? = )', r"\1", text[start:end])
    p = tmp_path / "city.toml"
    p.write_text(text[:start] + block + text[end:], encoding="utf-8")
    s = load_settings(p, env={})
    c = Classifier(s.charter)
    assert c.kind("indoor_climate") == OPEN and c.quantity("occupancy") == RESTRICTED
    assert s.charter.purposes["indoor_climate"].startswith("conservation")
