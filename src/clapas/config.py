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
    web: WebSettings = msgspec.field(default_factory=WebSettings)
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
    if s.web.language not in ("fr", "en"):
        raise ConfigError(f"web.language must be fr or en, got {s.web.language[:20]!r} (CLAPAS_WEB_LANGUAGE)")
    a = s.alerts
    if a.max_attempts < 1 or a.retry_base_s <= 0 or a.retry_max_s < a.retry_base_s or a.poll_interval_s <= 0:
        raise ConfigError("alerts: max_attempts ≥ 1, retry_base_s > 0, retry_max_s ≥ retry_base_s, "
                          "poll_interval_s > 0")
    if a.webhook.url and not a.webhook.url.startswith(("http://", "https://")):
        raise ConfigError(f"CLAPAS_ALERTS_WEBHOOK_URL must be http(s)://…, got {a.webhook.url!r}")
    if a.mqtt.url and not a.mqtt.url.startswith(("mqtt://", "mqtts://")):
        raise ConfigError(f"CLAPAS_ALERTS_MQTT_URL must look like mqtt://host:port, got {a.mqtt.url!r}")
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
    """[web]: a tile URL is an http(s) template naming {z}, {x} and {y}; a zoom a slippy map knows."""
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
    if not p.broker_url.startswith(("amqp://", "amqps://")):
        raise ConfigError(f"partitioned.broker_url must be amqp://…, got {p.broker_url!r}")
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
