"""Pure entity builders: a bike station's status from the GBFS flags (is_installed, is_renting, is_returning)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clapas.api.ngsi_ld.city import entities, models
from clapas.api.ngsi_ld.city.context import expand

T = datetime(2026, 12, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(("installed", "renting", "returning", "status"), [
    (True, True, True, "working"),
    (True, True, False, "withIncidence"),
    (True, False, True, "withIncidence"),
    (True, False, False, "outOfService"),
    (False, True, True, "outOfService"),
])
def test_station_status_follows_the_gbfs_flags(installed: bool, renting: bool, returning: bool, status: str) -> None:
    assert entities.station_status(installed, renting, returning) == status
    latest = [{"quantity": q, "value": float(v), "time": T} for q, v in (
        ("bikeshare.bikes_available", 3), ("bikeshare.installed", installed), ("bikeshare.renting", renting),
        ("bikeshare.returning", returning))]
    facts = entities.DeviceFacts({"eui": "b1", "kind": "bike_station", "tags": {"capacity": "oops"}}, "open", latest)
    e = entities.observation(models.MODEL_BY_TYPE["BikeHireDockingStation"], facts)
    assert e is not None
    assert e[expand("status")] == {"type": "Property", "value": status, "observedAt": "2026-12-01T08:00:00Z"}
    assert expand("totalSlotNumber") not in e  # a capacity that is no number is left out, not guessed


def test_no_status_without_all_three_flags() -> None:
    latest = [{"quantity": "bikeshare.bikes_available", "value": 3.0, "time": T},
              {"quantity": "bikeshare.renting", "value": 0.0, "time": T}]
    facts = entities.DeviceFacts({"eui": "b1", "kind": "bike_station"}, "open", latest)
    e = entities.observation(models.MODEL_BY_TYPE["BikeHireDockingStation"], facts)
    assert e is not None and expand("status") not in e and e[expand("availableBikeNumber")]["value"] == 3
