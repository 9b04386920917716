"""The city's datasets: what each holds (device kinds, the registry, zones, an open aggregate), its texts in French
and English, themes, licence and update frequency.

A dataset is named by its use (`weather`, `air-quality`…) or, for observations, by a device kind
(`weather_station`): `clapas export weather_station` exports that kind alone. The built-in table below is the
default; `[open_data.datasets.NAME]` changes an entry or adds one. Which rows of a dataset a caller gets is the data
charter's business (`clapas.opendata.source`), never the dataset's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from clapas.opendata.settings import DatasetSettings, OpenDataSettings

OBSERVATIONS, AGGREGATE, DEVICES, ZONES, COUNTS = "observations", "aggregate", "devices", "zones", "counts"
# The national schema of mobility counts (schema.data.gouv.fr, etalab "comptage des mobilités", measure file
# v0.2.3; ../shared/domain-rules.md §6.3): what the `counts` datasets conform to.
COUNT_SCHEMA = "https://schema.data.gouv.fr/etalab/schema-comptage-mobilites-mesure/"
# What a device says of itself, not of the city: left out of observation datasets unless a dataset names them.
HEALTH_QUANTITIES = ("battery", "battery.voltage", "radio.margin")


@dataclass(frozen=True, slots=True)
class Dataset:
    id: str
    type: str  # observations | aggregate | devices | zones | counts
    title_fr: str
    title_en: str
    description_fr: str
    description_en: str
    kinds: tuple[str, ...] = ()
    quantities: tuple[str, ...] = ()  # empty: every quantity but the devices' health
    keywords: tuple[str, ...] = ()  # in French
    keywords_en: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()  # EU data-theme codes
    licence: str = ""  # empty: the catalogue's
    frequency: str = ""  # empty: `[open_data] frequency`
    geo: bool = True  # rows have a position (GeoJSON)
    extra: dict[str, str] = field(default_factory=dict)


def _obs(id: str, kinds: tuple[str, ...], fr: str, en: str, dfr: str, den: str, keywords: tuple[str, ...],
         keywords_en: tuple[str, ...], themes: tuple[str, ...]) -> Dataset:
    return Dataset(id, OBSERVATIONS, fr, en, dfr, den, kinds=kinds, keywords=keywords, keywords_en=keywords_en,
                   themes=themes)


BUILTIN: dict[str, Dataset] = {d.id: d for d in (
    _obs("weather", ("weather_station", "rain_gauge"), "Météo urbaine", "Urban weather",
         "Température, humidité, pression, vent et pluie mesurés par les stations et pluviomètres de la ville.",
         "Temperature, humidity, pressure, wind and rain measured by the city's weather stations and rain gauges.",
         ("météo", "température", "pluie", "îlot de chaleur"),
         ("weather", "temperature", "rain", "heat island"), ("ENVI", "REGI")),
    _obs("air-quality", ("air_quality",), "Qualité de l'air", "Air quality",
         "Concentrations de particules (PM10, PM2,5) et de gaz (NO2, O3, SO2, CO) mesurées par les capteurs de la "
         "ville.",
         "Particle (PM10, PM2.5) and gas (NO2, O3, SO2, CO) concentrations measured by the city's sensors.",
         ("qualité de l'air", "pollution", "particules"),
         ("air quality", "pollution", "particulate matter"), ("ENVI", "HEAL")),
    _obs("river-levels", ("water_level",), "Hauteurs des cours d'eau", "River levels",
         "Hauteurs d'eau des rivières et ruisseaux mesurées par les limnimètres de la ville.",
         "Water levels of rivers and streams measured by the city's level gauges.",
         ("hauteur d'eau", "crue", "inondation"), ("river level", "flood"), ("ENVI",)),
    _obs("traffic", ("traffic_counter",), "Comptages routiers", "Road traffic counts",
         "Passages de véhicules comptés par les capteurs de la ville.",
         "Vehicle passages counted by the city's traffic counters.",
         ("trafic", "comptage", "mobilité"), ("traffic", "counts", "mobility"), ("TRAN",)),
    _obs("bike-counts", ("bike_counter",), "Comptages vélos", "Bicycle counts",
         "Passages de vélos (et piétons) comptés par les compteurs de la ville.",
         "Bicycle (and pedestrian) passages counted by the city's counters.",
         ("vélo", "comptage", "mobilité"), ("cycling", "counts", "mobility"), ("TRAN",)),
    Dataset("bike-count-measures", COUNTS, "Comptages vélos (schéma national des comptages)",
            "Bicycle counts (national counting schema)",
            "Passages de vélos par heure et par canal (compteur et sens), au format du fichier « mesures » du "
            "schéma national « comptage des mobilités » : chaque créneau est présent, 0 sans passage, vide sans "
            "donnée.",
            "Bicycle passages per hour and channel (counter and direction), in the format of the « measures » file "
            "of the national « comptage des mobilités » schema: every slot present, 0 without passage, empty "
            "without data.", kinds=("bike_counter",), keywords=("vélo", "comptage", "schéma national"),
            keywords_en=("cycling", "counts", "national schema"),
            themes=("TRAN",), geo=False),
    _obs("bike-stations", ("bike_station",), "Stations de vélos", "Bike stations",
         "Occupation des stations de vélos en libre-service.", "Occupancy of the shared-bike stations.",
         ("vélo", "vélo en libre-service"), ("cycling", "bike sharing"), ("TRAN",)),
    _obs("indoor-climate", ("indoor_climate",), "Climat intérieur des bâtiments", "Indoor climate of buildings",
         "Température, humidité et CO2 des salles des bâtiments publics (musées, écoles).",
         "Temperature, humidity and CO2 of rooms of public buildings (museums, schools).",
         ("climat intérieur", "CO2", "musée"), ("indoor climate", "CO2", "museum"), ("EDUC", "ENVI")),
    _obs("water-network", ("district_meter",), "Réseau d'eau : compteurs de secteur", "Water network: district meters",
         "Volumes et débits mesurés par les compteurs de sectorisation du réseau d'eau potable.",
         "Volumes and flows measured by the drinking-water network's district meters.",
         ("eau potable", "réseau", "sectorisation"),
         ("drinking water", "water network", "district metering"), ("ENVI",)),
    Dataset("water-consumption", AGGREGATE, "Consommation d'eau des ménages par quartier",
            "Household water consumption per district",
            "Volume d'eau consommé par jour et par zone (quartier, secteur) et pour la ville, agrégé sur au moins "
            "10 compteurs sans qu'aucun ne dépasse 85 % du total (décret n° 2020-196 ; règle de dominance de "
            "l'INSEE) ; les cellules qui ne respectent pas ces seuils sont signalées comme masquées.",
            "Water consumed per day and zone (district, network sector) and for the city, aggregated over at least "
            "10 meters with none above 85 % of the total (décret n° 2020-196; INSEE's dominance rule); cells "
            "below these thresholds are flagged as suppressed.",
            keywords=("eau", "consommation", "agrégat"),
            keywords_en=("water consumption", "aggregate"), themes=("ENVI", "REGI"),
            frequency="DAILY", geo=False),
    Dataset("devices", DEVICES, "Capteurs de la ville", "The city's sensors",
            "Les capteurs dont les données sont ouvertes : type, zone, position, premier et dernier message.",
            "The sensors whose data are open: kind, zone, position, first and last message.",
            keywords=("capteurs", "IoT", "LoRaWAN"), keywords_en=("sensors", "IoT", "LoRaWAN"),
            themes=("TECH", "REGI")),
    Dataset("zones", ZONES, "Zones de la ville", "The city's zones",
            "Quartiers, secteurs du réseau d'eau, parcs, bassins versants : les zones des agrégats et des capteurs.",
            "Districts, water-network sectors, parks, catchments: the zones of the aggregates and the sensors.",
            keywords=("quartiers", "zones"), keywords_en=("districts", "zones"), themes=("REGI",), frequency="IRREG"),
)}


def _apply(d: Dataset, s: DatasetSettings) -> Dataset:
    changes = {k: v for k, v in (("title_fr", s.title_fr), ("title_en", s.title_en),
                                  ("description_fr", s.description_fr), ("description_en", s.description_en),
                                  ("licence", s.licence), ("frequency", s.frequency)) if v}
    changes.update({k: tuple(v) for k, v in (("kinds", s.kinds), ("quantities", s.quantities),
                                              ("keywords", s.keywords), ("keywords_en", s.keywords_en),
                                              ("themes", s.themes)) if v})
    return replace(d, **changes)


def datasets(s: OpenDataSettings | None) -> dict[str, Dataset]:
    """The catalogue's datasets: the built-in ones with the city's changes, and the city's own."""
    out = dict(BUILTIN)
    for name, ds in (s.datasets if s else {}).items():
        base = out.get(name) or Dataset(name, OBSERVATIONS, name, name, name, name)
        out[name] = _apply(base, ds)
    return out


class UnknownDataset(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def resolve(name: str, s: OpenDataSettings | None, kinds_known: set[str]) -> Dataset:
    """A dataset by name, or the observations of one device kind."""
    table = datasets(s)
    if name in table:
        return table[name]
    if name in kinds_known:
        return Dataset(name, OBSERVATIONS, name, name, f"Observations des capteurs de type {name}.",
                       f"Observations of the {name} devices.", kinds=(name,))
    raise UnknownDataset(f"unknown dataset {name!r}: one of {', '.join(sorted(table))}, or a device kind")
