"""Settings: a TOML file (see `city.example.toml`), each value overridable by a `CLAPAS_*` environment variable.

The variable for a setting is its path in upper case joined by underscores: `store` → `CLAPAS_STORE`,
`[chirpstack] mqtt_url` → `CLAPAS_CHIRPSTACK_MQTT_URL`, `[http] port` → `CLAPAS_HTTP_PORT`. With no file at all,
`clapas run` works from the environment and the defaults below.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from clapas.charter.aggregates import AggregateSettings
from clapas.charter.retention import RetentionSettings
from clapas.charter.roles import RoleSettings
from clapas.connectors.gbfs.poller import GbfsSystemSettings
from clapas.decoders.chirpstack_object import FieldMap
from clapas.indices.air import AirQualitySettings
from clapas.indices.bikeshare import BikeShareSettings
from clapas.indices.counters import CounterSettings
from clapas.indices.flood import FloodSettings
from clapas.indices.heat import HeatSettings, IslandSettings
from clapas.indices.museum import MuseumSettings
from clapas.opendata.settings import OpenDataSettings

ENV_PREFIX = "CLAPAS_"


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it."""


class HttpSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8000


class WebSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The city's own screens and words (issue 16): the dashboard's maps and the city's language. Every field here
    is public: the page reads them from `/api/v1/web/config`, anonymous callers included; never put a secret here."""

    # A tile server's URL template (`{z}/{x}/{y}`, Leaflet's syntax) drawn under the maps; empty (the default): no
    # tiles, only the city's zones and devices on a plain background, so that nothing leaves the machine (design:
    # offline dashboard). Set it to the city's own tile server, never to a third party's without its terms.
    tile_url: str = ""
    tile_attribution: str = ""  # the tiles' attribution, shown on the map (tile servers' terms require one)
    # Deepest zoom the tile server renders (design [U]: 19, the usual maximum of slippy-map tile servers)
    tile_max_zoom: int = 19
    # The city's language, "fr" or "en": the dashboard's default (a browser's own choice or `?lang=` wins), the
    # language alerts are written in (their `message`, e-mails and webhooks) and the API's answer when a caller asks
    # for none (`?lang=`, `Accept-Language`). French for a French city: the texts its departments and citizens read,
    # with the regulatory terms in French (loi Warsmann, vigilance, indice ATMO) — loi n° 94-665 du 4 août 1994
    # (« loi Toubon ») art. 1: French is the language of public services.
    language: str = "fr"


class ChirpstackSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # mqtt://user:password@host:port (mqtts:// for TLS); empty: no MQTT connection.
    mqtt_url: str = ""
    # ChirpStack v4 MQTT integration topics: application/{application_id}/device/{dev_eui}/event/{event}
    topic: str = "application/+/device/+/event/+"
    # Gateway Bridge topics on the same broker (health rules, domain-rules §7.2): the retained connection state and
    # the stats; `[region/]gateway/<id>/…` (eu868 by default). Empty list: not subscribed.
    gateway_topics: list[str] = msgspec.field(
        default_factory=lambda: ["eu868/gateway/+/state/conn", "eu868/gateway/+/event/stats"])
    client_id: str = "clapas"
    qos: int = 0
    # Accept `POST /api/v1/ingest/chirpstack?event=…` (the ChirpStack HTTP integration).
    http_ingest: bool = True


class TtnSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # The Things Stack v3 MQTT server, e.g. mqtts://app@tenant:API_KEY@eu1.cloud.example:8883; empty: off.
    mqtt_url: str = ""
    topic: str = "v3/+/devices/+/up"
    client_id: str = "clapas-tts"
    qos: int = 0


class PipelineSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Uplinks per write: the store is written in batches, never one commit per message.
    batch_size: int = 10_000
    # Longest time an uplink waits in memory before its batch is written.
    flush_interval_s: float = 1.0
    # How many ChirpStack deduplicationIds are remembered to drop repeated deliveries.
    dedupe_window: int = 500_000
    # How many recent frame counters are remembered per device (for sources without a deduplication id).
    fcnt_window: int = 16
    # Batches waiting for the writer before ingestion waits (backpressure).
    max_pending_batches: int = 4
    # Longest wait between two tries of a batch the store refused or could not take (the store is down): ingestion
    # resumes at most this long after the store is back (issue 9).
    retry_max_s: float = 2.0
    # The spool (issue 9): every message an MQTT subscriber receives is appended there (and, at QoS 1, fsync'd
    # before it is acknowledged to the broker); the store is fed from it. Empty: beside the DuckDB file
    # (<file>.spool) or var/spool/<database> for PostgreSQL.
    spool_dir: str = ""
    # Most the spool holds on disk (received, not yet committed) while the store is slow or down; past this the
    # broker is slowed (clapas stops reading) instead. 2 GiB ≈ 40 min of 1,000 uplinks/s of 0.9 KB.
    spool_max_bytes: int = 2 * 1024**3
    # On SIGTERM/SIGINT, how long to wait for the store to take what is pending; what it did not take stays in the
    # spool and is written on the next start.
    stop_timeout_s: float = 30.0


class PartitionedSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Partitioned mode (issue 15): `clapas route`/`bridge` → RabbitMQ streams → `clapas worker` × n → PostgreSQL."""

    # AMQP 0-9-1 URL of the city's RabbitMQ (3.10 or later: streams), with its virtual host; or nats://host:4222 for
    # NATS JetStream (2.9 or later), fed by `clapas bridge` only (ChirpStack has no NATS integration).
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    # Names: exchange <prefix>.partitions, streams <prefix>.p000…, ingress queue <prefix>.ingress.
    prefix: str = "clapas"
    # Fixed for the life of a city: changing it moves most devices to another partition (design choice: 32 lets up
    # to 32 workers share a city; a worker costs ≈ 0.16 CPU-s per 1,000 uplinks, README "Partitioned mode").
    partitions: int = 32
    # A worker that stops renewing loses its partitions after this long; another takes them over (takeover is
    # bounded by lease_s + renew time). Design choice: longer than a PostgreSQL failover pause, short for alerts.
    lease_s: float = 10.0
    # Most events per batch a worker reads from its partitions before writing them (one transaction).
    batch_size: int = 5000
    # Longest wait for events before a partial batch is written.
    poll_s: float = 0.5
    # Stream retention (RabbitMQ x-max-age; JetStream max_age, same notation): a worker may be down this long
    # without losing data.
    stream_max_age: str = "7D"


class ProfileSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a device profile means: its decoder, the kind of device, how its fields map to quantities."""

    decoder: str = ""
    kind: str = ""
    expected_interval_s: int | None = None
    # For decoder = "chirpstack_object": field path in the decoded object → quantity.
    fields: dict[str, FieldMap] = msgspec.field(default_factory=dict)
    # After decoding: rename/scale a decoder's output (e.g. "counter.count" → rain.amount × 0.2 mm per tip).
    remap: dict[str, FieldMap] = msgspec.field(default_factory=dict)
    # A vendor JavaScript codec: `maker/codec-id` in [codecs] repository, or a .js / codec .yaml / ChirpStack
    # profile .json path. Its output is mapped by `fields` (and its normalized output, when it has one).
    codec: str = ""


class CodecSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Vendor JavaScript codecs (`clapas.codecs`): where they are and what each call may use."""

    # A folder laid out like The Things Stack device repository (vendor/<maker>/<codec>.yaml + .js).
    repository: str = ""
    # A folder of ChirpStack device-profile exports (JSON): devices of a profile of the same name use its codec.
    chirpstack_profiles: str = ""
    # CPU time one codec call may take before it is stopped and its uplink quarantined.
    time_limit_ms: float = 100.0
    # Memory of one codec's runtime (its code and everything it allocates).
    memory_limit_mb: int = 32
    # JavaScript stack of one codec's runtime (runaway recursion stops here).
    stack_limit_kb: int = 256


class RegistrySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Imported at start when set: a devices CSV (see `clapas devices export`) and a zones GeoJSON.
    devices_csv: str = ""
    zones_geojson: str = ""


class WaterSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of the water detectors (`clapas.detectors.water`). Sources: ../shared/domain-rules.md §1;
    [S] stated by the source named, [U] unverified, "design" a platform choice where no source gives a number."""

    # --- meters ---
    # Register resolution: meters count whole litres (wmbusmeters driver_izar.cc reports litres, §1.2) [S-code].
    index_resolution_m3: float = 0.001
    # Permanent flow Q3 of the usual DN15 residential meter (Kamstrup flowIQ 2101: 2.5 m³/h) [U]; the Kamstrup
    # leak sensitivity below is a share of it (§1.2: "presumably Q3").
    meter_q3_m3h: float = 2.5
    # A reading interval longer than this cannot tell a flow-free hour from continuous use: state restarts (design;
    # hourly meters tolerate one lost uplink; twice-a-day meters (Téléo, §1.2) cannot support the hourly rules).
    max_reading_gap_s: float = 3 * 3600 + 300
    # Radio modules transmit with a few seconds of jitter; spans are compared with this slack (design).
    reading_tolerance_s: float = 120.0
    # --- continuous flow (Kamstrup MULTICAL 21 / flowIQ info code LEAK, §1.2) [S] ---
    continuous_flow_window_h: float = 24.0  # no flow-free hour during the last 24 h
    flow_free_hour_s: float = 3600.0  # "at least one continuous hour without flow"; also clears the alert
    # Minimum constant flow that raises the alarm, as a share of Q3: Kamstrup sensitivity N=1 (> 0.5 %, 12.5 L/h)
    # [S]. Hourly index readings cannot see a flow-free hour that straddles two readings, so the finer settings
    # (N=4 0.25 %, N=5 0.1 %) alarm on households that draw a little water in most hours; they suit meters that
    # evaluate the rule themselves (their alarm.leak flag is surfaced as water.meter_alarm.leak).
    leak_sensitivity_q3_share: float = 0.005
    # Severity from the minimum hourly flow: Kamstrup N=2 (> 1 % Q3) → major, N=3 (> 2 % Q3) → critical [S].
    leak_major_q3_share: float = 0.01
    leak_critical_q3_share: float = 0.02
    # --- night-use variant (Home Assistant Taggle integration: night window 01:00–05:00, flow in each hour) [S] ---
    night_start_hour: int = 1
    night_end_hour: int = 5
    # Share of the night that readings must cover to decide (design: one lost hourly uplink is tolerated).
    night_min_coverage: float = 0.75
    # Nights in a row with water in every hour: one night can be chance (a baby, an insomniac), two in a row is a
    # pattern (Techem: "2 à 3 jours de consommation anormale d'affilée", §1.2) [S].
    night_consecutive: int = 2
    # --- burst (MULTICAL 21 BURST trigger: "not found", §1.2, so a documented design default) ---
    # Above what a garden tap delivers (a pool filled with a hose), below the meter's overload flow Q4 = 1.25 Q3.
    burst_q3_share: float = 0.8
    # Sustained for at least this long: Kamstrup's shortest BURST duration bucket is "1–8 hours" [S-code]; two
    # hourly readings, because one hour of heavy use happens (measured: a shop's peak hour at 2,200 L/h).
    burst_min_duration_s: float = 7200.0
    # --- abnormal consumption, loi Warsmann (CGCT L2224-12-4 III bis, R2224-20-1; §1.1) [S] ---
    overconsumption_factor: float = 2.0  # "excède le double du volume d'eau moyen consommé"
    reference_years: int = 3  # "pendant une période équivalente au cours des trois années précédentes"
    # Equivalent period = the same days 52 weeks earlier, so that weekdays line up (design).
    year_shift_days: int = 364
    # Tele-read early warning: abnormal on most of the last N days in a row (Techem: "2 à 3 jours de consommation
    # anormale d'affilée", §1.2) [S]; the median day decides, so one exceptional day (a pool) does not.
    consecutive_days: int = 3
    # Fallback reference ("à défaut"): mean daily volume of the zone's comparable dwellings over this many days
    # (design). The law asks for dwellings "de taille et de caractéristiques comparables" [S]: comparable means the
    # same value of this registry tag (e.g. rooms or occupants); dwellings without it get no fallback reference,
    # since a zone's mean flags every large household (measured: ~8 % of dwellings a week in the simulated city).
    zone_reference_days: int = 7
    comparable_tag: str = "dwelling_size"
    notice_window_months: int = 1  # the subscriber's one-month window after the notice [S]
    sanitation_cap_factor: float = 1.0  # assainissement capped at the average consumption (R2224-19-2) [S]
    # --- district (DMA) balance and minimum night flow (§1.3) ---
    mnf_start_hour: int = 2  # MNF window 02:00–04:00 local (Water 2024, 16(24):3642) [S]
    mnf_end_hour: int = 4
    mnf_baseline_nights: int = 7  # UKWIR 99/WM/08/21: rolling 7-day 20th percentile of the nightly minimum [S]
    mnf_percentile: float = 20.0
    mnf_min_nights: int = 3  # nights of baseline needed before alerting (design)
    # A rise is alarming beyond the legitimate night use the district's customers could explain (SANFLOW, §1.3) [S]:
    # 6 % of the population active at night, 10 L per cistern (counted per dwelling: at least one occupant),
    # 50 L/h per small non-domestic user.
    night_active_share: float = 0.06
    cistern_l: float = 10.0
    non_domestic_night_lph: float = 50.0
    # Zone rules (night flow, balance) wait this long after a period for late uplinks (design).
    lateness_s: float = 7200.0


class QualityCheck(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Data-quality checks of one quantity (`[health.quality.<quantity key>]`); None switches a check off."""

    min: float | None = None  # physical range: a reading outside it is flagged `range`
    max: float | None = None
    flat_s: float | None = None  # a reading unchanged (± flat_tolerance) this long: `flat` (a stuck sensor)
    flat_tolerance: float = 0.0
    spike: float | None = None  # |reading − previous| above this, back within it at the next reading: `spike`
    spike_window_s: float = 3600.0  # only between readings this close


def _default_quality() -> dict[str, QualityCheck]:
    """[U] design defaults (domain-rules.md §7.2 asks for range, flat line and spikes; no standard gives numbers):
    ranges are the sensors' datasheet ranges (SHT3x-class T/RH: −40…125 °C, 0…100 %RH; optical PM counters
    0…1000 µg/m³), flat lines are hours without any change of a quantity that always varies."""
    return {
        "air.temperature": QualityCheck(min=-40.0, max=60.0, flat_s=6 * 3600.0, spike=10.0),
        "air.humidity": QualityCheck(min=0.0, max=100.0, flat_s=12 * 3600.0, spike=30.0),
        "air.pm10": QualityCheck(min=0.0, max=1000.0, flat_s=12 * 3600.0),
        "air.pm2_5": QualityCheck(min=0.0, max=1000.0, flat_s=12 * 3600.0),
        "air.no2": QualityCheck(min=0.0, max=2000.0, flat_s=12 * 3600.0),
        "water.level": QualityCheck(min=-5.0, max=30.0),
    }


# the intervals the store keeps per device to learn T from (`clapas.store.health.LEARN_KEEP`): §7.2's 20
LEARN_UPLINKS_MAX = 20


class HealthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """[health] Device and network health rules (domain-rules.md §7; `clapas.detectors.health`)."""

    enabled: bool = True
    # --- silent devices (§7.2) ---
    check_interval_s: float = 300.0  # design: silence and gateways are checked on this grid of stream time
    silent_factor: float = 3.0  # §7.2 proposal [U]: silent after 3 missed uplinks (> 3·T)
    # ChirpStack v4: a device is inactive when now − last_seen > 1.5 × its profile's uplink interval
    # (chirpstack/src/storage/device.rs l.872–930) [S-code]; §7.2 proposal [U]: *late* at 1.5·T. A state the
    # health routes serve and count (as ChirpStack, no alert)
    late_factor: float = 1.5
    # design: the health routes learn T from the journal this far back (20 intervals of a daily device)
    learn_window_s: float = 30 * 86400.0
    silent_grace_share: float = 0.05  # design: clocks and transmit delays, capped at one check
    # §7.2 proposal [U]: T = median inter-arrival of the last 20 uplinks; at most LEARN_UPLINKS_MAX, the intervals the
    # store keeps per device (`clapas.store.health`)
    learn_uplinks: int = 20
    learn_min_uplinks: int = 5  # design: fewer intervals than this teach nothing
    never_seen_after_s: float = 86400.0  # design: a registered device unheard this long after the stream began
    # --- gateways (§7.2) ---
    stats_interval_s: float = 30.0  # Gateway Bridge `stats_interval="30s"` [S-code]
    offline_factor: float = 2.0  # ChirpStack: offline when now − last_seen > 2 × stats_interval (gateway.rs) [S-code]
    debounce_checks: int = 2  # §7.2 proposal [U]: offline only if it holds ≥ 2 checks (§7.5 flapping gateways)
    gateway_check_s: float = 30.0  # design: gateways are checked every stats interval of stream time
    heard_window_s: float = 7 * 86400.0  # §7.2 proposal [U]: blast radius from 7 days of rx_info[]
    # --- batteries (§7.3) ---
    devstatus_low_percent: float = 20.0  # §7.3 proposal [U]: DevStatus < 20 %
    chemistry_tag: str = "battery_chemistry"  # device tag naming the cell; default below
    default_chemistry: str = "li-socl2"
    # chemistry → (warn V, critical V): Li-SOCl2 3.6 V cell, §7.3 proposal [U] (Tadiran LTC: 3.6 V operating);
    # Li-MnO2 3 V: RadioBridge "battery low" below 2.75 V, transmission stops below 2.54 V [S]
    voltage_thresholds: dict[str, list[float]] = msgspec.field(
        default_factory=lambda: {"li-socl2": [3.3, 3.1], "li-mno2": [2.75, 2.54]})
    voltage_window_s: float = 86400.0  # §7.3: V_mean24h
    knee_drop_v: float = 0.1  # [U] §7.3 "flat then falls fast": the 24-h mean this far below the plateau warns
    trend_window_s: float = 30 * 86400.0  # §7.3 proposal [U]: the 30-day slope …
    forecast_horizon_s: float = 60 * 86400.0  # … reaching the threshold within 60 days
    trend_min_s: float = 3 * 86400.0  # design: a slope needs this much history
    # --- radio (§7.1) ---
    degrading_margin_db: float = 10.0  # 7-day median < 10 dB: ChirpStack's ADR installation margin [S-code]
    degrading_drop_db: float = 6.0  # §7.1 proposal [U]: ≥ 6 dB below the 30-day median
    critical_margin_db: float = 3.0  # §7.1 proposal [U]
    sf12_critical_margin_db: float = 5.0  # §7.1 proposal [U]: SF12 (no faster rate to fall back on) with < 5 dB
    short_days: int = 7  # §7.1: the 7-day …
    long_days: int = 30  # … and the 30-day medians
    radio_min_days: int = 2  # design: days of margins before the radio state is judged
    # --- frame counters (§7.4) ---
    # LoRaWAN ≤ 1.0.3 MAX_FCNT_GAP (Lora-net/LoRaMac-node#138) [S]: a jump beyond it starts a new segment, and a
    # 16-bit counter falling from its last 16,384 values to a small one within it is a roll-over, not a reset
    fcnt_max_gap: int = 16_384
    frame_window_s: float = 7 * 86400.0  # design: the frame loss served per device, over its last 7 days
    # --- data quality (§7.2) ---
    clock_skew_s: float = 120.0  # §7.2 proposal [U]: |t_payload − t_rx| > 120 s ⇒ SUSPECT
    quality: dict[str, QualityCheck] = msgspec.field(default_factory=_default_quality)

    def __post_init__(self) -> None:
        if not 1 <= self.learn_uplinks <= LEARN_UPLINKS_MAX:
            raise ValueError(f"[health] learn_uplinks ({self.learn_uplinks}) must be between 1 and "
                             f"{LEARN_UPLINKS_MAX}: the intervals the store keeps per device")
        if not 0 < self.late_factor <= self.silent_factor:
            raise ValueError(f"[health] late_factor ({self.late_factor}) must be > 0 and at most silent_factor "
                             f"({self.silent_factor}): late comes before silent")


class WebhookSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST each alert event as JSON to one URL (`clapas.alerts.notifiers.webhook`)."""

    url: str = ""  # empty: no webhook
    # The body is signed: X-Clapas-Signature: sha256=<hex HMAC-SHA256 of the body with this secret>.
    secret: str = ""
    timeout_s: float = 10.0
    # Which rules it notifies: comma-separated patterns ("water.*,air.alert"); "*" all.
    rules: str | list[str] = "*"


class AlertMqttSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Publish each alert event to an MQTT broker (Node-RED flows subscribe to it)."""

    url: str = ""  # mqtt://user:password@host:port (mqtts:// for TLS); empty: no MQTT notifier
    # Placeholders: {rule}, {subject}, {event}, {severity}, {zone}
    topic: str = "clapas/alerts/{rule}/{subject}"
    qos: int = 1  # 1: the broker acknowledges each publication before it counts as delivered
    client_id: str = "clapas-alerts"
    timeout_s: float = 10.0
    rules: str | list[str] = "*"


class EmailSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Mail each alert event over SMTP."""

    host: str = ""  # empty: no email
    port: int = 587
    from_: str = msgspec.field(default="clapas@localhost", name="from")
    to: str | list[str] = ""  # comma-separated addresses
    starttls: bool = True
    user: str = ""
    password: str = ""  # better from CLAPAS_ALERTS_EMAIL_PASSWORD than in the file
    timeout_s: float = 30.0
    rules: str | list[str] = "*"


class AlertSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Detectors, the alert lifecycle and the delivery of notifications (`clapas.alerts`)."""

    # Run the detectors on the stored stream and keep their alerts (clapas run / demo).
    enabled: bool = True
    # Which alert events are notified (comments never are): opened, acknowledged, resolved.
    events: str | list[str] = "opened,acknowledged,resolved"
    # Delivery attempts of one notification before it is kept as dead (listed at /api/v1/notifications?status=dead).
    # 10: the attempts span about 85 min, so that a receiver down for an hour gets every event afterwards, in order
    # (bench/faults.py; with 8 they span about 21 min and an hour's outage dead-letters them).
    max_attempts: int = 10
    # Retries wait retry_base_s × 2^(attempt−1), at most retry_max_s: 10 s, 20 s, 40 s … about 85 min in all.
    retry_base_s: float = 10.0
    retry_max_s: float = 3600.0
    # How often the outbox is looked at for due notifications.
    poll_interval_s: float = 1.0
    # Where the dashboard is reachable by the people notified (links in emails); empty: no link.
    public_url: str = ""
    # [alerts.rule_enabled] rule → false switches a rule off (issue 16; a department does it at run time through
    # the self-service settings): its openings are dropped, its clears still close what it had opened. The rule's
    # detector goes on following its subjects meanwhile, so switching it on again opens at its next opening (a new
    # crossing, an escalation), never a condition that began while it was off.
    rule_enabled: dict[str, bool] = msgspec.field(default_factory=dict)
    webhook: WebhookSettings = msgspec.field(default_factory=WebhookSettings)
    mqtt: AlertMqttSettings = msgspec.field(default_factory=AlertMqttSettings)
    email: EmailSettings = msgspec.field(default_factory=EmailSettings)


class CharterSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The data charter (../shared/domain-rules.md §8): who may see what. Roles: `clapas.charter.roles`."""

    # The role of callers without a credential: "public" (open data) by default; "" refuses them everything.
    anonymous: str = "public"
    # [charter.roles.NAME] scopes = [...], rate_per_minute, rate_per_day: replaces the default role of that name.
    roles: dict[str, RoleSettings] = msgspec.field(default_factory=dict)
    # Classes (`clapas.charter.classes`, defaults from §8.9); the most restrictive of the device's registry class,
    # its kind's and the quantity's applies. [charter.kinds] kind (or "water_meter.non_residential") → class.
    kinds: dict[str, str] = msgspec.field(default_factory=dict)
    # [charter.quantities] quantity key → class, e.g. occupancy = "restricted" (presence in a room).
    quantities: dict[str, str] = msgspec.field(default_factory=dict)
    # [charter.rules] alert rule or rule prefix → class (default: the class of the kinds the rule reads).
    rules: dict[str, str] = msgspec.field(default_factory=dict)
    # [charter.purposes] kind → why the city collects it, as GET /api/v1/register says it.
    purposes: dict[str, str] = msgspec.field(default_factory=dict)
    # [charter.aggregates]: when an open aggregate of personal data is published (`clapas.charter.aggregates`).
    aggregates: AggregateSettings = msgspec.field(default_factory=AggregateSettings)
    # [charter.retention]: how long each class and quantity is kept (`clapas.charter.retention`, §8.9).
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)


class OidcSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """OIDC bearer tokens (JWT) from the city's identity provider (Keycloak…), checked against its keys."""

    issuer: str = ""  # the `iss` tokens must carry, e.g. https://sso.city.example/realms/city
    audience: str = "clapas"  # the `aud` tokens must carry
    # The issuer's keys: a JWKS file, else this URL, else the issuer's `jwks_uri` (its discovery document).
    jwks_file: str = ""
    jwks_url: str = ""
    jwks_cache_s: float = 300.0  # fetched keys are kept this long (a key unknown to the cache refetches once)
    algorithms: str | list[str] = "RS256,ES256"
    leeway_s: float = 30.0  # clock skew tolerated on exp/nbf/iat
    # Where the roles are in the token (dotted path); Keycloak and Stellio use realm_access.roles (§8.5).
    roles_claim: str = "realm_access.roles"
    # token role → clapas role; roles not listed are ignored. A token without a mapped role gets `default_role`.
    role_map: dict[str, str] = msgspec.field(default_factory=dict)
    default_role: str = "public"
    actor_claim: str = "sub"  # who the audit log names


class GatewaySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An API gateway (Kong, §8.5) that authenticated the consumer and says who it is in headers."""

    # Addresses (or CIDRs) of the gateway: its headers are ignored from anyone else.
    trusted_proxies: str | list[str] = ""
    consumer_header: str = "X-Consumer-Username"  # Kong key-auth's upstream header
    groups_header: str = "X-Consumer-Groups"  # Kong acl's upstream header (comma-separated)
    anonymous_header: str = "X-Anonymous-Consumer"  # "true": the gateway let an anonymous consumer through
    # gateway group → clapas role; a consumer without a mapped group gets `default_role`.
    group_roles: dict[str, str] = msgspec.field(default_factory=dict)
    default_role: str = "public"


class AuthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How callers prove who they are (`clapas.api.access`)."""

    # Which identities are accepted: keys (clapas keys), oidc, gateway; comma-separated.
    modes: str | list[str] = "keys"
    # false: every caller gets every scope, as before the charter (only on a network you trust; for benchmarks).
    enforce: bool = True
    # false when a gateway in front applies the rate limits (Kong rate-limiting, §8.5).
    rate_limits: bool = True
    # A key looked up is remembered this long: a revocation made by another process applies within it.
    key_cache_s: float = 5.0
    oidc: OidcSettings = msgspec.field(default_factory=OidcSettings)
    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)


class AuditSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The audit log (`clapas.api.access`, `clapas audit`)."""

    # CNIL délibération n° 2021-122 (§8.4): logs kept 6 months to 1 year, up to 3 years with a documented risk.
    retention_months: int = 12
    # Entries are written in batches by one thread: at most this long after the request, or this many at once.
    flush_interval_s: float = 1.0
    batch_size: int = 1000


class NgsiLdSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The NGSI-LD API (`/ngsi-ld/v1/`, ETSI GS CIM 009; `clapas.api.ngsi_ld`)."""

    # The writable sandbox tenant (experimenters, conformance runs): true, false, or auto = on with DuckDB, off
    # with PostgreSQL (the production store). Its writes need the `sandbox:write` scope (role `experimenter`).
    sandbox: str | bool = "auto"
    sandbox_tenant: str = "sandbox"  # its NGSILD-Tenant name
    # §5.5.10: a creation in an unknown tenant creates it (a sandbox tenant, its own rows); at most this many
    # (design: a test bed, not a hosting service)
    max_tenants: int = 100
    city_tenant: str = "city"  # the city's read-only tenant
    # The tenant of requests without an NGSILD-Tenant header (CLAPAS_NGSI_LD_DEFAULT_TENANT=sandbox for a
    # conformance suite, which sends none).
    default_tenant: str = "city"
    # Hosts a JSON-LD @context may be fetched from (comma-separated; design: loopback only, no Internet at run
    # time); contexts of other hosts must be in the built-in ones or in `context_cache`.
    context_hosts: str | list[str] = "127.0.0.1,localhost,::1"
    context_cache: str = ""  # a directory: one file per context URL, named urllib.parse.quote(url, safe="")
    context_timeout_s: float = 3.0
    # ETSI GS CIM 009 §6.3.10: `limit` defaults to an implementation value; a larger limit than the maximum is
    # refused (403 TooManyResults). Design values (Orion-LD: 20 and 1000).
    default_limit: int = 20
    max_limit: int = 1000
    # §6.3.10 temporal pagination: instances an attribute returns in one answer (more: 206 with Content-Range).
    # Design value; a conformance run of the ETSI suite wants it between 8 and 19 (README).
    max_instances: int = 10_000

    # --- the city's tenant and subscriptions (ngsicity) ---
    # Subscriptions one API key (or one OIDC/gateway subject) may hold (design [U]: Orion-LD and Stellio set no
    # limit; 20 covers a partner's dashboards and alerting while bounding what one key makes the matcher do per
    # batch). 0: no limit.
    max_subscriptions_per_key: int = 20
    # The shortest `timeInterval` (s) a periodic subscription may ask (design [U]: a minute-scale floor; sensors
    # report every 1–60 min, §9, so a shorter period only resends the same values).
    min_time_interval_s: float = 60.0
    # One delivery's HTTP timeout, s (design: the alert webhook's order; the outbox retries with backoff).
    notify_timeout_s: float = 10.0
    # NoiseLevelObserved's period (dateObservedFrom → To), s, for a sound meter without an expected interval
    # (design [U]: an hourly LAeq, the period of the French noise observatories' hourly indicators).
    noise_period_s: float = 3600.0
    # --- end of the city's tenant and subscriptions ---


class SelfServiceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """[selfservice] Settings changed at run time by the departments (issue 16, `clapas.selfservice`)."""

    # How often a process looks in the store for changes another process made (`clapas serve` answering the API,
    # another worker); the process that makes a change applies it at its next batch. Design value: alerts follow a
    # new threshold within seconds, and the look is one indexed query.
    reload_s: float = 5.0
    # Device and zone tags changed through the API (`clapas.selfservice.tags`): design limits, no source gives one;
    # a tag is a short label (a river, a battery chemistry, a billing reading), and the registry CSV keeps all of a
    # device's tags in one cell.
    tags_max: int = 50
    tag_key_max_chars: int = 64
    tag_value_max_chars: int = 256


class PostgresSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How clapas talks to PostgreSQL (issue 9): a database that stops answering (a half-open connection: a network
    that drops packets gives no error, only a wait) must fail a write, never block the writer forever. Design
    values; the parameters are libpq's (postgresql.org/docs/current/libpq-connect.html)."""

    # Opening a connection (TCP and the startup handshake) gives up after this long (libpq connect_timeout).
    connect_timeout_s: int = 10
    # The server cancels a statement running longer (statement_timeout; 0: never). Migrations run without it.
    statement_timeout_s: float = 60.0
    # A batch's transaction not finished after this long has its connection cut by clapas itself (the server
    # cannot cancel what it never receives); the batch is retried on a new connection, nothing is lost.
    write_timeout_s: float = 90.0
    # TCP keepalives on an idle connection: first probe after `keepalives_idle_s`, then every
    # `keepalives_interval_s`, dropped after `keepalives_count` unanswered (libpq keepalives_*).
    keepalives_idle_s: int = 30
    keepalives_interval_s: int = 10
    keepalives_count: int = 3
    # Data sent and not acknowledged for this long drops the connection (Linux TCP_USER_TIMEOUT; 0: the kernel's).
    tcp_user_timeout_s: float = 30.0

    def libpq(self) -> dict[str, Any]:
        """The connection parameters psycopg passes to libpq."""
        return {"connect_timeout": self.connect_timeout_s, "keepalives": 1,
                "keepalives_idle": self.keepalives_idle_s, "keepalives_interval": self.keepalives_interval_s,
                "keepalives_count": self.keepalives_count, "tcp_user_timeout": round(self.tcp_user_timeout_s * 1000),
                "options": f"-c statement_timeout={round(self.statement_timeout_s * 1000)}"}


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # duckdb:///path/city.duckdb (one file, the default) or postgresql://user@host:port/db
    store: str = "duckdb:///clapas.duckdb"
    # The city's time zone, for rules that speak of local time.
    timezone: str = "Europe/Paris"
    log_level: str = "INFO"
    postgres: PostgresSettings = msgspec.field(default_factory=PostgresSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    web: WebSettings = msgspec.field(default_factory=WebSettings)
    chirpstack: ChirpstackSettings = msgspec.field(default_factory=ChirpstackSettings)
    ttn: TtnSettings = msgspec.field(default_factory=TtnSettings)
    pipeline: PipelineSettings = msgspec.field(default_factory=PipelineSettings)
    registry: RegistrySettings = msgspec.field(default_factory=RegistrySettings)
    water: WaterSettings = msgspec.field(default_factory=WaterSettings)
    # The environmental uses (issue 5): each section's settings, with their sources, live beside the computations
    # they drive in `clapas.indices` (heat.py, air.py, flood.py, museum.py); the docs there say which numbers are [U].
    heat: HeatSettings = msgspec.field(default_factory=HeatSettings)
    health: HealthSettings = msgspec.field(default_factory=HealthSettings)
    islands: IslandSettings = msgspec.field(default_factory=IslandSettings)
    air: AirQualitySettings = msgspec.field(default_factory=AirQualitySettings)
    museum: MuseumSettings = msgspec.field(default_factory=MuseumSettings)
    flood: FloodSettings = msgspec.field(default_factory=FloodSettings)
    codecs: CodecSettings = msgspec.field(default_factory=CodecSettings)
    alerts: AlertSettings = msgspec.field(default_factory=AlertSettings)
    # The data charter (issue 10): roles and the anonymous grant; how callers authenticate; the audit log.
    charter: CharterSettings = msgspec.field(default_factory=CharterSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    audit: AuditSettings = msgspec.field(default_factory=AuditSettings)
    # Open data (issue 11): exports and the DCAT-AP catalogue, licence, publisher (`clapas.opendata.settings`).
    open_data: OpenDataSettings = msgspec.field(default_factory=OpenDataSettings)
    # Mobility (issue 12): GBFS systems polled by `clapas run` ([[gbfs]]), station KPIs and contract rules
    # ([bikeshare]) and the counter observatory ([counters]); thresholds beside their computations in `indices`.
    gbfs: list[GbfsSystemSettings] = msgspec.field(default_factory=list)
    bikeshare: BikeShareSettings = msgspec.field(default_factory=BikeShareSettings)
    counters: CounterSettings = msgspec.field(default_factory=CounterSettings)
    ngsi_ld: NgsiLdSettings = msgspec.field(default_factory=NgsiLdSettings)
    # Device profile name (as ChirpStack names it) → what it means.
    profiles: dict[str, ProfileSettings] = msgspec.field(default_factory=dict)
    # Partitioned mode (issue 15): several workers over RabbitMQ; unused by `clapas run`.
    partitioned: PartitionedSettings = msgspec.field(default_factory=PartitionedSettings)
    selfservice: SelfServiceSettings = msgspec.field(default_factory=SelfServiceSettings)


def _env_overrides(struct: type[msgspec.Struct], env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """Collect CLAPAS_* variables for the scalar settings of `struct`, recursing into sections."""
    out: dict[str, Any] = {}
    for field in msgspec.structs.fields(struct):
        key = field.encode_name  # the name in the file (`from`, not `from_`)
        name = f"{prefix}{key.upper()}"
        ftype = field.type
        if isinstance(ftype, type) and issubclass(ftype, msgspec.Struct):
            sub = _env_overrides(ftype, env, name + "_")
            if sub:
                out[key] = sub
        elif name in env:
            out[key] = env[name]
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), lay the environment over it, and check every value."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML: {e}") from None
        except UnicodeDecodeError as e:  # TOML is UTF-8 (found by tests/fuzz)
            raise ConfigError(f"{p}: not UTF-8 text (TOML must be): {e}") from None
    data = _merge(data, _env_overrides(Settings, env, ENV_PREFIX))
    try:
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as e:
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid setting{where}: {e}") from None
    settings = _inherit_timezone(settings, data)
    _check(settings)
    _apply_codecs(settings.codecs)
    return settings


def _inherit_timezone(s: Settings, data: Mapping[str, Any]) -> Settings:
    """The heat and islands computations carry their own `timezone` (they are usable without the app); unless a
    section sets it, they take the city's, so that one `timezone` (CLAPAS_TIMEZONE) moves every local day."""
    changes = {name: msgspec.structs.replace(getattr(s, name), timezone=s.timezone)
               for name in ("heat", "islands") if "timezone" not in (data.get(name) or {})}
    return msgspec.structs.replace(s, **changes) if changes else s


def _apply_codecs(c: CodecSettings) -> None:
    """Codecs are compiled once per process (`clapas.codecs.library.LIBRARY`), so their settings are applied here,
    where every command reads its settings."""
    if c.time_limit_ms <= 0 or c.memory_limit_mb < 1 or c.stack_limit_kb < 16:
        raise ConfigError("codecs: time_limit_ms must be > 0, memory_limit_mb ≥ 1 and stack_limit_kb ≥ 16")
    from clapas.codecs.engine import Limits
    from clapas.codecs.library import LIBRARY

    LIBRARY.configure(c.repository, c.chirpstack_profiles, Limits(c.time_limit_ms, c.memory_limit_mb,
                                                                  c.stack_limit_kb))


def _check_health(h: HealthSettings) -> None:
    from clapas.model import QUANTITY_BY_KEY

    unknown = sorted(k for k in h.quality if k not in QUANTITY_BY_KEY)
    if unknown:
        raise ConfigError(f"[health.quality]: unknown quantities {', '.join(unknown)} (keys of the catalogue, e.g. "
                          "air.temperature)")
    if h.default_chemistry not in h.voltage_thresholds or any(len(v) != 2 or v[1] > v[0]
                                                              for v in h.voltage_thresholds.values()):
        raise ConfigError("[health] voltage_thresholds: chemistry = [warn V, critical V] (warn ≥ critical), one of "
                          "them the default_chemistry")
    if min(h.check_interval_s, h.gateway_check_s, h.stats_interval_s, h.silent_factor) <= 0 or h.debounce_checks < 1:
        raise ConfigError("[health]: check intervals, stats_interval_s and silent_factor > 0, debounce_checks ≥ 1")


def _check(s: Settings) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not (s.store.startswith("duckdb://") or s.store.startswith(("postgresql://", "postgres://"))):
        raise ConfigError(f"store must be duckdb:///path or postgresql://…, got {s.store!r} (CLAPAS_STORE)")
    for tz, where in ((s.timezone, "CLAPAS_TIMEZONE"), (s.heat.timezone, "heat.timezone"),
                      (s.heat.window_timezone, "heat.window_timezone"), (s.islands.timezone, "islands.timezone")):
        try:
            if tz or where == "CLAPAS_TIMEZONE":
                ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file (tests/fuzz)
            raise ConfigError(f"unknown time zone {tz[:100]!r} ({where})") from None
    _check_gbfs(s)
    for url, var in ((s.chirpstack.mqtt_url, "CLAPAS_CHIRPSTACK_MQTT_URL"), (s.ttn.mqtt_url, "CLAPAS_TTN_MQTT_URL")):
        if url and not url.startswith(("mqtt://", "mqtts://")):
            raise ConfigError(f"{var} must look like mqtt://host:port, got {url!r}")
    if not 0 < s.http.port < 65536:
        raise ConfigError(f"http port out of range: {s.http.port} (CLAPAS_HTTP_PORT)")
    _check_web(s.web)
    _check_health(s.health)
    a = s.alerts
    if a.max_attempts < 1 or a.retry_base_s <= 0 or a.retry_max_s < a.retry_base_s or a.poll_interval_s <= 0:
        raise ConfigError("alerts: max_attempts ≥ 1, retry_base_s > 0, retry_max_s ≥ retry_base_s, "
                          "poll_interval_s > 0")
    if a.webhook.url and not a.webhook.url.startswith(("http://", "https://")):
        raise ConfigError(f"CLAPAS_ALERTS_WEBHOOK_URL must be http(s)://…, got {a.webhook.url!r}")
    if a.mqtt.url and not a.mqtt.url.startswith(("mqtt://", "mqtts://")):
        raise ConfigError(f"CLAPAS_ALERTS_MQTT_URL must look like mqtt://host:port, got {a.mqtt.url!r}")
    if not 0 < s.selfservice.reload_s < math.inf:
        raise ConfigError("selfservice.reload_s must be > 0")
    if min(s.selfservice.tags_max, s.selfservice.tag_key_max_chars, s.selfservice.tag_value_max_chars) < 1:
        raise ConfigError("selfservice.tags_max, tag_key_max_chars and tag_value_max_chars must be ≥ 1")
    if a.email.host and not a.email.to:
        raise ConfigError("alerts.email: set `to` (CLAPAS_ALERTS_EMAIL_TO) when `host` is set")
    departments = s.heat.department_table()
    if s.heat.department not in departments:
        raise ConfigError(f"heat.department {s.heat.department!r} has no canicule thresholds; known: "
                          f"{', '.join(sorted(departments))}, or add [heat.departments.{s.heat.department}] "
                          f"with name, ibmn_c and ibmx_c (CLAPAS_HEAT_DEPARTMENT)")
    _check_charter(s)
    _check_stewardship(s)
    _check_open_data(s)
    _check_partitioned(s)
    pg = s.postgres
    if not (pg.connect_timeout_s >= 1 and 0 <= pg.statement_timeout_s < math.inf and 0 < pg.write_timeout_s < math.inf
            and 0 <= pg.tcp_user_timeout_s < math.inf and min(pg.keepalives_idle_s, pg.keepalives_interval_s,
                                                              pg.keepalives_count) >= 1):
        raise ConfigError("postgres: connect_timeout_s and keepalives_* must be ≥ 1, write_timeout_s > 0, "
                          "statement_timeout_s and tcp_user_timeout_s ≥ 0 (finite)")
    if s.pipeline.batch_size < 1 or not 0 < s.pipeline.flush_interval_s < math.inf:  # NaN fails too
        raise ConfigError("pipeline batch_size must be ≥ 1 and flush_interval_s > 0")
    if (not 0 < s.pipeline.retry_max_s < math.inf or s.pipeline.spool_max_bytes < 1
            or not 0 <= s.pipeline.stop_timeout_s < math.inf):
        raise ConfigError("pipeline retry_max_s and spool_max_bytes must be > 0, stop_timeout_s ≥ 0")


AUTH_MODES = ("keys", "oidc", "gateway")


def names(value: str | list[str]) -> list[str]:
    """A comma-separated setting (or a list) as a list of stripped names."""
    parts = value.split(",") if isinstance(value, str) else value
    return [p.strip() for p in parts if p.strip()]


def _check_web(w: WebSettings) -> None:
    """[web]: a tile URL is an http(s) template naming {z}, {x} and {y}; a zoom a slippy map knows; fr or en."""
    if w.language not in ("fr", "en"):
        raise ConfigError(f"web.language must be fr or en, got {w.language[:20]!r} (CLAPAS_WEB_LANGUAGE)")
    if w.tile_url and (not w.tile_url.startswith(("http://", "https://", "/"))
                       or not all(p in w.tile_url for p in ("{z}", "{x}", "{y}"))):
        raise ConfigError(f"[web] tile_url must be http(s)://…/{{z}}/{{x}}/{{y}}… (or a path on this server), got "
                          f"{w.tile_url[:200]!r} (CLAPAS_WEB_TILE_URL)")
    if not 0 <= w.tile_max_zoom <= 24:
        raise ConfigError(f"[web] tile_max_zoom must be 0…24, got {w.tile_max_zoom}")


def _check_partitioned(s: Settings) -> None:
    p = s.partitioned
    if not 1 <= p.partitions <= 999:
        raise ConfigError(f"partitioned.partitions must be 1…999, got {p.partitions}")
    if not (p.lease_s > 0 and math.isfinite(p.lease_s)) or not (p.poll_s > 0 and math.isfinite(p.poll_s)):
        raise ConfigError("partitioned.lease_s and poll_s must be positive numbers of seconds")
    if p.batch_size < 1:
        raise ConfigError(f"partitioned.batch_size must be at least 1, got {p.batch_size}")
    if not p.broker_url.startswith(("amqp://", "amqps://", "nats://", "tls://")):
        raise ConfigError(f"partitioned.broker_url must be amqp://… (RabbitMQ) or nats://… (NATS JetStream), "
                          f"got {p.broker_url!r}")
    if p.broker_url.startswith(("nats://", "tls://")):
        from clapas.connectors.broker.jetstream import max_age_s

        try:
            max_age_s(p.stream_max_age)
        except ValueError as e:
            raise ConfigError(f"partitioned.{e}") from None
def _check_gbfs(s: Settings) -> None:
    """[[gbfs]] systems: named once each, an http(s) discovery URL, sane polling bounds (issue 12)."""
    seen: set[str] = set()
    for g in s.gbfs:
        if not g.id or g.id in seen or "/" in g.id:
            raise ConfigError(f"gbfs: each system needs its own id without '/' (got {g.id!r})")
        seen.add(g.id)
        if not g.url.startswith(("http://", "https://")):
            raise ConfigError(f"gbfs {g.id}: url must be the http(s) gbfs.json auto-discovery URL, got {g.url!r}")
        if not 0 < g.min_interval_s <= g.max_interval_s or g.backoff_base_s <= 0 or g.timeout_s <= 0:
            raise ConfigError(f"gbfs {g.id}: needs 0 < min_interval_s ≤ max_interval_s, backoff_base_s and "
                              "timeout_s > 0")


def _check_charter(s: Settings) -> None:
    from clapas.charter.classes import ClassError, check_settings
    from clapas.charter.roles import UnknownRole, effective_roles

    try:
        check_settings(s.charter)
    except ClassError as e:
        raise ConfigError(str(e)) from None
    try:
        roles = effective_roles(s.charter.roles)
    except UnknownRole as e:
        raise ConfigError(f"charter.roles: {e}") from None
    a = s.auth
    used = {"charter.anonymous": s.charter.anonymous, "auth.oidc.default_role": a.oidc.default_role,
            "auth.gateway.default_role": a.gateway.default_role,
            **{f"auth.oidc.role_map.{k}": v for k, v in a.oidc.role_map.items()},
            **{f"auth.gateway.group_roles.{k}": v for k, v in a.gateway.group_roles.items()}}
    for where, role in used.items():
        if role and role not in roles:
            raise ConfigError(f"{where}: unknown role {role!r}; known: {', '.join(sorted(roles))}")
    bad = [m for m in names(a.modes) if m not in AUTH_MODES]
    if bad:
        raise ConfigError(f"auth.modes: unknown mode(s) {', '.join(bad)}; known: {', '.join(AUTH_MODES)} "
                          f"(CLAPAS_AUTH_MODES)")
    if "oidc" in names(a.modes) and not a.oidc.issuer:
        raise ConfigError("auth.oidc.issuer is required when auth.modes includes oidc (CLAPAS_AUTH_OIDC_ISSUER)")
    if "gateway" in names(a.modes):
        import ipaddress

        if not names(a.gateway.trusted_proxies):
            raise ConfigError("auth.gateway.trusted_proxies is required when auth.modes includes gateway")
        for p in names(a.gateway.trusted_proxies):
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise ConfigError(f"auth.gateway.trusted_proxies: {p!r} is not an address or CIDR") from None
    if not 1 <= s.audit.retention_months <= 36:
        raise ConfigError("audit.retention_months must be within 1–36 (CNIL 2021-122: up to 3 years, §8.4)")
    if not 0 < s.audit.flush_interval_s < math.inf or s.audit.batch_size < 1:
        raise ConfigError("audit: flush_interval_s must be > 0 and batch_size ≥ 1")


def _check_stewardship(s: Settings) -> None:
    """[charter.aggregates] and [charter.retention]."""
    from clapas.charter.retention import RetentionError, check_settings

    g = s.charter.aggregates
    if g.min_meters < 2 or not 0 < g.dominance_share < 1 or g.settle_h < 0 or g.max_days < 1:
        raise ConfigError("charter.aggregates: min_meters ≥ 2, 0 < dominance_share < 1, settle_h ≥ 0, max_days ≥ 1")
    try:
        check_settings(s.charter.retention)
    except RetentionError as e:
        raise ConfigError(str(e)) from None


def _check_open_data(s: Settings) -> None:
    from clapas.opendata.settings import OpenDataError, check_settings

    try:
        check_settings(s.open_data)
    except OpenDataError as e:
        raise ConfigError(str(e)) from None
