"""The webhook receiver: POST /api/v1/hooks/{integration_id}/{secret}?side=a|b.

For the apps, not for people: the URL with its secret is the credential (compared in
constant time; an unknown integration looks the same as a wrong secret). Where the app
can prove the secret itself (GitLab's X-Gitlab-Token, Jira's X-Hub-Signature HMAC), that
proof is checked too. A delivery only names items; they are queued for the tenant worker's
engine, which reads them from the app itself, so nothing else in a body is believed.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from aiohttp import web
from pydantic import Field

from appliance.connectors.jira_webhooks import SECRET_HEADER as JIRA_SECRET_HEADER
from appliance.db import jsonb
from appliance.sync.connections import webhook_reader
from appliance.sync.spec import IntegrationSpec
from appliance.web.api import API, ApiError, ApiModel, Context
from appliance.web.endpoints.integrations import HOOKS, MAX_ITEM_ID, Side, enqueue_item

log = logging.getLogger(__name__)

# The header in which each app sends its own proof of the secret, when configured to.
PROOF_HEADER = {"jira": "X-Hub-Signature", "gitlab": "X-Gitlab-Token"}


class HookQuery(ApiModel):
    side: Side = Field(description="Which side's app sends to this URL.")


class HookAccepted(ApiModel):
    queued: int = Field(description="Items queued for the engine (0 for events it does not sync).")


@API.operation("POST", HOOKS, summary="Receive an app's webhook", tags=["webhooks"], realm="tenant", role=None,
               query=HookQuery, response=HookAccepted, status=202,
               description="For the apps, not for people: the URL with its secret is the credential. "
                           "Queues the items the delivery names for the engine.")
async def receive_webhook(request: web.Request, ctx: Context) -> HookAccepted:
    integration_id, given, side = ctx.path["integration_id"], ctx.path["secret"], ctx.query.side
    body = await request.read()
    async with ctx.transaction() as conn:
        row = await conn.fetchrow("SELECT enabled, spec::text AS spec, webhook_secret FROM integrations WHERE id = $1",
                                  integration_id)
        # Compared in constant time even for an unknown integration, so timing tells nothing.
        expected = row["webhook_secret"] if row is not None and row["webhook_secret"] else secrets.token_urlsafe(32)
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()) or row is None:
            raise ApiError(404)
        spec = IntegrationSpec.model_validate_json(row["spec"])
        target = getattr(spec, f"side_{side}")
        connection = await conn.fetchrow("SELECT kind, options::text AS options FROM connections WHERE id = $1",
                                         target.connection_id)
        if connection is None or not row["enabled"]:
            return HookAccepted(queued=0)
        reader = webhook_reader(connection["kind"], jsonb(connection["options"]) or {})
        # Only this endpoint may say what the URL's secret was: drop a client's own attempt.
        headers = {k: v for k, v in request.headers.items() if k.lower() != JIRA_SECRET_HEADER.lower()}
        sent_proof = any(k.lower() == PROOF_HEADER[connection["kind"]].lower() for k in headers)
        if connection["kind"] == "jira" and not sent_proof:
            headers[JIRA_SECRET_HEADER] = given   # the URL's secret is Jira's proof (see the connector)
            sent_proof = True
        if sent_proof and not await reader.verify_webhook(headers, body, expected):
            log.info("webhook for integration %s refused: the app's own proof does not match", integration_id,
                     extra={"tenant": ctx.realm.slug, "integration": integration_id})
            raise ApiError(404)
        try:
            events = await reader.parse_webhook(headers, body)
        except (ValueError, KeyError, TypeError, AttributeError):
            # The connectors parse defensively; a delivery shaped like nothing they know still
            # must not become a 500 that makes the app disable its hook.
            log.info("webhook for integration %s: a delivery of unknown shape was ignored", integration_id,
                     extra={"tenant": ctx.realm.slug, "integration": integration_id})
            events = []
        queued = 0
        for event in events:
            # A container given by path/key cannot be compared with the id the app sends.
            if target.container.isdigit() and event.container != target.container:
                continue
            if not event.item_id or len(event.item_id) > MAX_ITEM_ID or "\x00" in event.item_id + event.kind:
                continue
            await enqueue_item(conn, integration_id, side, event.item_id, event.kind)
            queued += 1
    log.debug("webhook for integration %s side %s: %d item(s) queued", integration_id, side, queued,
              extra={"tenant": ctx.realm.slug, "integration": integration_id})
    return HookAccepted(queued=queued)
