"""Where a query runs: the console's control schema, or one tenant's schema as its role.

Every request and every CLI command that touches a tenant's data runs inside
`tenant_transaction()`: `SET LOCAL ROLE <tenant role>` and `SET LOCAL search_path`,
so PostgreSQL itself refuses anything outside that tenant's schema, even a query
that names another schema by mistake. `SET LOCAL` ends with the transaction, so a
pooled connection never carries one tenant's role into the next request.
Console work never runs as a tenant role (`console_transaction()`).
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

import asyncpg

from appliance.identifiers import CONTROL_SCHEMA, quote_ident


@contextlib.asynccontextmanager
async def tenant_transaction(conn: asyncpg.Connection, schema: str, role: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on `conn` (a control-login connection) confined to one tenant."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {quote_ident(role)}; "
                           f"SET LOCAL search_path TO {quote_ident(schema)}")
        yield conn


@contextlib.asynccontextmanager
async def console_transaction(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on `conn` with the control schema first on the search path."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL search_path TO {quote_ident(CONTROL_SCHEMA)}")
        yield conn
