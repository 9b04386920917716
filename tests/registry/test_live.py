"""The registry a running process holds (issue 14): one for the pipeline and the detectors, compact, refreshed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import msgspec
import pytest

from clapas.config import Settings
from clapas.model import Device
from clapas.pipeline import Pipeline
from clapas.registry import live
from clapas.registry.live import Registry
from clapas.service import Service
from clapas.store.base import Store
from tests.helpers import T0, as_message, up_event
from tests.store.test_store import make_store  # noqa: F401 - the fixture that opens both stores

LPP_TH = bytes.fromhex("0167011002682A")  # Cayenne LPP: 27.2 °C and 21 %RH
IMPORTED, HEARD = "1a00000000000001", "1b00000000000001"


def _service(store: Store) -> Service:
    settings = msgspec.structs.replace(Settings(), store=store.url)
    settings = msgspec.structs.replace(settings, chirpstack=msgspec.structs.replace(settings.chirpstack,
                                                                                    http_ingest=False))
    return Service(settings, store=store)


def test_the_pipeline_and_the_detectors_see_one_registry(make_store: Callable[..., Store], samples) -> None:  # noqa: F811
    store = make_store()
    service = _service(store)
    try:
        assert service.alerting is not None
        registry = service.pipeline.registry
        assert service.alerting.runner.registry is registry and service.alerting.sink.registry is registry
        # a device imported while the service runs, then the registry refreshed (what an import or GBFS triggers)
        store.upsert_devices([Device(eui=IMPORTED, kind="weather_station", decoder="cayenne_lpp", zone="ecusson",
                                     premises_use="habitation", subscriber="AB-1", tags={"floor": "2"})])
        service._registry_changed()
        # a device nobody registered, heard first: the pipeline registers it from its network server's tags
        service.pipeline.submit_many([
            as_message(up_event(samples, eui=IMPORTED, payload=LPP_TH, tags={})),  # decoded from its registry entry
            as_message(up_event(samples, eui=HEARD, payload=LPP_TH, time=T0 + timedelta(minutes=1),
                                tags={"decoder": "cayenne_lpp", "kind": "weather_station", "zone": "antigone"}))])
        assert service.pipeline.drain(30)
        assert {r["quantity"] for r in store.latest(IMPORTED)} == {"air.temperature", "air.humidity"}
        imported, heard = registry.by_eui[IMPORTED], registry.by_eui[HEARD]
        assert service.alerting.runner.registry.get(IMPORTED) is imported
        assert (imported.kind, imported.zone, imported.premises_use, imported.subscriber, dict(imported.tags)) == (
            "weather_station", "ecusson", "habitation", "AB-1", {"floor": "2"})
        assert (heard.kind, heard.zone) == ("weather_station", "antigone")
        assert service.alerting.runner.uplinks == 2  # both uplinks met the heat detector (their kind's)
        # the heard device counted once by the pipeline (the devices it added to the store), although the detectors
        # registered it before the pipeline's accounting ran
        assert service.pipeline.counts["devices"] == 1 and store.counts()["devices"] == 2
    finally:
        service.pipeline.close()


def test_a_registry_is_read_a_page_at_a_time_and_its_strings_shared(make_store: Callable[..., Store],  # noqa: F811
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store()
    store.upsert_devices([Device(eui=f"2a0000000000000{i}", kind="water_meter", zone="dma-01", profile="meter",
                                 tags={"site": "north"}) for i in range(5)])
    monkeypatch.setattr(live, "REGISTRY_PAGE", 2)
    seen: list[int] = []
    devices = store.devices
    monkeypatch.setattr(store, "devices", lambda **kw: seen.append(kw["limit"]) or devices(**kw))
    registry = Registry(store)
    assert len(registry.by_eui) == 5 and seen == [2, 2, 2]
    a, b = registry.by_eui["2a00000000000000"], registry.by_eui["2a00000000000004"]
    assert a.kind is b.kind and a.zone is b.zone and a.profile is b.profile
    assert a.tags == {"site": "north"} and a.tags["site"] is b.tags["site"]
    before = registry.by_eui
    store.upsert_devices([Device(eui="2b00000000000000", kind="water_meter")])
    registry.reload()
    assert "2b00000000000000" in registry.by_eui and "2b00000000000000" not in before  # swapped, not grown in place


def test_a_pipeline_without_detectors_reads_its_own(make_store: Callable[..., Store]) -> None:  # noqa: F811
    store = make_store()
    store.upsert_devices([Device(eui="3a00000000000000", kind="air_quality", decoder="cayenne_lpp")])
    p = Pipeline(store)
    try:
        assert p.registry.by_eui["3a00000000000000"].decoder == "cayenne_lpp"
    finally:
        p.close()
