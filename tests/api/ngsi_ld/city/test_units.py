"""The UCUM → UN/CEFACT table and the model unit conversions (../shared/domain-rules.md §8.7)."""

from __future__ import annotations

import pytest

from clapas.api.ngsi_ld.city import models, units
from clapas.model import QUANTITIES, QUANTITY_BY_KEY


def test_every_unit_a_model_attribute_uses_has_a_code_and_a_conversion() -> None:
    for m in models.MODELS:
        for a in m.attrs:
            stored = QUANTITY_BY_KEY[a.quantity].unit
            assert units.unit_code(a.unit)
            units.convert(1.0, stored, a.unit)  # raises when the table lacks it


def test_every_catalogue_unit_has_a_code() -> None:
    assert {q.unit for q in QUANTITIES} <= set(units.UNIT_CODES)


@pytest.mark.parametrize(("ucum", "code"), [
    ("Cel", "CEL"), ("%", "P1"), ("1", "C62"), ("hPa", "A97"), ("ppm", "59"), ("ug/m3", "GQ"), ("mg/m3", "GP"),
    ("L", "LTR"), ("L/h", "E32"), ("m3", "MTQ"), ("m", "MTR"), ("mm", "MMT"), ("lx", "LUX"), ("dB", "2N"),
    ("m/s", "MTS"), ("deg", "DD"),
])
def test_codes_of_the_smart_data_models_examples(ucum: str, code: str) -> None:
    """The codes the models' own examples use (co GP, no2 GQ, LTR and E32 for water, §8.7) and Rec. 20's."""
    assert units.unit_code(ucum) == code


def test_relative_humidity_goes_from_percent_to_a_fraction() -> None:
    assert units.convert(54.0, "%", "1") == pytest.approx(0.54)
    assert units.convert(8765.401, "m3", "L") == pytest.approx(8765401.0)
    assert units.convert(3.0, "Cel", "Cel") == 3.0


def test_an_unknown_unit_or_conversion_is_refused_clearly() -> None:
    with pytest.raises(units.UnknownUnit, match="furlong"):
        units.unit_code("furlong")
    with pytest.raises(units.UnknownUnit, match="'Cel' to 'K'"):
        units.convert(1.0, "Cel", "K")
