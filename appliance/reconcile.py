"""The supervisor's conversations with the control schema, each one short burst.

The supervisor has no event loop of its own (it forks, and a fork must not copy a
running loop), so each exchange is one `burst()`: `asyncio.run()` of a coroutine
that connects, does its few queries and closes, bounded by a timeout. After it
returns no loop, connection or thread is left.

- `prepare()`: at start, once the database answers: migrate (database.migrate_on_start),
  read the migration status, and register the node.
- `exchange()`: every supervisor.reconcile_seconds: the tenants that should have a
  worker, and this node's report of every worker it runs.
- `report_stopped()`: at shutdown, every worker stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Awaitable, Callable, TypeVar

import asyncpg

from appliance import __version__, db, migrator, nodes, tenants
from appliance.config import Config
from appliance.errors import DatabaseUnavailable
from appliance.keys import MasterKey

log = logging.getLogger(__name__)

T = TypeVar("T")
APPLICATION_NAME = "tandem supervisor"
KEEPALIVE_SECONDS = 1.0
# Exceptions that mean "the database is away right now", as opposed to a bug.
DATABASE_AWAY = (DatabaseUnavailable, OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def burst(coro: Awaitable[T], timeout: float, keepalive: Callable[[], None] | None = None) -> T:
    """Run `coro` in a fresh event loop, at most `timeout` seconds (asyncio.TimeoutError).

    `keepalive` is called every KEEPALIVE_SECONDS meanwhile: the supervisor's loop is not
    turning, and systemd's watchdog must not take a long migration for a hang.
    """
    return asyncio.run(_bounded(coro, timeout, keepalive))


async def _bounded(coro: Awaitable[T], timeout: float, keepalive: Callable[[], None] | None) -> T:
    async def tick() -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            keepalive()

    ticker = asyncio.create_task(tick()) if keepalive is not None else None
    try:
        return await asyncio.wait_for(coro, timeout)
    finally:
        if ticker is not None:
            ticker.cancel()


async def prepare(config: Config, key: MasterKey) -> migrator.MigrationStatus:
    """Migrate when configured to, register the node, and say whether the schema is current.

    Raises DatabaseUnavailable (and the other DATABASE_AWAY errors) while the server
    cannot be used, MigrationError when its history disagrees with this binary.
    """
    async with db.control(config, key, application_name=APPLICATION_NAME) as conn:
        await conn.execute("SELECT 1")
    if config.database.migrate_on_start:
        report = await migrator.migrate(config, key)
        for line in report.lines():
            log.info("migrations: %s", line)
    async with db.control(config, key, application_name=APPLICATION_NAME) as conn:
        status = await migrator.status(conn)
        if not status.control_pending:  # else there is no tandem.nodes yet; exchange() registers later
            await _register(conn, config)
    return status


async def exchange(config: Config, key: MasterKey, reports: list[nodes.WorkerReport], check_schema: bool
                   ) -> tuple[list[tenants.Tenant], migrator.MigrationStatus | None]:
    """Report `reports` for this node; return the active tenants and, when `check_schema`,
    the migration status (None otherwise). While the control schema itself is not
    migrated there is nothing to read or report: ([], status)."""
    async with db.control(config, key, application_name=APPLICATION_NAME) as conn:
        status = await migrator.status(conn) if check_schema else None
        if status is not None and status.control_pending:
            return [], status  # the control tables are not there yet
        active = await tenants.active_tenants(conn)
        if not await nodes.heartbeat(conn, config.cluster.node_name, reports):
            # Our node row was removed (an admin tidying up): announce ourselves again.
            await _register(conn, config)
            await nodes.heartbeat(conn, config.cluster.node_name, reports)
    return active, status


async def report_stopped(config: Config, key: MasterKey, reports: list[nodes.WorkerReport]) -> None:
    async with db.control(config, key, application_name=APPLICATION_NAME) as conn:
        await nodes.heartbeat(conn, config.cluster.node_name, reports)


async def _register(conn: asyncpg.Connection, config: Config) -> None:
    await nodes.register_node(conn, config.cluster.node_name, socket.gethostname(), os.getpid(), __version__)


def describe_problem(exc: BaseException, config: Config) -> str:
    """One line about a failed database burst, without credentials."""
    if isinstance(exc, DatabaseUnavailable):
        return str(exc)
    if isinstance(exc, asyncio.TimeoutError):
        return f"database did not answer in time ({db.describe_target(config)})"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"database problem ({db.describe_target(config)}): {text}"
