"""The store's one interface, and the columnar batch the pipeline hands it.

Two implementations keep the same tables and give the same answers: `duckdb.py` (one embedded file, the default) and
`postgres.py` (production: COPY, monthly partitions, hourly/daily rollups). `tests/store/` runs one suite on both.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from clapas.model import Device, Message, Zone

if TYPE_CHECKING:
    from clapas.store.alerts import AlertChange, Route

# Journal statuses: every message received ends in exactly one of these.
STORED = "stored"  # decoded; its observations (or its event) are stored
QUARANTINED = "quarantined"  # kept with the reason it could not be decoded
DUPLICATE = "duplicate"  # a repeated delivery of a message already journaled
STATUSES = (STORED, QUARANTINED, DUPLICATE)
# Journaled events that carry readings to decode again; join, ack, txack, log and location are kept as they came.
DECODED_EVENTS = ("up", "status")

RESOLUTIONS = ("raw", "1h", "1d")


class DeviceSeen(msgspec.Struct, kw_only=True):
    """What one batch learned about a device's registry facts: enough to auto-register it.

    The pipeline sends one only when a device is new to it, when the network server's description of it changed,
    or when its attributes changed. When a device was last heard, and its last radio state, stores derive from the
    batch's journal rows (every message but duplicates), for every device of the batch.
    """

    eui: str
    last_seen: datetime
    name: str = ""
    profile: str = ""
    kind: str = ""
    decoder: str = ""
    zone: str = ""
    lat: float | None = None
    lon: float | None = None
    tags: dict[str, str] | None = None
    f_cnt: int | None = None
    rssi: float | None = None
    snr: float | None = None
    attributes: dict[str, Any] | None = None


class Batch:
    """Rows for one transaction, kept as columns so that stores can write them with COPY / Arrow in one go."""

    __slots__ = (
        "detector_state",
        "dev_by_eui",
        "ev_data",
        "ev_eui",
        "ev_event",
        "ev_time",
        "gw_events",
        "in_transaction",
        "j_dedup",
        "j_error",
        "j_eui",
        "j_event",
        "j_fcnt",
        "j_fmt",
        "j_fport",
        "j_id",
        "j_raw",
        "j_received",
        "j_rssi",
        "j_sf",
        "j_snr",
        "j_source",
        "j_status",
        "j_time",
        "j_topic",
        "links",
        "o_eui",
        "o_quantity",
        "o_time",
        "o_value",
    )

    def __init__(self) -> None:
        # journal: one entry per message received
        self.j_id: list[int | None] = []  # set only on replay (rows that already exist)
        self.j_received: list[datetime] = []
        self.j_time: list[datetime | None] = []
        self.j_source: list[str] = []
        self.j_event: list[str] = []
        self.j_fmt: list[str] = []
        self.j_topic: list[str] = []
        self.j_eui: list[str | None] = []
        self.j_fport: list[int | None] = []
        self.j_fcnt: list[int | None] = []
        self.j_dedup: list[str | None] = []
        self.j_status: list[str] = []
        self.j_error: list[str | None] = []
        self.j_rssi: list[float | None] = []
        self.j_snr: list[float | None] = []
        self.j_sf: list[int | None] = []
        self.j_raw: list[bytes] = []
        # observations: narrow rows
        self.o_time: list[datetime] = []
        self.o_eui: list[str] = []
        self.o_quantity: list[int] = []
        self.o_value: list[float] = []
        # device events (join, ack, txack, log, location)
        self.ev_time: list[datetime] = []
        self.ev_eui: list[str] = []
        self.ev_event: list[str] = []
        self.ev_data: list[str] = []  # JSON text
        # devices seen in this batch
        self.dev_by_eui: dict[str, DeviceSeen] = {}
        # what the health rules read of every uplink and status heard (not duplicates), in arrival order:
        # (epoch s, eui, event, fCnt, SF, bandwidth Hz, ((gateway id, SNR), …), power, device time epoch s)
        self.links: list[tuple[Any, ...]] = []
        # gateway events: (epoch s, gateway id, "conn" | "stats", online)
        self.gw_events: list[tuple[float, str, str, bool]] = []
        # what the detectors changed in this batch (`detectors.state.StateWrite`), committed with it; set by
        # `DetectorRunner.prepare` in the writer thread
        self.detector_state: Any = None
        # called with the store's cursor inside the batch's transaction, after its rows (partitioned mode: commit
        # the consumed positions under the lease epoch, or raise to roll everything back); set by the producer
        self.in_transaction: Callable[[Any], None] | None = None

    def __len__(self) -> int:
        return len(self.j_status)

    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for s in self.j_status:
            counts[s] += 1
        return counts


class JournalRow(msgspec.Struct):
    """A journaled message as replay reads it back."""

    id: int
    received_at: datetime
    source: str
    event: str
    fmt: str
    topic: str
    raw: bytes
    status: str

    def message(self) -> Message:
        """The message as it was received, to go through the pipeline again (replay, state rebuild)."""
        return Message(source=self.source, event=self.event, fmt=self.fmt, raw=self.raw,
                       received_at=self.received_at, topic=self.topic or "")


class Store(abc.ABC):
    """Where everything is kept. Methods are synchronous; the service calls them from a writer thread."""

    url: str

    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema (run on every start; idempotent)."""

    @abc.abstractmethod
    def write(self, batch: Batch) -> None:
        """Journal, observations, events and device state of one batch, in one transaction."""

    @abc.abstractmethod
    def replace(self, batch: Batch) -> None:
        """Replay: for the batch's journal ids, replace the observations of those uplinks and their status.

        Observations of an uplink are identified by (device, uplink time), so a replayed uplink never duplicates.
        """

    @abc.abstractmethod
    def iter_journal(
        self,
        *,
        statuses: tuple[str, ...] = (STORED, QUARANTINED),
        dev_eui: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = 5000,
    ) -> Iterator[list[JournalRow]]:
        """Journaled messages in id order, in chunks, for replay."""

    @abc.abstractmethod
    def recent_dedup_keys(self, limit: int) -> list[str]:
        """The newest deduplication ids, to warm the pipeline's duplicate filter after a restart."""

    # registry -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_devices(self, devices: list[Device]) -> int:
        """Create or update devices by EUI (registry import); returns how many were written."""

    @abc.abstractmethod
    def devices(self, *, kind: str | None = None, zone: str | None = None, limit: int = 1000,
                offset: int = 0, euis: Sequence[str] | None = None,
                groups: Sequence[tuple[str, str, str]] | None = None) -> list[dict[str, Any]]:
        """Devices with their registry fields and last state (last_seen, rssi, snr, battery…), by EUI; `euis`: only
        those (one query for a page of named devices); `groups`: only those whose (data_class, kind, premises_use)
        is one of these (`ZoneRollupTables.device_groups`' keys: what a caller may read, paged by the store)."""

    @abc.abstractmethod
    def device(self, eui: str) -> dict[str, Any] | None:
        """One device, or None."""

    @abc.abstractmethod
    def upsert_zones(self, zones: list[Zone]) -> int:
        """Create or update zones by id."""

    @abc.abstractmethod
    def zones(self) -> list[dict[str, Any]]:
        """Every zone, with its geometry and the number of devices in it."""

    # observations ---------------------------------------------------------------------------------------
    def latest(self, eui: str) -> list[dict[str, Any]]:
        """The last value of each quantity of a device: [{quantity, unit, time, value}]."""
        return self.latest_many([eui]).get(eui, [])

    @abc.abstractmethod
    def latest_many(self, euis: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """`latest` of many devices in one query (a page of the dashboard): EUI → its latest values, ordered by
        quantity id; devices without values (or unknown) are absent."""

    @abc.abstractmethod
    def observations(self, eui: str, quantity: str, start: datetime, end: datetime,
                     resolution: str = "raw", limit: int = 100_000) -> list[dict[str, Any]]:
        """History of one quantity of one device in [start, end).

        raw: [{time, value}]; 1h/1d: [{time, mean, min, max, count}] per bucket (days in the city's time zone).
        """

    @abc.abstractmethod
    def series(self, quantity: str, start: datetime, end: datetime, *, euis: Sequence[str] | None = None,
               kind: str | None = None, resolution: str = "raw") -> list[dict[str, Any]]:
        """History of one quantity of many devices in [start, end), in one query (the reports' bulk read).

        Devices: those named in `euis` and/or of `kind` (neither: every device reporting the quantity; an empty
        `euis`: none). Rows are those of `observations` with the device's `eui` first, ordered by EUI then time.
        """

    @abc.abstractmethod
    def group_series(self, quantity: str, start: datetime, end: datetime, *, euis: Sequence[str] | None = None,
                     kind: str | None = None, zone: str | None = None,
                     resolution: str = "1h") -> list[dict[str, Any]]:
        """One quantity over a group of devices (a district's meters…), aggregated per bucket in the store:
        [{time, devices, count, mean, min, max}] ordered by time, the buckets of `series` at 1h/1d (devices: how
        many reported in the bucket; mean: of every row of the bucket). Devices as `series`, and/or of `zone`.
        One row per bucket instead of one per device and bucket: a DMA of 4,000 meters over a month is 720 rows,
        not 2.9 M."""

    @abc.abstractmethod
    def quantities_in_use(self) -> dict[str, int]:
        """Quantity key → number of devices reporting it."""

    # journal --------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def uplinks(self, *, status: str | None = None, dev_eui: str | None = None, limit: int = 100,
                offset: int = 0) -> list[dict[str, Any]]:
        """Journal entries, newest first (without the raw bytes; `raw_size` instead, and the raw text if JSON)."""

    @abc.abstractmethod
    def counts(self) -> dict[str, int]:
        """Journal status → count, plus `observations`: the accounting of everything received."""

    @abc.abstractmethod
    def device_events(self, eui: str, limit: int = 100) -> list[dict[str, Any]]:
        """A device's join/ack/txack/log/location events, newest first."""

    # alerts (implemented once for both stores in `alerts.AlertTables`) -----------------------------------
    @abc.abstractmethod
    def apply_alert_changes(self, changes: list[AlertChange], route: Route | None = None,
                            now: datetime | None = None) -> list[tuple[int, str]]:
        """Detector transitions in one transaction, with their history and outbox rows."""

    @abc.abstractmethod
    def acknowledge_alert(self, alert_id: int, author: str = "", text: str = "", route: Route | None = None,
                          now: datetime | None = None) -> dict[str, Any]:
        """open → acknowledged (`AlertNotFound`, `InvalidTransition`)."""

    @abc.abstractmethod
    def resolve_alert(self, alert_id: int, author: str = "", text: str = "", route: Route | None = None,
                      now: datetime | None = None) -> dict[str, Any]:
        """open or acknowledged → resolved by hand."""

    @abc.abstractmethod
    def comment_alert(self, alert_id: int, author: str, text: str, now: datetime | None = None) -> dict[str, Any]:
        """A comment in the alert's history."""

    @abc.abstractmethod
    def alerts(self, *, states: tuple[str, ...] = (), rule: str | None = None, zone: str | None = None,
               device: str | None = None, start: datetime | None = None, end: datetime | None = None,
               limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Alerts, open first."""

    @abc.abstractmethod
    def stale_alerts(self) -> int:
        """How many open or acknowledged alerts are stale."""

    @abc.abstractmethod
    def alert(self, alert_id: int) -> dict[str, Any] | None:
        """One alert with its history."""

    @abc.abstractmethod
    def notifications(self, *, status: str | None = None, alert_id: int | None = None, limit: int = 100,
                      offset: int = 0) -> list[dict[str, Any]]:
        """The notification outbox, newest first."""

    @abc.abstractmethod
    def claim_notifications(self, limit: int = 50, lease_s: float = 60.0,
                            now: datetime | None = None) -> list[dict[str, Any]]:
        """Due pending notifications, leased to the caller for one attempt."""

    @abc.abstractmethod
    def notification_delivered(self, notification_id: int, now: datetime | None = None) -> None: ...

    @abc.abstractmethod
    def notification_failed(self, notification_id: int, error: str, retry_at: datetime | None) -> None: ...

    # detector state (implemented once for both stores in `detector_state.StateTables`) ---------------------
    @abc.abstractmethod
    def detector_state(self) -> list[tuple[str, str, str, bytes]]:
        """Every saved (detector, subject, version, state) row."""

    @abc.abstractmethod
    def replace_detector_state(self, rows: list[tuple[str, str, str, bytes | None]],
                               alerts: list[AlertChange] = (), route: Route | None = None) -> None:  # type: ignore[assignment]
        """A rebuild: every saved row replaced by `rows`, with the alert changes that reconcile the alert table, in
        one transaction."""

    @abc.abstractmethod
    def close(self) -> None: ...


class StoreError(RuntimeError):
    """The store cannot be opened or reached; the message says which and why (never with its password)."""


def _without_password(url: str) -> str:
    from urllib.parse import urlparse

    u = urlparse(url)
    return u._replace(netloc=u.netloc.replace(f":{u.password}@", ":***@")).geturl() if u.password else url


def open_store(url: str, timezone: str = "Europe/Paris", postgres: Any = None) -> Store:
    """The store a URL names: duckdb:///path/file.duckdb (or duckdb:///:memory:) or postgresql://…; `postgres`: the
    connection's `config.PostgresSettings` (timeouts, keepalives), the defaults without."""
    extra: dict[str, Any] = {}
    if url.startswith("duckdb://"):
        from clapas.store.duckdb import DuckDBStore as Kind
    elif url.startswith(("postgresql://", "postgres://")):
        from clapas.store.postgres import PostgresStore as Kind

        extra = {"connection": postgres}
    else:
        raise ValueError(f"unknown store URL {url!r}: use duckdb:///path/city.duckdb or postgresql://…")
    try:
        return Kind(url, timezone=timezone, **extra)
    except Exception as e:  # a missing folder, a locked file, a refused connection, bad credentials…
        raise StoreError(f"cannot open the store {_without_password(url)}: {e}") from e
