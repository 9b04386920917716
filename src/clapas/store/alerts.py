"""Alerts in the store: their lifecycle, their history and the outbox of their notifications, for both stores.

Why here and once: the lifecycle rules (one alert not resolved per rule and subject, which transitions are
allowed) must hold the same in DuckDB and PostgreSQL, and each change must be written in one transaction with its
history row and with one outbox row per notifier that wants it. A notifier that is down then never loses a
notification (the row waits in the outbox) and never blocks ingestion (delivery runs elsewhere, see
`clapas.alerts.outbox`). `AlertTables` holds that logic over `?` SQL; each store gives it a transaction
(`_alert_tx`), its read helper (`_rows`) and its JSON type.

Lifecycle: open → acknowledged → resolved. A `clear` detection resolves the alert (auto), a person may resolve it
by hand; a detection that opens an alert already open (or acknowledged) only records an `updated` event when its
severity or evidence changed. After a resolution, the next `open` of the same rule and subject is a new alert.
Times: `time` of opened and auto-resolved events is the observation time that made the transition; manual actions
are at the wall-clock time of the request; every event also keeps `recorded_at` (the wall clock).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from clapas.i18n import T, render
from clapas.store.where import where

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
ALERT_STATES = (OPEN, ACKNOWLEDGED, RESOLVED)
# history events
OPENED, UPDATED, ACKED, RESOLVED_EV, COMMENTED = "opened", "updated", "acknowledged", "resolved", "commented"
# outbox statuses: waiting (or between retries), sent, given up after the last attempt (kept, listed by the API)
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
NOTIFICATION_STATUSES = (PENDING, DELIVERED, DEAD)

# (rule, event kind) → names of the notifiers that want it
Route = Callable[[str, str], list[str]]


class AlertNotFound(LookupError):
    """No alert with that id."""


class InvalidTransition(ValueError):
    """The alert's state does not allow the action (acknowledge a resolved alert, resolve twice…)."""


@dataclass(frozen=True, slots=True)
class AlertChange:
    """A detector's transition as the store takes it: the detection plus what the registry says of its subject."""

    rule: str
    subject: str
    state: str  # "open" or "clear"
    at: datetime
    severity: str = "warning"
    evidence: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    subject_kind: str = "device"  # device or zone
    zone: str = ""
    # `message` as a catalog key and its parameters (`clapas.i18n.Text.as_json`), kept in the event's `data["text"]`
    # so that readers get it again in their language; None: `message` is all there is
    text: dict[str, Any] | None = None
    lang: str = "en"  # the language `message` is written in (the store writes its own texts in it too)


def _text(c: AlertChange) -> dict[str, Any]:
    return {"text": c.text} if c.text else {}


def _json(v: Any) -> str:
    return msgspec.json.encode(v).decode()


def _load(v: Any) -> Any:
    if isinstance(v, str | bytes):
        return msgspec.json.decode(v) if v else None
    return v


def _utc(v: Any) -> Any:
    return v.astimezone(UTC) if isinstance(v, datetime) else v


def ddl(json: str, ident: str, sequences: bool) -> list[str]:
    """The three tables; `ident` is the id column's definition (a sequence default in DuckDB, an identity in
    PostgreSQL). DuckDB has no partial index, so its one-open-alert rule is kept by the store's lock alone."""
    seq = ([f"CREATE SEQUENCE {s} START 1" for s in ("alert_id", "alert_event_id", "notification_id")]
           if sequences else [])

    def ident_of(s: str) -> str:
        return ident.format(seq=s)

    return [
        *seq,
        f"""CREATE TABLE alerts (
            id {ident_of('alert_id')}, rule VARCHAR NOT NULL, subject VARCHAR NOT NULL,
            subject_kind VARCHAR NOT NULL, zone VARCHAR NOT NULL DEFAULT '', severity VARCHAR NOT NULL,
            state VARCHAR NOT NULL, opened_at TIMESTAMPTZ NOT NULL, acked_at TIMESTAMPTZ, resolved_at TIMESTAMPTZ,
            message VARCHAR NOT NULL DEFAULT '', evidence {json}, last_evidence {json},
            updated_at TIMESTAMPTZ NOT NULL)""",
        "CREATE INDEX alerts_subject ON alerts (rule, subject)",
        f"""CREATE TABLE alert_events (
            id {ident_of('alert_event_id')}, alert_id BIGINT NOT NULL, kind VARCHAR NOT NULL,
            time TIMESTAMPTZ NOT NULL, recorded_at TIMESTAMPTZ NOT NULL, author VARCHAR NOT NULL DEFAULT '',
            text VARCHAR NOT NULL DEFAULT '', data {json})""",
        "CREATE INDEX alert_events_alert ON alert_events (alert_id, id)",
        f"""CREATE TABLE notifications (
            id {ident_of('notification_id')}, alert_id BIGINT NOT NULL, event_id BIGINT NOT NULL,
            event VARCHAR NOT NULL, notifier VARCHAR NOT NULL, status VARCHAR NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL, next_at TIMESTAMPTZ NOT NULL,
            delivered_at TIMESTAMPTZ, last_error VARCHAR, payload {json} NOT NULL)""",
        "CREATE INDEX notifications_due ON notifications (status, next_at)",
    ]


def duckdb_ddl() -> list[str]:
    return ddl("JSON", "BIGINT PRIMARY KEY DEFAULT nextval('{seq}')", sequences=True)


def postgres_ddl() -> list[str]:
    return [
        *ddl("JSONB", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", sequences=False),
        # the lifecycle's rule, enforced by the database too (several processes may share one PostgreSQL)
        "CREATE UNIQUE INDEX alerts_one_active ON alerts (rule, subject) WHERE state <> 'resolved'",
        "CREATE INDEX alerts_state ON alerts (state, opened_at)",
    ]


ALERT_COLS = ("id, rule, subject, subject_kind, zone, severity, state, opened_at, acked_at, resolved_at, message, "
              "evidence, last_evidence, updated_at, stale_since")
# The health rule whose alert makes the device's other alerts stale while it lasts (issue 13): a silent station's
# heat alert is not left open as if it were still true, nor resolved as if it had ended.
SILENT_RULE = "health.silent"
STALE, RESUMED = "stale", "resumed"


def health_ddl() -> list[str]:
    """Version 8 (issue 13): the stale mark of alerts whose device fell silent, and the data-quality flags of
    observations (only flagged rows; the observations table itself is never altered)."""
    return ["ALTER TABLE alerts ADD COLUMN stale_since TIMESTAMPTZ",
            """CREATE TABLE observation_flags (dev_eui VARCHAR NOT NULL, quantity_id SMALLINT NOT NULL,
                time TIMESTAMPTZ NOT NULL, flag VARCHAR NOT NULL)""",
            "CREATE INDEX observation_flags_device ON observation_flags (dev_eui, time)"]
_STATE_ORDER = f"CASE state WHEN '{OPEN}' THEN 0 WHEN '{ACKNOWLEDGED}' THEN 1 ELSE 2 END"


def alert_out(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: _utc(v) for k, v in r.items()}
    out["evidence"] = _load(r.get("evidence")) or {}
    out["last_evidence"] = _load(r.get("last_evidence"))
    return out


def _row(cur: Any, cols: str) -> dict[str, Any] | None:
    r = cur.fetchone()
    return None if r is None else dict(zip([c.strip() for c in cols.split(",")], r, strict=True))


class AlertTables:
    """The alert methods of `Store`, shared by both stores (mixed in before `Store`)."""

    _json_type = "JSON"
    _lock_rows = ""  # PostgreSQL: FOR UPDATE [SKIP LOCKED], so that two processes never take the same row

    # provided by each store
    def _alert_tx(self) -> AbstractContextManager[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        """The store's placeholders for the shared `?` SQL."""
        return sql

    def _rows(self, sql: str, params: Any = None) -> list[dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    # plumbing ----------------------------------------------------------------------------------------
    def _x(self, cur: Any, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
        cur.execute(self._q(sql), list(params))
        return cur

    def _active(self, cur: Any, rule: str, subject: str) -> dict[str, Any] | None:
        return _row(self._x(cur, f"SELECT {ALERT_COLS} FROM alerts WHERE rule = ? AND subject = ? "
                                 f"AND state <> '{RESOLVED}' ORDER BY id DESC LIMIT 1{self._lock_rows}",
                            [rule, subject]), ALERT_COLS)

    def _by_id(self, cur: Any, alert_id: int) -> dict[str, Any]:
        a = _row(self._x(cur, f"SELECT {ALERT_COLS} FROM alerts WHERE id = ?{self._lock_rows}", [alert_id]),
                 ALERT_COLS)
        if a is None:
            raise AlertNotFound(f"no alert {alert_id}")
        return a

    def _event(self, cur: Any, alert: dict[str, Any], kind: str, at: datetime, now: datetime, route: Route | None,
               author: str = "", text: str = "", data: dict[str, Any] | None = None) -> int:
        """A history row, and one outbox row per notifier that wants this event of this rule."""
        j = self._json_type
        event_id = self._x(cur, f"INSERT INTO alert_events (alert_id, kind, time, recorded_at, author, text, data) "
                                f"VALUES (?, ?, ?, ?, ?, ?, CAST(? AS {j})) RETURNING id",
                           [alert["id"], kind, at, now, author, text, _json(data or {})]).fetchone()[0]
        names = route(alert["rule"], kind) if route is not None else []
        if names:
            payload = _json(notification_payload(alert, event_id, kind, at, author, text, data or {}))
            for name in names:
                self._x(cur, f"INSERT INTO notifications (alert_id, event_id, event, notifier, status, attempts, "
                             f"created_at, next_at, payload) VALUES (?, ?, ?, ?, '{PENDING}', 0, ?, ?, "
                             f"CAST(? AS {j}))", [alert["id"], event_id, kind, name, now, now, payload])
        return event_id

    # lifecycle ---------------------------------------------------------------------------------------
    def apply_alert_changes(self, changes: list[AlertChange], route: Route | None = None,
                            now: datetime | None = None) -> list[tuple[int, str]]:
        """Detector transitions, in order, in one transaction; returns (alert id, event) of what changed."""
        with self._alert_tx() as cur:
            return self._apply_alert_changes_in(cur, changes, route, now or datetime.now(UTC))

    def _apply_alert_changes_in(self, cur: Any, changes: list[AlertChange], route: Route | None,
                                now: datetime) -> list[tuple[int, str]]:
        """`apply_alert_changes` inside a transaction the caller holds (a batch's, with its detector state)."""
        done: list[tuple[int, str]] = []
        j = self._json_type
        for c in changes:
            active = self._active(cur, c.rule, c.subject)
            if c.state == "open":
                if active is None:
                    new_id = self._x(cur, f"INSERT INTO alerts (rule, subject, subject_kind, zone, severity, "
                                          f"state, opened_at, message, evidence, updated_at) VALUES (?, ?, ?, ?, "
                                          f"?, '{OPEN}', ?, ?, CAST(? AS {j}), ?) RETURNING id",
                                     [c.rule, c.subject, c.subject_kind, c.zone, c.severity, c.at, c.message,
                                      _json(c.evidence), now]).fetchone()[0]
                    alert = self._by_id(cur, new_id)
                    self._event(cur, alert, OPENED, c.at, now, route, "clapas", c.message,
                                {"severity": c.severity, "evidence": c.evidence, **_text(c)})
                    done.append((new_id, OPENED))
                elif c.severity != active["severity"] or c.evidence != (
                        _load(active["last_evidence"]) or _load(active["evidence"])):
                    # the same condition, seen again (a restart, a replay) or worse: keep what it says now
                    self._x(cur, f"UPDATE alerts SET severity = ?, last_evidence = CAST(? AS {j}), "
                                 "updated_at = ? WHERE id = ?",
                            [c.severity, _json(c.evidence), now, active["id"]])
                    self._event(cur, active, UPDATED, c.at, now, None, "clapas", c.message,
                                {"severity": c.severity, "evidence": c.evidence, **_text(c)})
                    done.append((active["id"], UPDATED))
            elif active is not None:  # a clear: resolves what is open or acknowledged, ignored otherwise
                self._resolve(cur, active, c.at, now, route, "clapas", c.message, "auto", c.evidence, _text(c))
                done.append((active["id"], RESOLVED_EV))
            if c.rule == SILENT_RULE and c.subject_kind == "device":
                done += self._mark_stale(cur, c, now)
        return done

    def _mark_stale(self, cur: Any, c: AlertChange, now: datetime) -> list[tuple[int, str]]:
        """The device's other active alerts: stale while it is silent, resumed when it speaks (their own rules then
        clear them or keep them open, as the new data says)."""
        opening = c.state == "open"
        cond = "stale_since IS NULL" if opening else "stale_since IS NOT NULL"
        rows = self._x(cur, f"SELECT {ALERT_COLS} FROM alerts WHERE subject = ? AND subject_kind = 'device' "
                            f"AND rule <> ? AND state <> '{RESOLVED}' AND {cond}", [c.subject, SILENT_RULE]).fetchall()
        done = []
        for r in rows:
            a = dict(zip([x.strip() for x in ALERT_COLS.split(",")], r, strict=True))
            self._x(cur, "UPDATE alerts SET stale_since = ?, updated_at = ? WHERE id = ?",
                    [c.at if opening else None, now, a["id"]])
            kind = STALE if opening else RESUMED
            text = T(f"alert.{kind}")
            self._event(cur, a, kind, c.at, now, None, "clapas", render(text, c.lang), {"text": text.as_json()})
            done.append((a["id"], kind))
        return done

    def _resolve(self, cur: Any, alert: dict[str, Any], at: datetime, now: datetime, route: Route | None,
                 author: str, text: str, how: str, evidence: dict[str, Any] | None,
                 keyed: dict[str, Any] | None = None) -> None:
        j = self._json_type
        self._x(cur, f"UPDATE alerts SET state = '{RESOLVED}', resolved_at = ?, updated_at = ?, "
                     f"last_evidence = coalesce(CAST(? AS {j}), last_evidence) WHERE id = ?",
                [at, now, _json(evidence) if evidence else None, alert["id"]])
        self._event(cur, self._by_id(cur, alert["id"]), RESOLVED_EV, at, now, route, author, text,
                    {"how": how, **({"evidence": evidence} if evidence else {}), **(keyed or {})})

    def acknowledge_alert(self, alert_id: int, author: str = "", text: str = "", route: Route | None = None,
                          now: datetime | None = None) -> dict[str, Any]:
        """open → acknowledged; anything else is an `InvalidTransition`."""
        now = now or datetime.now(UTC)
        with self._alert_tx() as cur:
            a = self._by_id(cur, alert_id)
            if a["state"] != OPEN:
                raise InvalidTransition(f"alert {alert_id} is {a['state']}: only an open alert can be acknowledged")
            self._x(cur, f"UPDATE alerts SET state = '{ACKNOWLEDGED}', acked_at = ?, updated_at = ? WHERE id = ?",
                    [now, now, alert_id])
            self._event(cur, self._by_id(cur, alert_id), ACKED, now, now, route, author, text)
        return self.alert(alert_id)  # type: ignore[return-value]

    def resolve_alert(self, alert_id: int, author: str = "", text: str = "", route: Route | None = None,
                      now: datetime | None = None) -> dict[str, Any]:
        """open or acknowledged → resolved, by hand."""
        now = now or datetime.now(UTC)
        with self._alert_tx() as cur:
            a = self._by_id(cur, alert_id)
            if a["state"] == RESOLVED:
                raise InvalidTransition(f"alert {alert_id} is already resolved")
            self._resolve(cur, a, now, now, route, author, text, "manual", None)
        return self.alert(alert_id)  # type: ignore[return-value]

    def comment_alert(self, alert_id: int, author: str, text: str, now: datetime | None = None) -> dict[str, Any]:
        """A note in the alert's history, whatever its state (comments are not notified)."""
        now = now or datetime.now(UTC)
        with self._alert_tx() as cur:
            a = self._by_id(cur, alert_id)
            self._event(cur, a, COMMENTED, now, now, None, author, text)
        return self.alert(alert_id)  # type: ignore[return-value]

    # reading -----------------------------------------------------------------------------------------
    def alerts(self, *, states: tuple[str, ...] = (), rule: str | None = None, zone: str | None = None,
               device: str | None = None, start: datetime | None = None, end: datetime | None = None,
               limit: int = 100, offset: int = 0, rule_prefix: str | None = None) -> list[dict[str, Any]]:
        """Open alerts first, then acknowledged, then resolved; newest first within each state. `start`/`end`
        select alerts opened in [start, end); `rule_prefix` those whose rule starts with it (`health.`)."""
        cond, params = where(("state IN (?)", tuple(states)), ("rule = ?", rule), ("zone = ?", zone),
                             ("rule LIKE ?", f"{rule_prefix}%" if rule_prefix else None),
                             ("subject = ? AND subject_kind = 'device'", device), ("opened_at >= ?", start),
                             ("opened_at < ?", end))
        rows = self._rows(self._q(f"SELECT {ALERT_COLS} FROM alerts WHERE {cond} "
                                  f"ORDER BY {_STATE_ORDER}, opened_at DESC, id DESC LIMIT ? OFFSET ?"),
                          [*params, limit, offset])
        return [alert_out(r) for r in rows]

    def stale_alerts(self) -> int:
        """How many open or acknowledged alerts are stale (their device silent): a count, no row read."""
        rows = self._rows(self._q("SELECT count(*) AS n FROM alerts WHERE state IN (?, ?) "
                                  "AND stale_since IS NOT NULL"), ["open", "acknowledged"])
        return int(rows[0]["n"])

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        """One alert with its history (`events`, oldest first)."""
        rows = self._rows(self._q(f"SELECT {ALERT_COLS} FROM alerts WHERE id = ?"), [alert_id])
        if not rows:
            return None
        a = alert_out(rows[0])
        events = self._rows(self._q("SELECT id, kind, time, recorded_at, author, text, data FROM alert_events "
                                    "WHERE alert_id = ? ORDER BY id"), [alert_id])
        a["events"] = [{**{k: _utc(v) for k, v in e.items()}, "data": _load(e["data"]) or {}} for e in events]
        return a

    def alert_texts(self, alert_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The keyed text (`AlertChange.text`) each alert was opened with, for rendering it in another language;
        alerts opened without one are left out."""
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(alert_ids), 1000):
            ids = alert_ids[i:i + 1000]
            marks = ", ".join("?" for _ in ids)
            for r in self._rows(self._q(f"SELECT alert_id, data FROM alert_events WHERE kind = '{OPENED}' AND "
                                        f"alert_id IN ({marks})"), ids):
                text = (_load(r["data"]) or {}).get("text")
                if isinstance(text, dict):
                    out[r["alert_id"]] = text
        return out

    # outbox ------------------------------------------------------------------------------------------
    def notifications(self, *, status: str | None = None, alert_id: int | None = None, limit: int = 100,
                      offset: int = 0) -> list[dict[str, Any]]:
        """The outbox, newest first, with each row's payload."""
        cond, params = where(("status = ?", status), ("alert_id = ?", alert_id))
        rows = self._rows(self._q(
            "SELECT id, alert_id, event_id, event, notifier, status, attempts, created_at, next_at, delivered_at, "
            f"last_error, payload FROM notifications WHERE {cond} ORDER BY id DESC "
            "LIMIT ? OFFSET ?"), [*params, limit, offset])
        return [{**{k: _utc(v) for k, v in r.items()}, "payload": _load(r["payload"])} for r in rows]

    def claim_notifications(self, limit: int = 50, lease_s: float = 60.0,
                            now: datetime | None = None) -> list[dict[str, Any]]:
        """Pending notifications that are due, each counted as one more attempt and leased for `lease_s` (a
        worker that dies mid-delivery leaves them to be retried after the lease, never lost). Only the oldest
        pending event of an alert for a notifier is due: a receiver gets one alert's events in the order they
        happened ("resolved" waits while "opened" is being retried), whatever the retries and the rounds."""
        now = now or datetime.now(UTC)
        cols = "id, alert_id, event_id, event, notifier, attempts, payload"
        with self._alert_tx() as cur:
            skip = f"{self._lock_rows} SKIP LOCKED" if self._lock_rows else ""
            rows = self._x(cur, f"SELECT {cols} FROM notifications n WHERE status = '{PENDING}' AND next_at <= ? "
                                f"AND NOT EXISTS (SELECT 1 FROM notifications p WHERE p.alert_id = n.alert_id "
                                f"AND p.notifier = n.notifier AND p.status = '{PENDING}' AND p.id < n.id) "
                                f"ORDER BY next_at, id LIMIT ?{skip}", [now, limit]).fetchall()
            if not rows:
                return []
            ids = [r[0] for r in rows]
            marks = ", ".join("?" for _ in ids)
            self._x(cur, f"UPDATE notifications SET attempts = attempts + 1, next_at = ? WHERE id IN ({marks})",
                    [now + timedelta(seconds=lease_s), *ids])
        out = []
        for r in rows:
            d = dict(zip([c.strip() for c in cols.split(",")], r, strict=True))
            d["attempts"] += 1
            d["payload"] = _load(d["payload"])
            out.append(d)
        return out

    def notification_delivered(self, notification_id: int, now: datetime | None = None) -> None:
        with self._alert_tx() as cur:
            self._x(cur, f"UPDATE notifications SET status = '{DELIVERED}', delivered_at = ?, last_error = NULL "
                         "WHERE id = ?", [now or datetime.now(UTC), notification_id])

    def notification_failed(self, notification_id: int, error: str, retry_at: datetime | None) -> None:
        """A failed attempt: try again at `retry_at`, or (None) give up: the row stays, as dead."""
        with self._alert_tx() as cur:
            if retry_at is None:
                self._x(cur, f"UPDATE notifications SET status = '{DEAD}', last_error = ? WHERE id = ?",
                        [error[:2000], notification_id])
            else:
                self._x(cur, "UPDATE notifications SET next_at = ?, last_error = ? WHERE id = ?",
                        [retry_at, error[:2000], notification_id])


def notification_payload(alert: dict[str, Any], event_id: int, kind: str, at: datetime, author: str, text: str,
                         data: dict[str, Any]) -> dict[str, Any]:
    """What every notifier sends: the event and the alert as it is after it (self-contained, so that a delivery
    days later still says what happened then)."""
    a = alert_out(alert)
    a.pop("last_evidence", None)
    a.pop("updated_at", None)
    return {"event": kind, "event_id": event_id, "at": _utc(at), "author": author, "text": text, "data": data,
            "alert": a}
