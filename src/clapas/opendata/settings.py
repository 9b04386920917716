"""`[open_data]`: what the exports and the DCAT-AP catalogue say of the city's datasets (issue 11).

Licences: data published by a French administration may only be under the Licence Ouverte (Etalab 2.0) or the ODbL
without homologation (CRPA D323-2-1, décret n° 2017-638; ../shared/domain-rules.md §8.1), so these are the two a
city may name, for the whole catalogue or per dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec


@dataclass(frozen=True, slots=True)
class Licence:
    id: str
    title: str
    url: str  # what portals match a licence by (data.gouv.fr guesses it from the URL or the title)
    spdx: str
    types: tuple[str, ...]  # ADMS licence types (http://purl.org/adms/licencetype/…)


# CRPA D323-2-1 (décret n° 2017-638 du 27 avril 2017): the two licences of public data [S].
LICENCES: dict[str, Licence] = {
    "etalab-2.0": Licence("etalab-2.0", "Licence Ouverte / Open Licence version 2.0",
                          "https://www.etalab.gouv.fr/licence-ouverte-open-licence/", "etalab-2.0",
                          ("Attribution",)),
    "odbl-1.0": Licence("odbl-1.0", "Open Database License (ODbL) v1.0",
                        "https://opendatacommons.org/licenses/odbl/1-0/", "ODbL-1.0", ("Attribution", "ShareAlike")),
}
# Update frequencies: the EU Publications Office's frequency vocabulary (DCAT-AP's controlled vocabulary for
# dct:accrualPeriodicity), http://publications.europa.eu/resource/authority/frequency [S].
FREQUENCIES = ("UPDATE_CONT", "CONT", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "ANNUAL", "IRREG", "NEVER", "UNKNOWN")
# EU data themes (DCAT-AP's controlled vocabulary for dcat:theme), http://publications.europa.eu/resource/authority/
# data-theme [S].
THEMES = ("AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "OP_DATPRO", "REGI", "SOCI",
          "TECH", "TRAN")


class DatasetSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`[open_data.datasets.NAME]`: a dataset of the catalogue, or changes to a built-in one (empty: keep)."""

    kinds: list[str] = msgspec.field(default_factory=list)  # device kinds whose observations it holds
    quantities: list[str] = msgspec.field(default_factory=list)  # empty: every quantity they report
    title_fr: str = ""
    title_en: str = ""
    description_fr: str = ""
    description_en: str = ""
    keywords: list[str] = msgspec.field(default_factory=list)  # in French
    keywords_en: list[str] = msgspec.field(default_factory=list)
    themes: list[str] = msgspec.field(default_factory=list)  # EU data-theme codes (THEMES)
    licence: str = ""  # a key of LICENCES; empty: the catalogue's
    frequency: str = ""  # an EU frequency code (FREQUENCIES); empty: the built-in one or `frequency`


class OpenDataSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Public address of this API, as re-users reach it (behind the city's gateway): distributions' accessURL and
    # downloadURL start with it. Empty: the address the catalogue was asked at.
    base_url: str = ""
    # Licence of every dataset unless the dataset names its own: "etalab-2.0" (Licence Ouverte 2.0, the default of
    # French public data) or "odbl-1.0" (CRPA D323-2-1, §8.1).
    licence: str = "etalab-2.0"
    # Who publishes (dct:publisher, a foaf:Agent) and whom to ask (dcat:contactPoint, a vcard:Kind).
    publisher: str = "Ville"
    publisher_url: str = ""
    # ADMS publisher type (http://purl.org/adms/publishertype/…): a city is a LocalAuthority.
    publisher_type: str = "LocalAuthority"
    contact_name: str = ""  # empty: the publisher
    contact_email: str = ""
    contact_url: str = ""
    catalog_title_fr: str = "Données ouvertes des capteurs de la ville"
    catalog_title_en: str = "Open sensor data of the city"
    catalog_description_fr: str = ("Mesures des capteurs de la ville (météo, air, rivières, comptages) et agrégats "
                                   "publiés de la consommation d'eau, exportées par clapas.")
    catalog_description_en: str = ("Measurements of the city's sensors (weather, air, rivers, counts) and the "
                                   "published aggregates of water consumption, exported by clapas.")
    # Update frequency of sensor datasets (EU frequency code): readings arrive continuously.
    frequency: str = "UPDATE_CONT"
    # An export without `since` covers this many days before `until` (design: a month, the usual portal file).
    default_days: int = 31
    # Longest period of one export request, in days (design: a year and its edges; exports stream, this bounds
    # the store's work per request).
    max_days: int = 366
    # Rows per store read while streaming (design: 10,000 rows ≈ 1 MB of CSV, one short query each).
    chunk_rows: int = 10_000
    # Whether the catalogue describes restricted datasets too (dct:accessRights RESTRICTED: re-users then know
    # to ask for a convention); personal ones never appear, their open aggregates do.
    list_restricted: bool = True
    # [open_data.datasets.NAME]: more datasets, or changes to the built-in ones (`clapas.opendata.datasets`).
    datasets: dict[str, DatasetSettings] = msgspec.field(default_factory=dict)


class OpenDataError(ValueError):
    """An `[open_data]` setting that names no licence, frequency or theme."""


def check_settings(s: OpenDataSettings) -> None:
    if s.licence not in LICENCES:
        raise OpenDataError(f"open_data.licence: {s.licence!r} is not one of {', '.join(LICENCES)} "
                            "(CRPA D323-2-1: Licence Ouverte or ODbL)")
    if s.frequency not in FREQUENCIES:
        raise OpenDataError(f"open_data.frequency: {s.frequency!r} is not one of {', '.join(FREQUENCIES)}")
    if s.default_days < 1 or s.max_days < s.default_days or s.chunk_rows < 100:
        raise OpenDataError("open_data: default_days ≥ 1, max_days ≥ default_days, chunk_rows ≥ 100")
    if s.base_url and not s.base_url.startswith(("http://", "https://")):
        raise OpenDataError(f"open_data.base_url must be http(s)://…, got {s.base_url!r}")
    for name, d in s.datasets.items():
        if d.licence and d.licence not in LICENCES:
            raise OpenDataError(f"open_data.datasets.{name}.licence: {d.licence!r} is not one of "
                                f"{', '.join(LICENCES)}")
        if d.frequency and d.frequency not in FREQUENCIES:
            raise OpenDataError(f"open_data.datasets.{name}.frequency: {d.frequency!r} is not one of "
                                f"{', '.join(FREQUENCIES)}")
        bad = [t for t in d.themes if t not in THEMES]
        if bad:
            raise OpenDataError(f"open_data.datasets.{name}.themes: unknown {', '.join(bad)}; known: "
                                f"{', '.join(THEMES)}")
