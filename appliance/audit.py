"""The audit log: who did what, when, from where.

Two logs with the same columns: the cluster's, `tandem.audit_log` (tenants created,
disabled, deleted; console sign-ins and admins), and each tenant's own `audit_log`
in its schema (its sign-ins, users, roles, tokens), readable by that tenant's admins.

- `record` / `recent` always use the cluster's log (`tandem.audit_log`), from any
  control-login connection.
- `log_event` / `events` use the `audit_log` of the connection's realm: call them
  inside appliance.scope.tenant_transaction (the tenant's log) or
  console_transaction (the cluster's log).

Callers record inside the transaction of the change they audit, so a change and
its audit row are committed (or rolled back) together. Never put a secret in
`details`.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import asyncpg

_INSERT = ("INSERT INTO {table} (actor, action, target, client_addr, details) "
           "VALUES ($1, $2, $3, $4::inet, $5::jsonb)")
_SELECT = ("SELECT id, at, actor, action, target, host(client_addr) AS client_addr, details::text AS details "
           "FROM {table} ")


def _address(client_addr: str | None) -> str | None:
    return str(ipaddress.ip_address(client_addr)) if client_addr else None


def _decoded(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]


async def record(conn: asyncpg.Connection, actor: str, action: str, target: str = "",
                 details: dict[str, Any] | None = None, client_addr: str | None = None) -> None:
    """Append one entry to the cluster's log. `actor`: "cli", "supervisor" or a user's
    e-mail; `action`: a dotted verb such as "tenant.create"; `details`:
    JSON-serialisable; `client_addr`: an IP address (ValueError otherwise)."""
    await conn.execute(_INSERT.format(table="tandem.audit_log"), actor, action, target, _address(client_addr),
                       json.dumps(details or {}, default=str))


async def recent(conn: asyncpg.Connection, limit: int = 50, target: str | None = None) -> list[dict[str, Any]]:
    """The cluster log's newest entries first (optionally only those about `target`), details decoded."""
    rows = await conn.fetch(_SELECT.format(table="tandem.audit_log")
                            + "WHERE $1::text IS NULL OR target = $1 ORDER BY at DESC, id DESC LIMIT $2",
                            target, limit)
    return _decoded(rows)


async def log_event(conn: asyncpg.Connection, actor: str, action: str, target: str = "",
                    details: dict[str, Any] | None = None, client_addr: str | None = None) -> None:
    """`record`, into the audit log of the connection's realm (unqualified `audit_log`)."""
    await conn.execute(_INSERT.format(table="audit_log"), actor, action, target, _address(client_addr),
                       json.dumps(details or {}, default=str))


async def events(conn: asyncpg.Connection, *, limit: int = 50, before_id: int | None = None,
                 action: str | None = None, actor: str | None = None,
                 target: str | None = None) -> list[dict[str, Any]]:
    """Entries of the realm's log, newest first, at most `limit`, with id below
    `before_id` (the previous page's last id). `action` matches exactly, or a prefix
    when it ends with "." ("user." is every user.* entry); `actor` and `target` match
    exactly, ignoring case."""
    prefix = action[:-1] if action and action.endswith(".") else None
    rows = await conn.fetch(
        _SELECT.format(table="audit_log")
        + "WHERE ($1::bigint IS NULL OR id < $1) "
          "AND ($2::text IS NULL OR action = $2) "
          "AND ($3::text IS NULL OR starts_with(action, $3 || '.')) "
          "AND ($4::text IS NULL OR lower(actor) = lower($4)) "
          "AND ($5::text IS NULL OR lower(target) = lower($5)) "
          "ORDER BY id DESC LIMIT $6",
        before_id, None if prefix else action, prefix, actor, target, limit)
    return _decoded(rows)
