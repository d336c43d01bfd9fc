"""Connections to Tandem's PostgreSQL.

Two kinds of login:
- the control login (`database.dsn`, or the embedded server's superuser): runs the
  migrator, owns the control schema, creates tenant roles and is a member of them;
- a tenant login (`<cluster>_t_<slug>`), used by that tenant's worker, which can
  reach its own schema and nothing else. Its password is derived from the master key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import Any, AsyncIterator

import asyncpg

from appliance.config import Config
from appliance.errors import DatabaseUnavailable
from appliance.keys import MasterKey

log = logging.getLogger(__name__)

MANAGED_SUPERUSER = "tandem"
MANAGED_DATABASE = "tandem"

# Errors that mean "the server is not there (yet)", as opposed to a wrong query.
UNREACHABLE = (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError,
               asyncpg.TooManyConnectionsError, asyncpg.ConnectionDoesNotExistError)


def connect_args(config: Config, key: MasterKey, *, role: str | None = None,
                 application_name: str = "tandem") -> dict:
    """Keyword arguments for asyncpg.connect / create_pool.

    With `role`, log in as that tenant role (its derived password); otherwise as the
    control login. Explicit user/password take precedence over the DSN's.
    """
    db = config.database
    if db.managed:
        args = {"host": str(config.socket_dir), "port": db.managed_port, "database": MANAGED_DATABASE,
                "user": MANAGED_SUPERUSER, "password": key.role_password(MANAGED_SUPERUSER)}
    else:
        args = {"dsn": db.dsn}
    if role is not None:
        args["user"] = role
        args["password"] = key.role_password(role)
    args["timeout"] = db.connect_timeout_seconds
    args["server_settings"] = {"application_name": application_name[:63]}
    return args


async def connect(config: Config, key: MasterKey, *, role: str | None = None,
                  application_name: str = "tandem") -> asyncpg.Connection:
    """One connection; raises DatabaseUnavailable when the server cannot be reached."""
    try:
        return await asyncpg.connect(**connect_args(config, key, role=role, application_name=application_name))
    except UNREACHABLE as exc:
        raise DatabaseUnavailable(f"database unreachable ({describe_target(config)}): {exc}") from exc


async def _transaction_only(_conn: asyncpg.Connection) -> None:
    """Pool release for code that keeps no session state: asyncpg has already rolled back an
    open transaction and dropped listeners; the default reset query is not sent."""


async def create_pool(config: Config, key: MasterKey, *, role: str | None = None, min_size: int = 1,
                      max_size: int | None = None, application_name: str = "tandem",
                      session_state: bool = True) -> asyncpg.Pool:
    """A pool of `role`'s (or the control login's) connections.

    `session_state=False` promises that no user of the pool leaves state on a connection beyond
    a transaction: no plain SET (only SET LOCAL), LISTEN, session advisory lock, prepared
    statement by name or cursor WITH HOLD. The pool then skips asyncpg's reset query (advisory
    unlock, CLOSE ALL, UNLISTEN, RESET ALL) on every release: one round trip to the server saved
    per acquire, which for the sync engine's short statements was about a third of them."""
    try:
        return await asyncpg.create_pool(**connect_args(config, key, role=role, application_name=application_name),
                                         min_size=min_size, max_size=max_size or config.database.pool_size,
                                         reset=None if session_state else _transaction_only)
    except UNREACHABLE as exc:
        raise DatabaseUnavailable(f"database unreachable ({describe_target(config)}): {exc}") from exc


def describe_target(config: Config) -> str:
    """Where the database is, without credentials, for messages."""
    if config.database.managed:
        return f"embedded PostgreSQL, socket in {config.socket_dir}"
    from appliance.config import redacted
    return redacted(config)["database"]["dsn"]


@contextlib.asynccontextmanager
async def control(config: Config, key: MasterKey, application_name: str = "tandem") -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(config, key, application_name=application_name)
    try:
        yield conn
    finally:
        await conn.close()


async def ensure_managed_database(config: Config, key: MasterKey) -> None:
    """Create the `tandem` database in a freshly initialised embedded server."""
    args = connect_args(config, key)
    args["database"] = "postgres"
    conn = await asyncpg.connect(**args)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", MANAGED_DATABASE)
        if not exists:
            # CREATE DATABASE takes no parameters; the name is our own constant.
            await conn.execute(f'CREATE DATABASE "{MANAGED_DATABASE}" OWNER "{MANAGED_SUPERUSER}"')
            log.info("created database %s in the embedded PostgreSQL", MANAGED_DATABASE)
    finally:
        await conn.close()


def embedded_server(config: Config, key: MasterKey, *, os_user: str | None = None):
    """The EmbeddedPostgres for this config (not started)."""
    from appliance.pgembed import EmbeddedPostgres
    return EmbeddedPostgres(config.pg_dir, config.socket_dir, superuser=MANAGED_SUPERUSER,
                            password=key.role_password(MANAGED_SUPERUSER),
                            bin_dir=config.database.managed_bin_dir, port=config.database.managed_port,
                            os_user=os_user)


@contextlib.contextmanager
def database_available(config: Config, key: MasterKey):
    """For CLI commands: make sure the database can be reached for the length of the block.

    External DSN: nothing to do. Embedded: if the appliance is running, its server's
    socket is there and we use it; otherwise start the server for this command and
    stop it afterwards. Synchronous: call before starting an event loop.
    """
    if not config.database.managed:
        yield
        return
    server = embedded_server(config, key, os_user=config.security.run_as or None)
    if server.socket_path.exists() and _postmaster_ready(server):
        yield
        return
    # The command's own output stays readable; the server's goes to its log file.
    server.log_file = config.paths.data_dir / "postgresql.log"
    server.start()
    try:
        asyncio.run(ensure_managed_database(config, key))
        yield
    finally:
        server.stop()


def _postmaster_ready(server) -> bool:
    try:
        lines = (server.pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        os.kill(pid, 0)
        return len(lines) >= 8 and lines[7].strip() == "ready"
    except (OSError, ValueError, IndexError):
        return False


def jsonb(value: Any) -> Any:
    """A json or jsonb value as asyncpg returns it without a codec (text), or already decoded."""
    return json.loads(value) if isinstance(value, str) else value
