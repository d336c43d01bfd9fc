"""Preview of an integration: POST /api/v1/integrations/{id}/preview, tenant realm, editors.

The exact writes the next run would make, made by nothing: the engine reads through a
READ ONLY transaction (the database's own guarantee that nothing is recorded), and the
apps are only read, through an OutboundClient that may reach the integration's two
connections' hosts and nothing else (appliance.sync.preview).

Without a body it previews the stored spec. With `{"spec": {...}}` it previews that spec
instead, an edit not saved yet, as the next run after saving it would go (from the
integration's cursors and links): the spec is validated exactly as PATCH validates it
(422 with the same field paths, 409 for sides that cannot change) and stored nowhere.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import Field

from appliance.connectors.base import ConnectorError, EgressDenied, RemoteAuthError
from appliance.outbound import OutboundClient, RetryPolicy
from appliance.sync.connections import CredentialUnusable, connector_for, host_of
from appliance.sync.engine import Engine, SyncRunFailed
from appliance.sync.preview import preview
from appliance.sync.spec import IntegrationSpec
from appliance.web.api import API, ApiError, ApiModel, Context
from appliance.web.endpoints.integrations import ONE, TAG, Side, _load, check_spec_change
from appliance.web.keys import CONFIG, MASTER_KEY

log = logging.getLogger(__name__)


# A person waits for a preview: fail fast rather than retry long (as "test connection" does).
PREVIEW_RETRY = RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=1.0, max_wait=5.0, connect_timeout=10.0,
                            read_timeout=20.0)
PREVIEW_SECONDS = 60
PREVIEW_ITEMS = 100


class PreviewRequest(ApiModel):
    spec: IntegrationSpec | None = Field(
        default=None, description="An edit of the integration's spec to preview instead of the stored one "
                                  "(validated as PATCH validates it; nothing is stored). Absent or null: the "
                                  "stored spec.")


class PlannedCreate(ApiModel):
    side: Side = Field(description="The side the new item would be created on.")
    source: str = Field(description="Key of the item on the other side it would copy.")
    type: str = Field(description="Item type of the new item.")
    fields: dict[str, Any] = Field(description="Its field values, as the app on `side` would get them.")


class FieldChange(ApiModel):
    old: Any = Field(description="What the item holds now.")
    new: Any = Field(description="What the run would write.")


class PlannedUpdate(ApiModel):
    side: Side
    item: str = Field(description="Key of the item that would be written.")
    source: str = Field(description="Key of its counterpart, where the new values come from.")
    fields: dict[str, FieldChange]
    why: str


class PlannedLink(ApiModel):
    side: Side
    item: str = Field(description="Key of an item the engine created whose link was not recorded.")
    source: str = Field(description="Id of the item on the other side it was created from.")
    why: str


class PlannedConflict(ApiModel):
    item: str = Field(description="Key of the side A item.")
    field: str
    a_value: Any
    b_value: Any
    why: str


class PreviewOut(ApiModel):
    creates: list[PlannedCreate]
    updates: list[PlannedUpdate]
    links: list[PlannedLink]
    conflicts: list[PlannedConflict]


def _preview_failed(exc: ConnectorError, names: dict[str, str]) -> ApiError:
    """The 409 of a preview a side's app stopped; names the side and its connection."""
    side = getattr(exc, "side", None)
    where = (f"Side {side.upper()} (connection {names[side]!r})" if side in names
             else f"Side {side.upper()}" if side in ("a", "b") else "An app")
    if isinstance(exc, CredentialUnusable):
        what = f"the stored credential cannot be used ({exc.message}); enter it again"
    elif isinstance(exc, RemoteAuthError):
        what = f"the app refused the credential ({exc.message}); fix the connection"
    elif isinstance(exc, EgressDenied):
        what = f"not allowed to reach the app ({exc.message})"
    else:
        what = f"could not read from the app ({exc.message})"
    return ApiError(409, f"{where}: {what}. Nothing was previewed.")


@API.operation("POST", ONE + "/preview", summary="Preview the next run", tags=[TAG], realm="tenant", role="editor",
               body=PreviewRequest, body_required=False, response=PreviewOut,
               errors={409: "A side's app refused the credential, could not be reached or answered "
                            "unexpectedly (the message names the side), or the edited spec changes the "
                            "sides while items are linked."},
               description=f"The writes the next run would make (up to {PREVIEW_ITEMS} items looked at), "
                           "made by nothing: the apps are only read and nothing is recorded. Comments are "
                           "not previewed. Send `spec` to preview an edit before saving it.")
async def preview_integration(request: web.Request, ctx: Context) -> PreviewOut:
    edited = ctx.body.spec
    if edited is not None:
        # Apart, before the read-only transaction: the checks lock the connections they name.
        async with ctx.transaction() as conn:
            await check_spec_change(conn, await _load(conn, ctx.path["id"]), edited)
    async with ctx.transaction() as conn:
        # The database's own guarantee that the preview records nothing.
        await conn.execute("SET TRANSACTION READ ONLY")
        row = await _load(conn, ctx.path["id"])
        spec = edited or IntegrationSpec.model_validate_json(row["spec"])
        sides = {"a": spec.side_a.connection_id, "b": spec.side_b.connection_id}
        rows = {r["id"]: r for r in await conn.fetch("SELECT id, name, base_url FROM connections "
                                                     "WHERE id = ANY($1::bigint[])", list(sides.values()))}
        names = {side: rows[cid]["name"] for side, cid in sides.items() if cid in rows}
        outbound = OutboundClient(request.app[CONFIG], [host_of(r["base_url"]) for r in rows.values()],
                                  retry=PREVIEW_RETRY, tenant=ctx.realm.slug)

        async def connectors(connection: asyncpg.Record):
            return connector_for(connection, request.app[MASTER_KEY], outbound, ctx.realm.schema)

        # The engine reads through this transaction's connection (a preview's Store only reads).
        engine = Engine(conn, connectors, row, schema=ctx.realm.schema, tenant=ctx.realm.slug)
        try:
            async with outbound, asyncio.timeout(PREVIEW_SECONDS):
                plan = await preview(engine, limit=PREVIEW_ITEMS, spec=edited)
        except ConnectorError as exc:
            raise _preview_failed(exc, names) from None
        except SyncRunFailed as exc:
            raise ApiError(409, f"{exc}. Nothing was previewed.") from None
        except TimeoutError:
            raise ApiError(409, f"The apps did not answer within {PREVIEW_SECONDS} seconds. Nothing was "
                                "previewed.") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # JSON, but not what this kind of app sends: most likely a base URL points elsewhere.
            log.info("integration %s: preview got an answer of unexpected shape (%s)", row["id"],
                     type(exc).__name__, extra={"tenant": ctx.realm.slug, "integration": row["id"]})
            raise ApiError(409, "An app's answers are not what a Jira or GitLab server sends; check the "
                                "connections' base URLs. Nothing was previewed.") from None
    out: dict[str, list] = {"create": [], "update": [], "link": [], "conflict": []}
    for step in plan:
        action = step.pop("action")
        if action == "update":
            old = step.pop("old")
            step["fields"] = {f: FieldChange(old=old.get(f), new=v) for f, v in step["fields"].items()}
        out[action].append(step)
    return PreviewOut(creates=[PlannedCreate(**s) for s in out["create"]],
                      updates=[PlannedUpdate(**s) for s in out["update"]],
                      links=[PlannedLink(**s) for s in out["link"]],
                      conflicts=[PlannedConflict(**s) for s in out["conflict"]])

