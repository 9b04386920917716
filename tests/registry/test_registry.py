"""Device registry CSV and zones GeoJSON: round trips and readable errors."""

from __future__ import annotations

import io
import json

import pytest

from clapas.model import Device
from clapas.registry.devices_csv import RegistryError, devices_to_text, read_devices
from clapas.registry.zones import read_zones, zones_to_geojson
from clapas.store.base import open_store
from tests.helpers import progress_lines

CSV = """eui,name,kind,decoder,zone,lat,lon,premises_use,subscriber,tags
70B3D5E75E000001,Compteur Foch,water_meter,cayenne_lpp,dma-centre,43.6108,3.8767,habitation,AB-1,floor=2;pulse=0.01
70b3d5e75e000002,Station Lez,water_level,,lez,43.60,3.89,,,level_datum=12.5
"""


def test_csv_round_trip(tmp_path):
    devices = read_devices(io.StringIO(CSV))
    assert devices[0].eui == "70b3d5e75e000001"
    assert devices[0].tags == {"floor": "2", "pulse": "0.01"}
    assert devices[0].premises_use == "habitation" and devices[0].lat == pytest.approx(43.6108)
    store = open_store(f"duckdb:///{tmp_path / 'r.duckdb'}")
    assert store.upsert_devices(devices) == 2
    text = devices_to_text(store.devices())
    again = read_devices(io.StringIO(text))
    assert [(d.eui, d.name, d.kind, d.zone, d.tags, d.subscriber) for d in again] == [
        (d.eui, d.name, d.kind, d.zone, d.tags, d.subscriber) for d in devices]
    store.close()


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("name\nx\n", "needs a header row with at least an `eui` column"),
        ("eui,colour\n0101010101010101,red\n", "unknown columns: colour"),
        ("eui,kind\n0101010101010101,spaceship\n", "line 2: unknown kind 'spaceship'"),
        ("eui\n01010101\n", "line 2: not a DevEUI"),
        ("eui,lat\n0101010101010101,north\n", "line 2: Expected `float"),
        ("eui,lat\n0101010101010101,95\n", "line 2: lat/lon out of range"),
        ("eui\n0101010101010101\n0101010101010101\n", "line 3: EUI 0101010101010101 appears twice"),
        ("eui,tags\n0101010101010101,novalue\n", "line 2: tag 'novalue' is not key=value"),
    ],
)
def test_csv_errors_name_the_line(csv_text, message):
    with pytest.raises(RegistryError, match=message):
        read_devices(io.StringIO(csv_text))


GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"id": "dma-centre", "name": "Centre", "kind": "dma", "pop": 12000},
         "geometry": {"type": "Polygon", "coordinates": [[[3.87, 43.60], [3.89, 43.60], [3.89, 43.62],
                                                          [3.87, 43.60]]]}},
        {"type": "Feature", "id": "parc-peyrou", "properties": {"name": "Peyrou", "kind": "park",
                                                                "parent": "dma-centre"}, "geometry": None},
    ],
}


def test_zones_round_trip(tmp_path):
    zones = read_zones(json.dumps(GEOJSON))
    assert [z.id for z in zones] == ["dma-centre", "parc-peyrou"]
    assert zones[0].properties == {"pop": 12000} and zones[1].parent == "dma-centre"
    store = open_store(f"duckdb:///{tmp_path / 'z.duckdb'}")
    store.upsert_zones(zones)
    store.upsert_devices([Device(eui="0101010101010101", zone="dma-centre")])
    out = zones_to_geojson(store.zones())
    assert out["features"][0]["properties"]["devices"] == 1
    assert out["features"][0]["geometry"] == GEOJSON["features"][0]["geometry"]
    store.close()


def test_zone_errors():
    with pytest.raises(RegistryError, match="expected a GeoJSON FeatureCollection"):
        read_zones('{"type": "Feature"}')
    with pytest.raises(RegistryError, match="feature 0: no id"):
        read_zones('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]}')


def test_devices_import_goes_by_chunks_with_its_progress(tmp_path, monkeypatch, caplog):
    import logging

    from clapas.registry import cli

    monkeypatch.setattr(cli, "REGISTRY_CHUNK", 3)
    devices = [Device(eui=f"{i:016x}", kind="weather_station") for i in range(7)]
    store = open_store(f"duckdb:///{tmp_path / 'r.duckdb'}")
    try:
        with caplog.at_level(logging.INFO, logger="clapas.progress"):
            assert cli.import_devices(store, devices, terminal=False, every_s=0.0) == 7
        assert len(store.devices(limit=100)) == 7
    finally:
        store.close()
    lines = progress_lines(caplog)
    assert [line.split(",")[0] for line in lines[:-1]] == ["devices import: 3 devices", "devices import: 6 devices",
                                                           "devices import: 7 devices"]
    assert lines[-1].startswith("devices import: 7 devices in ")
