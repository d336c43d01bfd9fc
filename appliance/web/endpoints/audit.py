"""The audit log: GET /api/v1/audit, admins of either realm.

On a tenant's host: that tenant's log (sign-ins, users, roles, tokens). On the
console's host: the cluster's log (tenants created, disabled, deleted; console
sign-ins and admins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field

from appliance import audit
from appliance.web.api import API, ApiModel, Context, Page, PageQuery, decode_cursor
from appliance.web.endpoints.auth import NO_NUL

TAG = "audit"


class AuditEntry(ApiModel):
    id: int
    at: datetime
    actor: str = Field(description='Who: an e-mail address, "cli" or "supervisor".')
    action: str = Field(description='What, e.g. "login.failure", "user.role_change", "tenant.create".')
    target: str = Field(description="What it was done to (an e-mail address, a tenant slug), or empty.")
    client_addr: str | None
    details: dict[str, Any]


class AuditQuery(PageQuery):
    action: str | None = Field(default=None, max_length=100, pattern=NO_NUL,
                               description='Only this action; ending in "." (e.g. "login.") every action '
                                           "that starts so.")
    actor: str | None = Field(default=None, max_length=254, pattern=NO_NUL,
                              description="Only entries by this actor (ignoring case).")
    target: str | None = Field(default=None, max_length=254, pattern=NO_NUL,
                               description="Only entries about this target (ignoring case).")


@API.operation("GET", "/api/v1/audit", summary="Read the audit log", tags=[TAG], realm="any", role="admin",
               query=AuditQuery, response=Page[AuditEntry], description="Newest first.")
async def list_audit(request: web.Request, ctx: Context) -> Page[AuditEntry]:
    query = ctx.query
    before = decode_cursor(query.cursor, int)[0] if query.cursor else None
    async with ctx.transaction() as conn:
        rows = await audit.events(conn, limit=query.limit + 1, before_id=before, action=query.action,
                                  actor=query.actor, target=query.target)
    return Page[AuditEntry].of([AuditEntry(**row) for row in rows], query.limit, key=lambda e: (e.id,))
