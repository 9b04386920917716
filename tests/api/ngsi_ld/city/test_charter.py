"""The charter over the city's NGSI-LD tenant: the sentinel city of tests/api/charter_city.py (a dwelling's meter
full of sentinel values) walked through every NGSI-LD read — queries of each type, by id pattern, `q`, discovery,
retrieval of the dwelling's own entities, temporal queries raw and aggregated — as an anonymous caller, a partner
and the water operator. Nothing the first two get holds a sentinel (nor the index in litres the models want); the
dwelling's entities answer 404 (never confirming that an EUI is somebody's meter); the operator gets them."""

from __future__ import annotations

import pytest

from clapas.api.ngsi_ld.city import models
from tests.api.charter_city import HOME, HOME_VOLUME, SENTINELS
from tests.api.test_charter_routes import WALKERS, Walked, walked  # noqa: F401  (the sentinel city on both stores)

CTX = '<http://localhost/ngsi-ld/contexts/clapas.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; ' \
      'type="application/ld+json"'
LITRES = str(round(HOME_VOLUME * 1000))[:6]  # the index as WaterConsumptionObserved carries it (L)
TYPES = [m.type for m in models.MODELS] + [models.DEVICE, models.DEVICE_MODEL]
SINCE = "timerel=after&timeAt=2000-01-01T00:00:00Z"
HOME_IDS = [f"urn:ngsi-ld:WaterConsumptionObserved:{HOME}", f"urn:ngsi-ld:Device:{HOME}"]


def reads() -> list[str]:
    out = [f"/ngsi-ld/v1/entities?type={t}&limit=1000" for t in TYPES]
    out += ["/ngsi-ld/v1/entities?idPattern=.*&limit=1000", "/ngsi-ld/v1/entities?q=waterConsumption>0",
            "/ngsi-ld/v1/entities?type=Device&q=serialNumber==%22" + HOME + "%22",
            "/ngsi-ld/v1/types?details=true", "/ngsi-ld/v1/types/WaterConsumptionObserved", "/ngsi-ld/v1/attributes",
            "/ngsi-ld/v1/attributes/waterConsumption", "/ngsi-ld/v1/subscriptions",
            f"/ngsi-ld/v1/temporal/entities?type=WaterConsumptionObserved&{SINCE}",
            f"/ngsi-ld/v1/temporal/entities?idPattern=.*&{SINCE}&aggrMethods=max,sum&aggrPeriodDuration=P1D"]
    for i in HOME_IDS:
        out += [f"/ngsi-ld/v1/entities/{i}", f"/ngsi-ld/v1/temporal/entities/{i}?{SINCE}&lastN=5"]
    return out


UNKNOWN = "ffffffffffffffff"


def walk(w: Walked, role: str | None) -> dict[str, tuple[int, str]]:
    """Each read's status and text (body and headers). A read that names the dwelling itself is answered as one
    naming an unknown device (same status, same body but for the id it echoes), and that echo is left out."""
    seen = {}
    for path in reads():
        r = w.client.get(path, headers={**w.headers(role), "Link": CTX, "NGSILD-Tenant": "city"})
        assert r.status_code < 500, (path, r.status_code, r.text[:300])
        text = r.text
        if HOME in path and r.status_code == 404:
            other = w.client.get(path.replace(HOME, UNKNOWN), headers={**w.headers(role), "Link": CTX})
            assert (other.status_code, other.text.replace(UNKNOWN, HOME)) == (404, text), path
            text = text.replace(HOME, "<asked>")
        seen[path] = (r.status_code, text + " " + " ".join(f"{k}: {v}" for k, v in r.headers.items()))
    return seen


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [s for s in (*SENTINELS, LITRES) if s.lower() in low]


@pytest.mark.parametrize("who", ["anonymous", "partner"])
def test_no_personal_entity_nor_value_through_ngsi_ld(walked: Walked, who: str) -> None:  # noqa: F811
    seen = walk(walked, WALKERS[who])
    assert {p: leaks(t) for p, (_, t) in seen.items() if leaks(t)} == {}
    for i in HOME_IDS:
        assert seen[f"/ngsi-ld/v1/entities/{i}"][0] == 404
    assert seen["/ngsi-ld/v1/entities?type=WeatherObserved&limit=1000"][0] == 200  # open data still answers


def test_the_water_operator_reads_the_dwelling_through_ngsi_ld(walked: Walked) -> None:  # noqa: F811
    seen = walk(walked, WALKERS["operator"])
    assert seen[f"/ngsi-ld/v1/entities/{HOME_IDS[0]}"][0] == 200
    everything = " ".join(t for _, t in seen.values())
    assert {HOME, LITRES} <= set(leaks(everything))


def test_ngsi_ld_reads_of_the_dwelling_are_audited_with_its_eui_like_rest(walked: Walked) -> None:  # noqa: F811
    """A personal:read key reading the meter through NGSI-LD leaves what the REST route leaves: the personal
    class, rows, and the meter among the subjects; a read that answers no meter names none."""
    app = walked.client.app
    head = {**walked.headers(WALKERS["operator"]), "Link": CTX, "NGSILD-Tenant": "city"}
    reads = {f"/api/v1/devices/{HOME}": "/api/v1/devices/{eui}",
             f"/ngsi-ld/v1/entities/{HOME_IDS[0]}": "/ngsi-ld/v1/entities/{entityId}",
             "/ngsi-ld/v1/entities?type=WaterConsumptionObserved&limit=1000": "/ngsi-ld/v1/entities",
             f"/ngsi-ld/v1/temporal/entities/{HOME_IDS[0]}?{SINCE}": "/ngsi-ld/v1/temporal/entities/{entityId}",
             f"/ngsi-ld/v1/temporal/entities?type=WaterConsumptionObserved&{SINCE}": "/ngsi-ld/v1/temporal/entities"}
    app.state.access.audit.flush()
    before = {e["id"] for e in app.state.store.audit_entries(limit=10_000)}
    for path in reads:
        assert walked.client.get(path, headers=head).status_code == 200, path
    weather = walked.client.get("/ngsi-ld/v1/entities?type=WeatherObserved&limit=1000", headers=head)
    assert weather.status_code == 200 and weather.json()
    app.state.access.audit.flush()
    new = [e for e in app.state.store.audit_entries(limit=10_000) if e["id"] not in before]
    naming = {e["route"]: e for e in app.state.store.audit_entries(subject=HOME, limit=10_000) if e["id"] not in before}
    assert set(naming) == set(reads.values())
    for e in naming.values():
        assert (e["event"], e["data_class"]) == ("read", "personal") and e["row_count"] >= 1, e
    assert naming["/ngsi-ld/v1/temporal/entities/{entityId}"]["row_count"] > 1  # the history's instances
    assert not [e for e in new if e["route"] == "/ngsi-ld/v1/entities" and e["id"] not in
                {n["id"] for n in naming.values()} and e["data_class"] == "personal"]  # open weather: no entry
