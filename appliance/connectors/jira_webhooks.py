"""Jira webhooks for the Jira connector (appliance.connectors.jira): registering one per
project, checking a delivery's secret (our header, or Jira's `X-Hub-Signature` HMAC), and
reading which issue it is about. A delivery only says "look at this issue now"; the engine
reads the issue itself, so nothing in a body is trusted beyond the issue's id."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from appliance.connectors.base import RemoteItemError, WebhookEvent
from appliance.connectors.jql import jql_string

SECRET_HEADER = "X-Tandem-Webhook-Secret"
EVENT_KINDS = {"jira:issue_created": "created", "jira:issue_updated": "updated",
               "jira:issue_deleted": "deleted", "comment_created": "comment",
               "comment_updated": "comment", "comment_deleted": "comment"}


class JiraWebhooks:
    """Mixed into JiraConnector: uses its `_setup`, `_json`, `_cloud` and `http`."""

    async def register_webhook(self, container: str, url: str) -> str:
        """Ask Jira to deliver issue and comment events of `container` to `url` (which carries
        the integration's secret); returns the webhook id. Cloud: a dynamic webhook (expires
        after 30 days: register again to refresh); Server: an admin webhook."""
        await self._setup()
        project = await self._json("GET", f"project/{container}")
        jql = f"project = {jql_string(project['key'])}"
        events = ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "comment_created",
                  "comment_updated", "comment_deleted"]
        if self._cloud:
            result = (await self._json("POST", "webhook", json={"url": url, "webhooks": [
                {"events": events, "jqlFilter": jql}]}))["webhookRegistrationResult"][0]
            if "createdWebhookId" not in result:
                raise RemoteItemError("Jira refused the webhook: " + "; ".join(result.get("errors") or []))
            return str(result["createdWebhookId"])
        created = (await self.http.request("POST", "rest/webhooks/1.0/webhook", expect=(201,), json={
            "name": f"Tandem {project['key']}", "url": url, "events": events,
            "filters": {"issue-related-events-section": jql}, "excludeBody": False})).json()
        return created["self"].rstrip("/").rsplit("/", 1)[1]

    async def verify_webhook(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        if not secret:
            return False
        lowered = {k.lower(): v for k, v in headers.items()}
        given = lowered.get(SECRET_HEADER.lower())
        if given is not None:
            return hmac.compare_digest(given.encode(), secret.encode())
        signature = lowered.get("x-hub-signature", "")
        if signature.startswith("sha256="):
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            return hmac.compare_digest(signature.encode(), expected.encode())
        return False

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        try:
            data = json.loads(body)
            event = data["webhookEvent"]
            issue = data["issue"]
            project = ((issue.get("fields") or {}).get("project") or {}).get("id", "")
            kind = EVENT_KINDS.get(event)
            if kind is None:
                return []
            items = (data.get("changelog") or {}).get("items") or []
            if kind == "updated" and items and all(i.get("field") == "Attachment" for i in items):
                kind = "attachment"
            return [WebhookEvent(container=str(project), item_id=str(issue["id"]), kind=kind)]
        except (ValueError, KeyError, TypeError, AttributeError):
            return []
