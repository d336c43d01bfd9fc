"""The audit log: who changed what in the cluster, in `tandem.audit_log`.

Callers record inside the transaction of the change they audit, so a change and
its audit row are committed (or rolled back) together.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import asyncpg


async def record(conn: asyncpg.Connection, actor: str, action: str, target: str = "",
                 details: dict[str, Any] | None = None, client_addr: str | None = None) -> None:
    """Append one entry. `actor`: "cli", "supervisor" or a user's e-mail; `action`: a dotted
    verb such as "tenant.create"; `details`: JSON-serialisable; `client_addr`: an IP
    address (ValueError otherwise). Never put a secret in `details`."""
    address = str(ipaddress.ip_address(client_addr)) if client_addr else None
    await conn.execute(
        "INSERT INTO tandem.audit_log (actor, action, target, client_addr, details) "
        "VALUES ($1, $2, $3, $4::inet, $5::jsonb)",
        actor, action, target, address, json.dumps(details or {}, default=str))


async def recent(conn: asyncpg.Connection, limit: int = 50, target: str | None = None) -> list[dict[str, Any]]:
    """The newest entries first (optionally only those about `target`), details decoded."""
    rows = await conn.fetch(
        "SELECT id, at, actor, action, target, host(client_addr) AS client_addr, details::text AS details "
        "FROM tandem.audit_log WHERE $1::text IS NULL OR target = $1 ORDER BY at DESC, id DESC LIMIT $2",
        target, limit)
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]
