"""What each node's supervisor reports: the node itself (`tandem.nodes`) and the
tenant workers it runs (`tandem.tenant_workers`), read by `tandem tenant list`,
the console and the supervisors of other nodes. The supervisor calls these from
its own short-lived event loop; the SQL lives here, not in the supervisor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

# tenant_workers.state accepts exactly these (CHECK in sql/control/0001_control.sql).
WORKER_STATES = ("starting", "running", "standby", "backoff", "failed", "stopping", "stopped")


@dataclass
class WorkerReport:
    tenant_id: int
    state: str                      # one of WORKER_STATES
    pid: int | None = None
    restarts: int = 0
    boot_failures: int = 0
    last_exit: str | None = None    # e.g. "exit 3 (boot failure)", "killed by SIGKILL (out of memory?)"
    reason: str | None = None       # why it is in this state, for the console
    started_at: datetime | None = None


async def register_node(conn: asyncpg.Connection, name: str, hostname: str, pid: int, version: str) -> None:
    """Announce (or re-announce, after a restart) node `name`; resets started_at and heartbeat_at."""
    await conn.execute(
        "INSERT INTO tandem.nodes (name, hostname, pid, version) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (name) DO UPDATE SET hostname = excluded.hostname, pid = excluded.pid, "
        "    version = excluded.version, started_at = now(), heartbeat_at = now()",
        name, hostname, pid, version)


# One statement, so one round trip however many workers: data-modifying CTEs run
# exactly once whether or not the final SELECT reads them. Reports of tenants
# deleted meanwhile are dropped (the foreign key would refuse them).
_HEARTBEAT = """
WITH beat AS (
    UPDATE tandem.nodes SET heartbeat_at = now() WHERE name = $1 RETURNING name
), reported AS (
    SELECT * FROM unnest($2::bigint[], $3::text[], $4::integer[], $5::integer[], $6::integer[],
                         $7::text[], $8::text[], $9::timestamptz[])
           AS r (tenant_id, state, pid, restarts, boot_failures, last_exit, reason, started_at)
    WHERE EXISTS (SELECT 1 FROM tandem.tenants t WHERE t.id = r.tenant_id)
), upserted AS (
    INSERT INTO tandem.tenant_workers AS w
           (tenant_id, node, state, pid, restarts, boot_failures, last_exit, reason, started_at, updated_at)
    SELECT tenant_id, $1, state, pid, restarts, boot_failures, last_exit, reason, started_at, now() FROM reported
    ON CONFLICT (tenant_id, node) DO UPDATE SET
        state = excluded.state, pid = excluded.pid, restarts = excluded.restarts,
        boot_failures = excluded.boot_failures, last_exit = excluded.last_exit, reason = excluded.reason,
        started_at = excluded.started_at, updated_at = now()
    RETURNING 1
), gone AS (
    DELETE FROM tandem.tenant_workers WHERE node = $1 AND tenant_id <> ALL ($2::bigint[]) RETURNING 1
)
SELECT (SELECT count(*) FROM beat) AS beat
"""


async def heartbeat(conn: asyncpg.Connection, name: str, reports: list[WorkerReport]) -> bool:
    """Node `name` is alive and runs exactly `reports` (rows of its other tenants go).

    One round trip. Returns False when the node is not registered (its row was
    removed): the caller should register_node() again. A tenant deleted in the same
    instant can make the foreign key refuse the statement; it is retried once.
    """
    columns = (
        [r.tenant_id for r in reports], [r.state for r in reports], [r.pid for r in reports],
        [r.restarts for r in reports], [r.boot_failures for r in reports], [r.last_exit for r in reports],
        [r.reason for r in reports], [r.started_at for r in reports],
    )
    try:
        return bool(await conn.fetchval(_HEARTBEAT, name, *columns))
    except asyncpg.ForeignKeyViolationError:
        return bool(await conn.fetchval(_HEARTBEAT, name, *columns))


async def list_nodes(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every node, by name, with `seconds_since_heartbeat` (by the database's clock)."""
    rows = await conn.fetch(
        "SELECT name, hostname, pid, version, started_at, heartbeat_at, "
        "       extract(epoch FROM now() - heartbeat_at)::float8 AS seconds_since_heartbeat "
        "FROM tandem.nodes ORDER BY name")
    return [dict(r) for r in rows]
