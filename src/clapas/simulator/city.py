"""A synthetic city around Montpellier: zones (DMAs, parks, museum rooms, catchments) and the devices in them.

Everything is a pure function of (seed, size): the same seed gives the same EUIs, places and parameters, so that a
benchmark, a test and a demo speak about the same city. Zones export as GeoJSON and devices as the registry's CSV.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clapas.model import Device, Zone
from clapas.registry.devices_csv import write_devices
from clapas.simulator import formats
from clapas.simulator.noise import gauss, key, mix, uniform

DEFAULT_DEVICES = 300
CENTER_LAT, CENTER_LON = 43.6108, 3.8767  # Place de la Comédie
KM_PER_DEG_LAT = 111.32
KM_PER_DEG_LON = KM_PER_DEG_LAT * math.cos(math.radians(CENTER_LAT))
DISTRICT_SIZE_KM = 1.6
DEVICES_PER_DISTRICT = 100
MIN_DISTRICTS, MAX_DISTRICTS = 3, 16
PARK_SIZE_KM = 0.35
ROOM_SIZE_KM = 0.012
RURAL_OFFSET_KM = (-4.0, 8.5)  # the peripheral reference station, towards Fréjorgues airport (south-east)
MUSEUM_LAT, MUSEUM_LON = 43.6117, 3.8816  # Musée Fabre
MUSEUM_ROOMS = 5
GATEWAY_RING_KM = 3.0

# Expected uplink intervals (s): what each device profile declares, and what silence detection will use.
INTERVAL_S: dict[str, int] = {
    "water_meter": 3600,
    "district_meter": 900,
    "weather_station": 600,
    "air_quality": 900,
    "water_level": 900,
    "rain_gauge": 600,
    "indoor_climate": 900,
    "traffic_counter": 900,
    "bike_counter": 3600,
}
# Share of the devices per kind; water meters take what is left. Each kind gets at least MIN_PER_KIND.
SHARE: dict[str, float] = {
    "weather_station": 0.05,
    "air_quality": 0.03,
    "water_level": 0.02,
    "rain_gauge": 0.02,
    "indoor_climate": 0.02,
    "traffic_counter": 0.04,
    "bike_counter": 0.03,
}
MIN_PER_KIND: dict[str, int] = {"weather_station": 4, "water_level": 3, "rain_gauge": 3, "indoor_climate": 3,
                                "air_quality": 2, "traffic_counter": 2, "bike_counter": 2}
# Water meters: premises use, household size, daily use per person.
PROFESSIONAL_SHARE = 0.15
GARDEN_SHARE = 0.12
LITRES_PER_PERSON_DAY = 145.0
PERSONS_MIN, PERSONS_MAX = 1, 5
PROFESSIONAL_M3_DAY = (0.4, 3.0)
USE_SPREAD = 0.3  # lognormal sigma of a dwelling's daily use around its household size
INITIAL_INDEX_M3 = (20.0, 900.0)
# Battery: level at start (%) and drain (% per day); mains-powered kinds report no battery.
BATTERY_START = (55.0, 100.0)
BATTERY_DRAIN_PER_DAY = (0.01, 0.08)
MAINS_POWERED = frozenset({"district_meter", "traffic_counter"})
# River gauges: ultrasonic sensor height above the gauge's zero, base level, Vigicrues-like thresholds above it.
LEVEL_DATUM_M = 6.0
RIVER_BASE_M = (0.35, 0.9)
THRESHOLDS_ABOVE_BASE_M = {"threshold_yellow": 1.0, "threshold_orange": 1.8, "threshold_red": 2.8}
RAIN_TIP_MM = 0.2
DEV_ADDR_MASK = 0x1FFFFFF  # a NetID-type-0 DevAddr's NwkAddr (25 bits), NwkID 0 (private network)

TENANT = "Montpellier Méditerranée Métropole"
# One ChirpStack application per use, as a city's network team would set them up.
APPLICATIONS: dict[str, str] = {
    "water_meter": "eau-telereleve",
    "district_meter": "eau-sectorisation",
    "weather_station": "climat-urbain",
    "air_quality": "qualite-air",
    "water_level": "crues",
    "rain_gauge": "crues",
    "indoor_climate": "musee-fabre",
    "traffic_counter": "mobilite",
    "bike_counter": "mobilite",
}
DISTRICT_NAMES = ("Écusson", "Antigone", "Port Marianne", "Hôpitaux-Facultés", "Croix d'Argent", "Mosson",
                  "Cévennes", "Près d'Arènes", "Beaux-Arts", "Boutonnet", "Figuerolles", "Les Aubes", "Celleneuve",
                  "Lemasson", "Aiguelongue", "Pompignane")
PARK_NAMES = ("Jardin des Plantes", "Parc Méric", "Parc Montcalm", "Parc de Lunaret", "Esplanade Charles-de-Gaulle",
              "Parc Clemenceau", "Bois de Montmaur", "Parc Rimbaud", "Parc de la Guirlande", "Jardin du Peyrou",
              "Parc Malbosc", "Parc Magnol", "Bassin Jacques-Cœur", "Parc Grammont", "Parc Font-Colombe",
              "Parc Bagatelle")
CATCHMENTS = (("lez", "Lez", (2.5, 1.0)), ("mosson", "Mosson", (0.0, -5.0)), ("verdanson", "Verdanson", (1.5, -1.0)))
ROOM_NAMES = ("Salle des Colonnes", "Galerie Bazille", "Salle Courbet", "Cabinet des dessins", "Salle Soulages",
              "Réserves", "Salle Cabanel", "Galerie des Griffes")


@dataclass(slots=True)
class Application:
    id: str
    name: str


@dataclass(slots=True)
class SimDevice:
    """A registry device plus what the simulator needs to make it talk."""

    device: Device
    index: int
    key: int  # noise stream of this device
    app: Application
    profile_id: str
    dev_addr: str
    site: str = ""  # street, park, rural, indoor, river…
    group: str = ""  # the DMA of a meter, the catchment of a gauge
    params: dict[str, float] = field(default_factory=dict)
    gateways: list[tuple[str, float]] = field(default_factory=list)  # (gateway id, distance km), nearest first
    mains: bool = False

    @property
    def eui(self) -> str:
        return self.device.eui

    @property
    def kind(self) -> str:
        return self.device.kind


@dataclass(slots=True)
class Gateway:
    id: str
    lat: float
    lon: float


@dataclass
class City:
    seed: int
    zones: list[Zone]
    devices: list[SimDevice]
    gateways: list[Gateway]
    applications: dict[str, Application]
    tenant_id: str

    def by_kind(self, kind: str) -> list[SimDevice]:
        return [d for d in self.devices if d.kind == kind]

    def only(self, *kinds: str) -> City:
        """The same city (zones, households, places) with only the devices of these kinds: a use's own sensors,
        for runs that need no other (their radio and noise streams are the same as in the whole city)."""
        devices = [dataclasses.replace(d, index=i) for i, d in enumerate(d for d in self.devices if d.kind in kinds)]
        return City(seed=self.seed, zones=self.zones, devices=devices, gateways=self.gateways,
                    applications=self.applications, tenant_id=self.tenant_id)

    def zone(self, zone_id: str) -> Zone:
        return next(z for z in self.zones if z.id == zone_id)

    def registry_devices(self) -> list[Device]:
        return [d.device for d in self.devices]

    def zones_geojson(self) -> dict[str, Any]:
        return {"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": z.id, "geometry": z.geometry,
             "properties": {"id": z.id, "name": z.name, "kind": z.kind, "parent": z.parent, **z.properties}}
            for z in self.zones]}

    def export_registry(self, directory: str | Path) -> tuple[Path, Path]:
        """Write `zones.geojson` and `devices.csv` (the registry's import formats) into `directory`."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        zones_path, devices_path = out / "zones.geojson", out / "devices.csv"
        zones_path.write_text(json.dumps(self.zones_geojson(), ensure_ascii=False, indent=1), encoding="utf-8")
        with devices_path.open("w", newline="", encoding="utf-8") as f:
            write_devices(self.registry_devices(), f)
        return zones_path, devices_path


# --- geometry ---------------------------------------------------------------------------------------------------
def _offset(lat: float, lon: float, north_km: float, east_km: float) -> tuple[float, float]:
    return lat + north_km / KM_PER_DEG_LAT, lon + east_km / KM_PER_DEG_LON


def _box(lat: float, lon: float, size_km: float) -> dict[str, Any]:
    h = size_km / 2
    (s, w), (n, e) = _offset(lat, lon, -h, -h), _offset(lat, lon, h, h)
    ring = [[round(w, 6), round(s, 6)], [round(e, 6), round(s, 6)], [round(e, 6), round(n, 6)],
            [round(w, 6), round(n, 6)], [round(w, 6), round(s, 6)]]
    return {"type": "Polygon", "coordinates": [ring]}


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return math.hypot((lat1 - lat2) * KM_PER_DEG_LAT, (lon1 - lon2) * KM_PER_DEG_LON)


def _uuid(k: int, i: int) -> str:
    return str(uuid.UUID(int=(mix(k ^ i) << 64) | mix(k ^ (i + 1)), version=4))


# --- building -----------------------------------------------------------------------------------------------------
def plan_counts(n: int) -> dict[str, int]:
    """How many devices of each kind a city of `n` devices has (water meters take the rest)."""
    districts = max(MIN_DISTRICTS, min(MAX_DISTRICTS, round(n / DEVICES_PER_DISTRICT)))
    counts = {k: max(MIN_PER_KIND[k], round(n * s)) for k, s in SHARE.items()}
    counts["district_meter"] = districts
    counts["water_meter"] = max(districts * 2, n - sum(counts.values()))
    return counts


class _Builder:
    def __init__(self, seed: int, n: int) -> None:
        self.seed = seed
        self.k = key(seed, "city")
        self.draw = 0
        self.counts = plan_counts(n)
        self.zones: list[Zone] = []
        self.devices: list[SimDevice] = []
        self.euis: set[str] = set()
        self.turns: dict[str, int] = {}
        self.tenant_id = _uuid(key(seed, "tenant"), 0)
        self.apps = {name: Application(_uuid(key(seed, "app", name), 0), name)
                     for name in sorted(set(APPLICATIONS.values()))}

    def u(self, lo: float = 0.0, hi: float = 1.0) -> float:
        self.draw += 1
        return lo + (hi - lo) * uniform(self.k, self.draw)

    def g(self) -> float:
        self.draw += 1
        return gauss(self.k, self.draw)

    def jitter(self, lat: float, lon: float, radius_km: float) -> tuple[float, float]:
        return _offset(lat, lon, self.u(-radius_km, radius_km), self.u(-radius_km, radius_km))

    def zone(self, zid: str, name: str, kind: str, lat: float, lon: float, size_km: float, parent: str = "",
             **props: Any) -> Zone:
        z = Zone(id=zid, name=name, kind=kind, parent=parent, geometry=_box(lat, lon, size_km),
                 properties={"center": [round(lon, 6), round(lat, 6)], **props})
        self.zones.append(z)
        return z

    def device(self, kind: str, name: str, zone: str, lat: float, lon: float, site: str, group: str = "",
               tags: dict[str, str] | None = None, params: dict[str, float] | None = None,
               **fields: Any) -> SimDevice:
        index = len(self.devices)
        while True:
            self.draw += 1
            eui = f"{mix(self.k ^ self.draw):016x}"
            if eui not in self.euis and eui != "0" * 16:
                break
        self.euis.add(eui)
        turn = self.turns.get(kind, 0)
        self.turns[kind] = turn + 1
        decoder = formats.choose(kind, turn)
        profile = f"{kind.replace('_', ' ')} ({decoder})"
        all_tags = {"kind": kind, "decoder": decoder, "zone": zone, "lat": f"{lat:.6f}", "lon": f"{lon:.6f}",
                    **(tags or {})}
        if kind == "rain_gauge" and formats.uses_counter_for_rain(decoder):
            all_tags |= {"pulse_quantity": "rain.amount", "pulse_factor": str(RAIN_TIP_MM)}
        dev = Device(eui=eui, name=name, kind=kind, decoder=decoder, profile=profile, zone=zone,
                     lat=round(lat, 6), lon=round(lon, 6), expected_interval_s=INTERVAL_S[kind], tags=all_tags,
                     **fields)
        mains = kind in MAINS_POWERED
        p = {"phase": self.u(), "battery0": 0.0 if mains else self.u(*BATTERY_START),
             "drain": 0.0 if mains else self.u(*BATTERY_DRAIN_PER_DAY), "bias": self.g(),
             "indoor_loss_db": 0.0, **(params or {})}
        sd = SimDevice(device=dev, index=index, key=key(self.seed, eui), app=self.apps[APPLICATIONS[kind]],
                       profile_id=_uuid(key(self.seed, "profile", profile), 0),
                       dev_addr=f"{mix(self.k ^ index) & DEV_ADDR_MASK:08x}",
                       site=site, group=group, params=p, mains=mains)
        self.devices.append(sd)
        return sd


def build_city(seed: int = 0, devices: int = DEFAULT_DEVICES) -> City:
    """The city for this seed and size; deterministic."""
    b = _Builder(seed, devices)
    c = b.counts
    n_districts = c["district_meter"]
    cols = math.ceil(math.sqrt(n_districts))
    rows = math.ceil(n_districts / cols)
    districts: list[tuple[str, float, float]] = []
    for i in range(n_districts):
        r, col = divmod(i, cols)
        lat, lon = _offset(CENTER_LAT, CENTER_LON, (r - (rows - 1) / 2) * DISTRICT_SIZE_KM,
                           (col - (cols - 1) / 2) * DISTRICT_SIZE_KM)
        zid = f"dma-{i + 1:02d}"
        b.zone(zid, DISTRICT_NAMES[i % len(DISTRICT_NAMES)], "dma", lat, lon, DISTRICT_SIZE_KM)
        districts.append((zid, lat, lon))
    parks: list[tuple[str, float, float]] = []
    for i, (dzid, dlat, dlon) in enumerate(districts):
        plat, plon = b.jitter(dlat, dlon, DISTRICT_SIZE_KM / 4)
        pzid = f"park-{i + 1:02d}"
        b.zone(pzid, PARK_NAMES[i % len(PARK_NAMES)], "park", plat, plon, PARK_SIZE_KM, parent=dzid)
        parks.append((pzid, plat, plon))
    rlat, rlon = _offset(CENTER_LAT, CENTER_LON, *RURAL_OFFSET_KM)
    b.zone("rural-reference", "Station de référence périurbaine", "rural", rlat, rlon, 1.0)
    b.zone("museum-fabre", "Musée Fabre", "museum", MUSEUM_LAT, MUSEUM_LON, 0.08, parent=districts[0][0])
    rooms = []
    for i in range(MUSEUM_ROOMS):
        lat, lon = _offset(MUSEUM_LAT, MUSEUM_LON, (i % 3 - 1) * 0.02, (i // 3 - 0.5) * 0.02)
        zid = f"museum-fabre-room-{i + 1:02d}"
        b.zone(zid, ROOM_NAMES[i % len(ROOM_NAMES)], "museum_room", lat, lon, ROOM_SIZE_KM, parent="museum-fabre",
               rh_min=40, rh_max=60, t_min=16, t_max=25)
        rooms.append((zid, lat, lon))
    catchments = []
    for cid, cname, (north, east) in CATCHMENTS:
        lat, lon = _offset(CENTER_LAT, CENTER_LON, north, east)
        b.zone(f"catchment-{cid}", f"Bassin du {cname}", "catchment", lat, lon, 3.5, river=cname)
        catchments.append((f"catchment-{cid}", cname, lat, lon))

    # water: meters spread over the DMAs, one inflow meter per DMA
    for i in range(c["water_meter"]):
        dzid, dlat, dlon = districts[i % n_districts]
        lat, lon = b.jitter(dlat, dlon, DISTRICT_SIZE_KM / 2 * 0.95)
        professional = b.u() < PROFESSIONAL_SHARE
        if professional:
            daily_l = b.u(*PROFESSIONAL_M3_DAY) * 1000
        else:
            persons = PERSONS_MIN + int(b.u() * (PERSONS_MAX - PERSONS_MIN + 1))
            daily_l = persons * LITRES_PER_PERSON_DAY * math.exp(USE_SPREAD * b.g())
        b.device("water_meter", f"Compteur {i + 1:05d}", dzid, lat, lon, "professional" if professional else "home",
                 group=dzid, premises_use="professional" if professional else "habitation",
                 subscriber=f"AB-{(seed % 1000):03d}-{i + 1:06d}", data_class="personal",
                 params={"daily_l": daily_l, "index0": b.u(*INITIAL_INDEX_M3),
                         "garden": float(not professional and b.u() < GARDEN_SHARE), "indoor_loss_db": 15.0})
    for dzid, dlat, dlon in districts:
        lat, lon = b.jitter(dlat, dlon, 0.1)
        b.device("district_meter", f"Débitmètre sectorisation {dzid}", dzid, lat, lon, "network", group=dzid,
                 data_class="restricted", params={"index0": b.u(1e4, 5e5)})

    # weather: the rural reference first, then alternate parks and streets
    n_weather = c["weather_station"]
    b.device("weather_station", "Station de référence", "rural-reference", rlat, rlon, "rural")
    for i in range(n_weather - 1):
        if i % 2 == 0:
            pzid, plat, plon = parks[(i // 2) % len(parks)]
            lat, lon = b.jitter(plat, plon, PARK_SIZE_KM / 3)
            b.device("weather_station", f"Météo parc {i // 2 + 1}", pzid, lat, lon, "park", group=pzid)
        else:
            dzid, dlat, dlon = districts[(i // 2) % n_districts]
            lat, lon = b.jitter(dlat, dlon, DISTRICT_SIZE_KM / 3)
            b.device("weather_station", f"Météo rue {i // 2 + 1}", dzid, lat, lon, "street", group=dzid)

    for i in range(c["air_quality"]):
        dzid, dlat, dlon = districts[i % n_districts]
        lat, lon = b.jitter(dlat, dlon, DISTRICT_SIZE_KM / 3)
        b.device("air_quality", f"Qualité de l'air {i + 1}", dzid, lat, lon, "street", group=dzid,
                 params={"traffic": b.u(0.5, 1.5)})

    for i in range(c["water_level"]):
        cid, cname, clat, clon = catchments[i % len(catchments)]
        lat, lon = b.jitter(clat, clon, 1.0)
        base = b.u(*RIVER_BASE_M)
        thresholds = {k: f"{base + v:.2f}" for k, v in THRESHOLDS_ABOVE_BASE_M.items()}
        b.device("water_level", f"Limnimètre {cname} {i // len(catchments) + 1}", cid, lat, lon, "river", group=cid,
                 tags={"level_datum": f"{LEVEL_DATUM_M:.2f}", "river": cname, **thresholds},
                 params={"base": base, "gain": b.u(0.024, 0.034), "tau_h": b.u(5, 10), "lag_h": b.u(0.5, 2.0)})
    for i in range(c["rain_gauge"]):
        cid, cname, clat, clon = catchments[i % len(catchments)]
        lat, lon = b.jitter(clat, clon, 1.2)
        b.device("rain_gauge", f"Pluviomètre {cname} {i // len(catchments) + 1}", cid, lat, lon, "open", group=cid)

    for i in range(c["indoor_climate"]):
        rzid, rlat_, rlon_ = rooms[i % len(rooms)]
        b.device("indoor_climate", f"Thermohygromètre {ROOM_NAMES[i % len(ROOM_NAMES)]}", rzid, rlat_, rlon_,
                 "indoor", group=rzid, params={"t_set": b.u(19.0, 21.0), "rh_set": b.u(47.0, 53.0),
                                               "indoor_loss_db": 10.0})

    for i in range(c["traffic_counter"]):
        dzid, dlat, dlon = districts[i % n_districts]
        lat, lon = b.jitter(dlat, dlon, DISTRICT_SIZE_KM / 2)
        b.device("traffic_counter", f"Boucle de comptage {i + 1}", dzid, lat, lon, "street", group=dzid,
                 params={"veh_per_h": b.u(150, 1400)})
    for i in range(c["bike_counter"]):
        dzid, dlat, dlon = districts[i % n_districts]
        lat, lon = b.jitter(dlat, dlon, DISTRICT_SIZE_KM / 2)
        b.device("bike_counter", f"Éco-compteur vélo {i + 1}", dzid, lat, lon, "street", group=dzid,
                 params={"bikes_per_h": b.u(20, 220)})

    gateways = _gateways(seed)
    for d in b.devices:
        dist = sorted((distance_km(d.device.lat or 0, d.device.lon or 0, g.lat, g.lon), g.id) for g in gateways)
        d.gateways = [(gid, km) for km, gid in dist]
    return City(seed=seed, zones=b.zones, devices=b.devices, gateways=gateways, applications=b.apps,
                tenant_id=b.tenant_id)


def _gateways(seed: int) -> list[Gateway]:
    """One gateway downtown and a ring around it, as on rooftops of city buildings."""
    k = key(seed, "gateways")
    out = [Gateway(f"0016c001f1{mix(k) & 0xFFFFFF:06x}", CENTER_LAT, CENTER_LON)]
    for i in range(6):
        a = 2 * math.pi * i / 6
        lat, lon = _offset(CENTER_LAT, CENTER_LON, GATEWAY_RING_KM * math.cos(a), GATEWAY_RING_KM * math.sin(a))
        out.append(Gateway(f"0016c001f1{mix(k ^ (i + 1)) & 0xFFFFFF:06x}", lat, lon))
    return out
