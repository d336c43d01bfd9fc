"""Tandem's own schema migrator: plain .sql files, no ORM.

Files: `sql/control/NNNN_name.sql` (the control schema `tandem`) and
`sql/tenant/NNNN_name.sql` (every tenant schema `t_<slug>`), applied in name order.
History: `tandem.schema_migrations` and `<tenant schema>.schema_migrations`
(name, sha256 checksum, applied_at); the tenant one is owned by the tenant role.

Each file runs in its own transaction under `SET LOCAL search_path TO <schema>`
(tenant files also under `SET LOCAL ROLE <tenant role>`, so every tenant object
is owned by that role) and is recorded in the same transaction: a file is either
applied and recorded, or neither. (A new tenant's files run as savepoints of the
transaction that creates the tenant: see apply_tenant.)

The history must agree with the binary. Refused with MigrationError, naming the
schema and the file: an applied file whose checksum differs (edited history), an
applied name this binary does not have (newer database: upgrade tandem; otherwise
a missing file). Services refuse to run while anything is pending
(`ensure_current`, MigrationsPending naming `tandem migrate`).

Concurrency: a run holds one session-level advisory lock (MIGRATION_LOCK_KEY) on a
dedicated connection from start to end; a second `tandem migrate`, and the
migrations of a tenant being created, wait for it and then find nothing to do.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

import asyncpg

from appliance import db, resources
from appliance.errors import MigrationError, MigrationsPending
from appliance.identifiers import CONTROL_SCHEMA, quote_ident

log = logging.getLogger(__name__)

# Session-level advisory lock that serialises migration runs in one database:
# b"tandmigr" as a positive int64, far from the small keys (tenant ids) other locks use.
MIGRATION_LOCK_KEY = int.from_bytes(b"tandmigr", "big")

HISTORY = "schema_migrations"
# The history table itself is the one thing no migration can create (it records them).
_HISTORY_DDL = ("CREATE TABLE IF NOT EXISTS {table} (name text PRIMARY KEY, checksum text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())")
_FILE = re.compile(r"^[0-9]{4}_[a-z0-9_]+\.sql$")
# Tenant schemas whose history is read in one statement by status().
_HISTORY_BATCH = 500


@dataclass(frozen=True)
class Migration:
    name: str        # file name without .sql, e.g. "0001_control"
    path: Path
    checksum: str    # sha256 hex of the file's bytes
    sql: str


def load_migrations(kind: str, migrations_dir: Path | None = None) -> list[Migration]:
    """The migrations this binary has for `kind` ("control" or "tenant"), in order.

    `migrations_dir` holds control/ and tenant/ (default: the bundled sql/). A .sql
    file with a malformed name, or two files with one number, is a packaging error
    (MigrationError): better refuse than apply in a surprising order.
    """
    directory = Path(migrations_dir or resources.sql_dir()) / kind
    if not directory.is_dir():
        raise MigrationError(f"no {kind} migrations: {directory} is not a directory")
    found: list[Migration] = []
    numbers: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        if not _FILE.match(path.name):
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql (digits, then a-z, 0-9, _)")
        number = path.name[:4]
        if number in numbers:
            raise MigrationError(f"{directory}: {numbers[number]} and {path.name} share the number {number}")
        numbers[number] = path.name
        data = path.read_bytes()
        found.append(Migration(path.stem, path, hashlib.sha256(data).hexdigest(), data.decode("utf-8")))
    if not found:
        raise MigrationError(f"no {kind} migrations in {directory}")
    return found


def _pending(schema: str, migrations: list[Migration], applied: dict[str, str]) -> list[str]:
    """Names not yet applied to `schema`; raises MigrationError when history and binary disagree."""
    known = {m.name: m for m in migrations}
    unknown = sorted(name for name in applied if name not in known)
    if unknown:
        newest = migrations[-1].name
        if unknown[-1] > newest:
            raise MigrationError(f"schema {schema}: database is newer than this binary (applied {unknown[-1]}; "
                                 f"this binary knows up to {newest}): upgrade tandem")
        raise MigrationError(f"schema {schema}: applied migration {unknown[0]} is missing from this binary "
                             f"(no {unknown[0]}.sql); install the tandem version that applied it")
    for name, checksum in applied.items():
        if known[name].checksum != checksum:
            raise MigrationError(f"schema {schema}: migration {name}.sql was edited after it was applied (its "
                                 "checksum differs from the recorded one); restore the original file and put "
                                 "the change in a new migration")
    return [m.name for m in migrations if m.name not in applied]


def _history_table(schema: str) -> str:
    return f"{quote_ident(schema)}.{HISTORY}"


async def _read_history(conn: asyncpg.Connection, schema: str) -> dict[str, str]:
    """name -> checksum recorded in `schema`; empty when it has no history table yet."""
    table = _history_table(schema)
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return {}
    return {r["name"]: r["checksum"] for r in await conn.fetch(f"SELECT name, checksum FROM {table}")}


@dataclass
class MigrationStatus:
    """What is pending where. Built by status(); cheap enough for /-/ready."""

    control_pending: list[str] = field(default_factory=list)
    tenant_pending: dict[str, list[str]] = field(default_factory=dict)  # schema -> names; only non-empty
    tenant_schemas: int = 0  # tenant schemas checked

    @property
    def current(self) -> bool:
        return not self.control_pending and not self.tenant_pending

    @property
    def count(self) -> int:
        return len(self.control_pending) + sum(len(names) for names in self.tenant_pending.values())

    def describe(self) -> str:
        if self.current:
            return f"migrations current (schema {CONTROL_SCHEMA} and {_plural(self.tenant_schemas, 'tenant schema')})"
        schemas = len(self.tenant_pending) + (1 if self.control_pending else 0)
        return f"{_plural(self.count, 'migration')} pending in {_plural(schemas, 'schema')}: run `tandem migrate`"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class _TenantTarget:
    slug: str
    schema: str
    role: str
    has_history: bool


async def _tenant_targets(conn: asyncpg.Connection) -> list[_TenantTarget]:
    """Tenants whose schema is migrated: active and disabled ones (a deleting one is going away)."""
    if await conn.fetchval("SELECT to_regclass('tandem.tenants')") is None:
        return []
    rows = await conn.fetch(
        "SELECT slug, schema_name, role_name, "
        "       to_regclass(quote_ident(schema_name) || '.' || $1) IS NOT NULL AS has_history "
        "FROM tandem.tenants WHERE state IN ('active', 'disabled') ORDER BY schema_name", HISTORY)
    return [_TenantTarget(r["slug"], r["schema_name"], r["role_name"], r["has_history"]) for r in rows]


async def _tenant_histories(conn: asyncpg.Connection, schemas: list[str]) -> dict[str, dict[str, str]]:
    """History of many tenant schemas in a few statements (UNION ALL in batches)."""
    histories: dict[str, dict[str, str]] = {schema: {} for schema in schemas}
    for start in range(0, len(schemas), _HISTORY_BATCH):
        batch = schemas[start:start + _HISTORY_BATCH]
        query = " UNION ALL ".join(f"SELECT ${i + 1}::text AS schema, name, checksum FROM {_history_table(s)}"
                                   for i, s in enumerate(batch))
        for row in await conn.fetch(query, *batch):
            histories[row["schema"]][row["name"]] = row["checksum"]
    return histories


async def _status(conn: asyncpg.Connection, control: list[Migration], tenant: list[Migration]
                  ) -> tuple[MigrationStatus, list[_TenantTarget]]:
    result = MigrationStatus()
    result.control_pending = _pending(CONTROL_SCHEMA, control, await _read_history(conn, CONTROL_SCHEMA))
    targets = await _tenant_targets(conn)
    result.tenant_schemas = len(targets)
    histories = await _tenant_histories(conn, [t.schema for t in targets if t.has_history])
    for target in targets:
        names = _pending(target.schema, tenant, histories.get(target.schema, {}))
        if names:
            result.tenant_pending[target.schema] = names
    return result, targets


async def status(conn: asyncpg.Connection, migrations_dir: Path | None = None) -> MigrationStatus:
    """Pending migrations, from the control login. Works on an empty database (all pending).

    A handful of queries whatever the number of tenants. Raises MigrationError
    when a schema's history is edited or newer than this binary.
    """
    result, _ = await _status(conn, load_migrations("control", migrations_dir),
                              load_migrations("tenant", migrations_dir))
    return result


async def ensure_current(conn: asyncpg.Connection, migrations_dir: Path | None = None) -> None:
    """For services and CLI commands: refuse to work on a database that is not current.

    Raises MigrationsPending (naming `tandem migrate`) or MigrationError.
    """
    result = await status(conn, migrations_dir)
    if not result.current:
        raise MigrationsPending(result.describe())


async def tenant_pending(conn: asyncpg.Connection, schema: str, migrations_dir: Path | None = None) -> list[str]:
    """Migrations pending in one tenant schema. Needs only read access to that schema,
    so a tenant worker logged in as its role can check itself at boot.
    Raises MigrationError on edited or newer history."""
    return _pending(schema, load_migrations("tenant", migrations_dir), await _read_history(conn, schema))


# -- applying ---------------------------------------------------------------------------------


def _failure(schema: str, migration: Migration, exc: asyncpg.PostgresError) -> MigrationError:
    """schema + file + PostgreSQL's own message (with the line, when it says where)."""
    where = ""
    position = getattr(exc, "position", None)
    if position and str(position).isdigit():
        where = f" (line {migration.sql.count(chr(10), 0, int(position) - 1) + 1})"
    message = f"schema {schema}: migration {migration.path.name} failed{where}: {exc}"
    detail = getattr(exc, "detail", None)
    if detail:
        message += f" ({detail})"
    return MigrationError(message)


async def _ensure_history(conn: asyncpg.Connection, schema: str, role: str | None) -> None:
    """Create `schema` (control only) and its history table, owned by `role` when given."""
    table = _history_table(schema)
    if await conn.fetchval("SELECT to_regclass($1)", table) is not None:
        return
    async with conn.transaction():
        if role is None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        else:
            await conn.execute(f"SET LOCAL ROLE {quote_ident(role)}")
        await conn.execute(_HISTORY_DDL.format(table=table))


async def _apply_file(conn: asyncpg.Connection, schema: str, role: str | None, migration: Migration) -> None:
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}")
            if role is not None:
                await conn.execute(f"SET LOCAL ROLE {quote_ident(role)}")
            # No arguments: the simple query protocol, so a file may hold many statements.
            await conn.execute(migration.sql)
            await conn.execute(f"INSERT INTO {_history_table(schema)} (name, checksum) VALUES ($1, $2)",
                               migration.name, migration.checksum)
    except asyncpg.PostgresError as exc:
        raise _failure(schema, migration, exc) from exc


async def _apply(conn: asyncpg.Connection, schema: str, role: str | None, migrations: list[Migration],
                 names: list[str], should_stop=lambda: False, slug: str | None = None) -> list[str]:
    """Apply `names` (pending, in order) to `schema`; returns what was applied.
    Stops before the next file once should_stop() is true."""
    if not names:
        return []
    extra = {"tenant": slug} if slug else {}
    try:
        await _ensure_history(conn, schema, role)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"schema {schema}: cannot create its {HISTORY} table: {exc}") from exc
    by_name = {m.name: m for m in migrations}
    done = []
    for name in names:
        if should_stop():
            break
        started = time.monotonic()
        await _apply_file(conn, schema, role, by_name[name])
        done.append(name)
        log.info("applied %s to schema %s (%.0f ms)", name, schema, (time.monotonic() - started) * 1000,
                 extra=extra)
    return done


async def _lock(conn: asyncpg.Connection) -> None:
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_KEY):
        log.info("another migration run holds the migration lock; waiting for it to finish")
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)


async def _unlock(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


@contextlib.asynccontextmanager
async def migration_lock(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Hold the migration lock on `conn` for the block (waiting for a running
    `tandem migrate`). Re-entrant on one connection. Take it before opening a
    transaction that calls apply_tenant: waiting for it while holding row locks on
    the control tables could deadlock with a control migration."""
    await _lock(conn)
    try:
        yield
    finally:
        await _unlock(conn)


async def apply_tenant(conn: asyncpg.Connection, schema: str, role: str,
                       migrations_dir: Path | None = None) -> list[str]:
    """Bring one tenant schema up to date, from the control login; returns the names
    applied. Raises MigrationError naming the schema and the file.

    Outside a transaction each file commits on its own. Inside one (tenant creation,
    so that a tenant appears fully migrated or not at all), each file is a savepoint
    of it and the caller must already hold migration_lock(conn). Either way it never
    races `tandem migrate`.
    """
    migrations = load_migrations("tenant", migrations_dir)
    async with migration_lock(conn):
        names = _pending(schema, migrations, await _read_history(conn, schema))
        done = await _apply(conn, schema, role, migrations, names)
        if conn.is_in_transaction():
            # SET LOCAL made in a savepoint outlives it: give the caller's
            # transaction back its own role and search_path.
            await conn.execute("SET LOCAL ROLE NONE")
            await conn.execute("SET LOCAL search_path TO DEFAULT")
        return done


@dataclass
class MigrationReport:
    """What a migrate() run applied (or, with dry_run, would apply), control schema first."""

    dry_run: bool
    applied: dict[str, list[str]] = field(default_factory=dict)  # schema -> names, only non-empty
    tenant_schemas: int = 0
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return sum(len(names) for names in self.applied.values())

    def lines(self) -> list[str]:
        """For the CLI: one line per schema changed, then a summary; "nothing to do" when current."""
        if not self.applied:
            return [f"nothing to do: schema {CONTROL_SCHEMA} and "
                    f"{_plural(self.tenant_schemas, 'tenant schema')} are current"]
        verb = "would apply" if self.dry_run else "applied"
        # Tenant schemas finish in any order; print them sorted, after the control schema.
        order = sorted(self.applied, key=lambda schema: (schema != CONTROL_SCHEMA, schema))
        lines = [f"{verb} in {schema}: {', '.join(self.applied[schema])}" for schema in order]
        summary = f"{_plural(self.count, 'migration')} in {_plural(len(self.applied), 'schema')}"
        if self.dry_run:
            lines.append(f"dry run: {summary} pending; nothing was changed")
        else:
            lines.append(f"{summary} applied in {self.seconds:.1f} s")
        return lines


async def migrate(config, key, *, dry_run: bool = False, migrations_dir: Path | None = None) -> MigrationReport:
    """Apply everything pending: control first, then every tenant schema with
    `database.migrate_parallelism` connections. Opens its own connections.

    At the first failure no new file is started anywhere, and MigrationError names
    the schema, the file and PostgreSQL's message; what was applied stays applied.
    With dry_run, reports what would be applied and changes nothing (no lock).
    """
    started = time.monotonic()
    control = load_migrations("control", migrations_dir)
    tenant = load_migrations("tenant", migrations_dir)
    report = MigrationReport(dry_run=dry_run)
    if dry_run:
        async with db.control(config, key, application_name="tandem migrate --dry-run") as conn:
            result, _ = await _status(conn, control, tenant)
        if result.control_pending:
            report.applied[CONTROL_SCHEMA] = result.control_pending
        report.applied.update(result.tenant_pending)
        report.tenant_schemas = result.tenant_schemas
        report.seconds = time.monotonic() - started
        return report

    lock_conn = await db.connect(config, key, application_name="tandem migrate (lock)")
    try:
        await _lock(lock_conn)
        conn = await db.connect(config, key, application_name="tandem migrate")
        try:
            names = _pending(CONTROL_SCHEMA, control, await _read_history(conn, CONTROL_SCHEMA))
            done = await _apply(conn, CONTROL_SCHEMA, None, control, names)
            if done:
                report.applied[CONTROL_SCHEMA] = done
            result, targets = await _status(conn, control, tenant)
        finally:
            await conn.close()
        report.tenant_schemas = len(targets)
        work = [(t, result.tenant_pending[t.schema]) for t in targets if t.schema in result.tenant_pending]
        if work:
            await _migrate_tenants(config, key, tenant, work, report)
        await _unlock(lock_conn)
    finally:
        await lock_conn.close()  # also frees the lock if unlocking was not reached
    report.seconds = time.monotonic() - started
    log.info("migration run done: %d applied in %d schemas (%.1f s)", report.count, len(report.applied),
             report.seconds)
    return report


async def _migrate_tenants(config, key, migrations: list[Migration],
                           work: list[tuple[_TenantTarget, list[str]]], report: MigrationReport) -> None:
    queue = collections.deque(work)
    failures: list[Exception] = []
    stop = lambda: bool(failures)  # noqa: E731 - read by _apply between files
    width = min(config.database.migrate_parallelism, len(work))
    log.info("migrating %d tenant schemas, %d at a time", len(work), width)
    conns = await asyncio.gather(*(db.connect(config, key, application_name="tandem migrate")
                                   for _ in range(width)), return_exceptions=True)
    try:
        for conn in conns:
            if isinstance(conn, BaseException):
                raise conn

        async def worker(conn: asyncpg.Connection) -> None:
            while queue and not failures:
                target, names = queue.popleft()
                try:
                    done = await _apply(conn, target.schema, target.role, migrations, names, stop, target.slug)
                except MigrationError as exc:
                    log.error("%s", exc, extra={"tenant": target.slug})
                    failures.append(exc)
                    return
                except Exception as exc:  # e.g. the connection was lost: stop the others too
                    log.error("migrating schema %s: %s", target.schema, exc, extra={"tenant": target.slug})
                    failures.append(exc)
                    return
                if done:
                    report.applied[target.schema] = done

        await asyncio.gather(*(worker(conn) for conn in conns))
    finally:
        await asyncio.gather(*(c.close() for c in conns if isinstance(c, asyncpg.Connection)),
                             return_exceptions=True)
    if failures and not isinstance(failures[0], MigrationError):
        raise failures[0]
    if failures:
        left = len(queue)
        raise MigrationError(f"{failures[0]}" + (f"; stopped before {_plural(left, 'more tenant schema')}"
                                                 if left else ""))
