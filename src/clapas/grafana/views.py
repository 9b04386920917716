"""The read-only role Grafana uses, and the views it may read: open and restricted data only (§8.9).

Why views and not grants on tables: the store's tables hold every class (a household meter's readings sit beside
a river gauge's), and PostgreSQL grants whole tables. The views filter rows with the charter's classes, computed in
SQL from the same `Classifier` as the API (a device's class is the most restrictive of its registry class and its
kind's class, a dwelling's meter personal, a non-residential one restricted; a quantity may raise it), so what
Grafana sees is what a caller with `open:read` and `restricted:read` sees. They are `security_barrier` views (a
function of the caller's cannot see rows the filter drops), owned by the store's owner; the role gets USAGE on
their schema and SELECT on them, nothing else, and its sessions are read-only.

The classes are the city's `[charter]` settings at the time of `--create-role`: after a change of `[charter.kinds]`
or `[charter.quantities]`, run it again (every statement is idempotent: CREATE OR REPLACE, grants).
Table names are those of the store's schema as the owner sees them when the views are made (a view binds to its
tables then). Rollup buckets not rolled up yet are read from the raw rows, as the store's own history queries do
(`PostgresStore.series`), so the views are exact at any time.
"""

from __future__ import annotations

import re
from typing import Any

from clapas.charter import OPEN, PERSONAL, RESTRICTED
from clapas.charter.classes import HABITATION, NON_RESIDENTIAL, UNKNOWN_KIND_CLASS, Classifier
from clapas.model import QUANTITIES
from clapas.store import schema

SCHEMA = "clapas_grafana"  # the views' schema: all the role may read
DEFAULT_ROLE = "clapas_grafana"
_SPAN = {"1h": "1 hour", "1d": "26 hours"}  # a local day is 23 to 25 hours long (as `PostgresStore`)
# design: a dashboard's query that runs longer is a mistake (a raw scan); the role's sessions stop it
STATEMENT_TIMEOUT_S = 30
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# The columns of each view (what Grafana's panels may name).
DEVICE_COLUMNS = ("id", "eui", "name", "kind", "zone", "lat", "lon", "class", "expected_interval_s", "first_seen",
                  "last_seen", "last_rssi", "last_snr")
READING_COLUMNS = ("time", "eui", "name", "kind", "zone", "quantity", "unit", "mean", "min", "max", "sum", "count",
                   "class")


class RoleError(ValueError):
    """A role name PostgreSQL would need quoted, or a store that is not PostgreSQL."""


def check_role(name: str) -> str:
    if not _NAME.match(name):
        raise RoleError(f"role {name!r}: lowercase letters, digits and _ only (at most 63), not starting with a digit")
    return name


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(col: str, values: list[str], negate: bool = False) -> str:
    """`col IN (…)`; with no values, what an empty list means (`x NOT IN (NULL)` would be NULL: no row)."""
    if not values:
        return "TRUE" if negate else "FALSE"
    return f"{col} {'NOT IN' if negate else 'IN'} (" + ", ".join(_lit(v) for v in sorted(values)) + ")"


def kind_class_sql(classifier: Classifier, kind: str = "d.kind", premises: str = "d.premises_use") -> str:
    """`Classifier.kind(kind, premises_use)` in SQL: the `.non_residential` entry for premises named and not a
    dwelling, else the kind's entry, else restricted (an empty kind is `generic`)."""
    k = f"coalesce(nullif({kind}, ''), 'generic')"
    named = f"coalesce({premises}, '') NOT IN ('', {_lit(HABITATION)})"
    whens = []
    for key, cls in sorted(classifier.kinds.items()):
        base, _, qualifier = key.partition(".")
        if qualifier == NON_RESIDENTIAL:
            whens.append(f"WHEN {named} AND {k} = {_lit(base)} THEN {_lit(cls)}")
    whens += [f"WHEN {k} = {_lit(key)} THEN {_lit(cls)}" for key, cls in sorted(classifier.kinds.items())
              if "." not in key]
    return f"CASE {' '.join(whens)} ELSE {_lit(UNKNOWN_KIND_CLASS)} END"


def registry_class_sql(col: str = "d.data_class") -> str:
    """`_registry_class`: empty is open (nothing said), a class is itself, anything else personal."""
    return (f"CASE WHEN coalesce({col}, '') IN ('', {_lit(OPEN)}) THEN {_lit(OPEN)} WHEN {col} = {_lit(RESTRICTED)} "
            f"THEN {_lit(RESTRICTED)} ELSE {_lit(PERSONAL)} END")


def most_restrictive_sql(a: str, b: str) -> str:
    return (f"CASE WHEN {_lit(PERSONAL)} IN ({a}, {b}) THEN {_lit(PERSONAL)} WHEN {_lit(RESTRICTED)} IN ({a}, {b}) "
            f"THEN {_lit(RESTRICTED)} ELSE {_lit(OPEN)} END")


def devices_view(classifier: Classifier) -> str:
    """The registry's open and restricted devices, with their class; no subscriber, premises use, tags."""
    cls = most_restrictive_sql(registry_class_sql(), kind_class_sql(classifier))
    cols = ", ".join(f"{cls} AS class" if c == "class" else f"d.{c}" for c in DEVICE_COLUMNS)
    return (f"CREATE OR REPLACE VIEW {SCHEMA}.devices WITH (security_barrier) AS SELECT * FROM ("
            f"SELECT {cols} FROM devices d) v WHERE v.class IN ({_lit(OPEN)}, {_lit(RESTRICTED)})")


def readings_view(classifier: Classifier, resolution: str, timezone: str) -> str:
    """One rollup (`1h`: UTC hours, `1d`: the city's days) of the visible devices, pending buckets from the raw
    rows; quantities classed personal left out, a quantity's class raising its rows'.

    Each branch of the UNION joins the devices and quantities itself: then a panel's filters (kind, quantity,
    time) reach the rollup's primary key (device, quantity, bucket) through a nested loop over the few devices of
    a kind, where one join above the UNION made PostgreSQL scan the whole rollup (2–4 s a panel at 15 M rows)."""
    personal = [q.key for q in QUANTITIES if classifier.quantity(q.key) == PERSONAL]
    restricted = [q.key for q in QUANTITIES if classifier.quantity(q.key) == RESTRICTED]
    qcls = f"CASE WHEN {_in('q.key', restricted)} THEN {_lit(RESTRICTED)} ELSE {_lit(OPEN)} END"
    bucket = schema.bucket_sql(resolution, timezone, "o.time")
    pending = f"SELECT bucket FROM rollup_pending WHERE resolution = {_lit(resolution)}"
    cols = ("b.bucket AS time, d.eui, d.name, d.kind, d.zone, q.key AS quantity, q.unit, b.sum / b.count AS mean, "
            f"b.min, b.max, b.sum, b.count, {most_restrictive_sql('d.class', qcls)} AS class")
    joins = (f"JOIN {SCHEMA}.devices d ON d.id = b.device_id JOIN quantities q ON q.id = b.quantity_id "
             f"WHERE {_in('q.key', personal, negate=True)}")
    raw = ("(SELECT o.device_id, o.quantity_id, p.bucket, count(*) AS count, sum(o.value) AS sum, "
           f"min(o.value) AS min, max(o.value) AS max FROM ({pending}) p JOIN observations o ON o.time >= p.bucket "
           f"AND o.time < p.bucket + interval '{_SPAN[resolution]}' AND {bucket} = p.bucket GROUP BY 1, 2, 3)")
    return (f"CREATE OR REPLACE VIEW {SCHEMA}.readings_{resolution} WITH (security_barrier) AS "
            f"SELECT {cols} FROM rollup_{resolution} b {joins} AND b.bucket NOT IN ({pending}) "
            f"UNION ALL SELECT {cols} FROM {raw} b {joins}")


def zones_view() -> str:
    """The zones (open: districts, DMAs, parks, rooms), without their geometry."""
    return f"CREATE OR REPLACE VIEW {SCHEMA}.zones AS SELECT id, name, kind, parent FROM zones"


def view_statements(classifier: Classifier, timezone: str) -> list[str]:
    return [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}", devices_view(classifier),
            readings_view(classifier, "1h", timezone), readings_view(classifier, "1d", timezone), zones_view()]


def role_statements(role: str, database: str, password: str | None) -> list[str]:
    """The role (created if missing), its read-only sessions and its grants: the views' schema, nothing else."""
    check_role(role)
    stmts = [f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_lit(role)}) THEN "
             f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT; END IF; END $$",
             f"ALTER ROLE {role} SET default_transaction_read_only = on",
             f"ALTER ROLE {role} SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'",
             f"GRANT CONNECT ON DATABASE \"{database.replace(chr(34), '')}\" TO {role}",
             f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
             f"GRANT USAGE ON SCHEMA {SCHEMA} TO {role}",
             f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {role}"]
    if password:
        stmts.append(f"ALTER ROLE {role} PASSWORD {_lit(password)}")
    return stmts


def create_role(url: str, classifier: Classifier, timezone: str, role: str = DEFAULT_ROLE,
                password: str | None = None) -> dict[str, Any]:
    """Create or update the views and the role in the store at `url` (as its owner), in one transaction."""
    import psycopg

    if not url.startswith("postgres"):
        raise RoleError(f"Grafana reads PostgreSQL: the store is {url.split(':', 1)[0]} (set [store] to a "
                        "postgresql:// URL)")
    try:
        with psycopg.connect(url) as con:
            database = con.info.dbname
            with con.transaction(), con.cursor() as cur:
                # one provisioning at a time: two runs at once would race on CREATE ROLE
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('clapas grafana provision'))")
                for sql in [*view_statements(classifier, timezone), *role_statements(role, database, password)]:
                    cur.execute(sql)
    except psycopg.errors.InsufficientPrivilege as e:
        raise RoleError(f"the store's user may not do this ({str(e).strip()}): run --create-role as the owner of "
                        "the store's tables, with CREATEROLE") from None
    return {"role": role, "database": database, "schema": SCHEMA}
