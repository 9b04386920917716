"""The small city of city.py plus one dwelling's water meter full of sentinel personal values, for the charter
tests: whatever a caller without personal:read gets must contain none of `SENTINELS`.

The meter is registered as the water service would (subscriber, dwelling, exact position, a name), reports hourly
readings through the real pipeline (Kamstrup frames), sends a join, a location and a frame that cannot be decoded,
and has two alerts (one with the subscriber notice in its evidence), a comment naming the subscriber and
notifications in the outbox. A district meter (restricted) and a shop's meter (restricted) sit beside it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from clapas.model import Device
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.encoders import kamstrup_frame
from clapas.store.alerts import AlertChange
from clapas.store.base import Store

from .city import NOW, event_json, fill_city, submit, up_json

HOME = "0d0e1110f1a7c0de"  # the dwelling's meter
SUBSCRIBER = "AB-SENTINEL-77310"
HOME_NAME = "Appartement Sentinelle 3e gauche"
HOME_LAT, HOME_LON = 43.6123457, 3.8765431
HOME_VOLUME = 8765.401  # m³, then + 1 L per hour: every reading and mean starts "8765.4"
DISTRICT = "d157d157d157d157"  # the district's inflow meter (restricted)
SHOP = "5b0b5b0b5b0b5b0b"  # a bakery's meter (restricted)

SENTINELS = (HOME, SUBSCRIBER, HOME_NAME, str(HOME_LAT), str(HOME_LON), "8765.4", "0D0E1110F1A7C0DE",
             "Sentinelle")

METER_TAGS = {"decoder": "kamstrup", "kind": "water_meter", "zone": "ecusson"}


def registry() -> list[Device]:
    return [
        Device(eui=HOME, name=HOME_NAME, kind="water_meter", decoder="kamstrup", zone="ecusson", lat=HOME_LAT,
               lon=HOME_LON, data_class="personal", subscriber=SUBSCRIBER, premises_use="habitation",
               expected_interval_s=3600, tags={"building": "Résidence Sentinelle"}),
        Device(eui=SHOP, name="Boulangerie du Peyrou", kind="water_meter", decoder="kamstrup", zone="ecusson",
               lat=43.611, lon=3.871, subscriber="AB-000-000042", premises_use="professional"),
        Device(eui=DISTRICT, name="Écusson inflow", kind="district_meter", decoder="kamstrup", zone="ecusson"),
    ]


def fill_charter_city(samples: Path, store: Store, pipeline: Pipeline) -> dict[str, Any]:
    """The city of city.py, then the meters: returns the ids of the personal alerts."""
    fill_city(samples, pipeline)
    store.upsert_devices(registry())
    for eui, base in ((HOME, HOME_VOLUME), (SHOP, 120.0), (DISTRICT, 52_000.0)):
        for i in range(6):
            _, payload = kamstrup_frame({"water.volume": base + i * 0.001, "water.flow": 60.0 + i})
            submit(pipeline, up_json(samples, eui, payload, NOW - timedelta(hours=6 - i), f_cnt=i,
                                     name=HOME_NAME if eui == HOME else "", tags=METER_TAGS))
    home = {"name": HOME_NAME, "tags": METER_TAGS}
    submit(pipeline, event_json(samples, "join", HOME, NOW - timedelta(hours=7), **home), "join")
    submit(pipeline, event_json(samples, "location", HOME, NOW - timedelta(hours=7), **home,
                                location={"latitude": HOME_LAT, "longitude": HOME_LON, "altitude": 2}),
           "location")
    submit(pipeline, up_json(samples, HOME, b"\x78\xff", NOW - timedelta(minutes=20), f_cnt=99, name=HOME_NAME,
                             tags=METER_TAGS))  # quarantined: the journal keeps it with the EUI and name
    assert pipeline.drain(timeout=10)

    def notify(rule: str, event: str) -> list[str]:
        return ["webhook"]

    opened = NOW - timedelta(hours=2)
    done = store.apply_alert_changes([
        AlertChange("water.continuous_flow", HOME, "open", opened, "major",
                    {"min_hourly_flow_lph": 60.0, "index_m3": HOME_VOLUME, "zone": "ecusson"},
                    f"No hour without flow for 24 h at {HOME_NAME}", "device", "ecusson"),
        AlertChange("water.overconsumption", HOME, "open", opened, "warning",
                    {"subscriber": SUBSCRIBER, "premises_use": "habitation", "period_volume_m3": HOME_VOLUME},
                    f"notify subscriber {SUBSCRIBER}", "device", "ecusson"),
        AlertChange("water.burst", SHOP, "open", opened, "critical", {"flow_lph": 2200.0}, "", "device", "ecusson"),
        AlertChange("water.district_night_flow", "ecusson", "open", opened, "warning", {"mnf_lph": 310.0}, "",
                    "zone", "ecusson"),
    ], route=notify)
    personal = sorted({alert_id for alert_id, _ in done[:2]})
    store.comment_alert(personal[0], "astreinte eau", f"called {SUBSCRIBER}, leak under the sink")
    return {"personal_alerts": personal, "alerts": sorted({a for a, _ in done})}
