"""Webhook registration in the Jira emulator: Cloud dynamic webhooks (/rest/api/{2,3}/webhook,
per user, JQL filter required, 30-day expiry) and admin webhooks (/rest/webhooks/1.0/webhook,
site admins only, both flavours). Delivery itself is JiraEmulator.emit."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes import jira_jql
from tests.fakes.jira_state import USER, JiraError

if TYPE_CHECKING:
    from tests.fakes.jira import JiraEmulator

WEBHOOK_EVENTS = {"jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
                  "comment_created", "comment_updated", "comment_deleted"}


def add_webhook_routes(app: web.Application, emu: "JiraEmulator", route, body) -> None:
    """`route` and `body` are jira_routes' registration and JSON-body helpers."""

    def user_of(request):
        return request[USER]


    def webhook_json(hook_id, hook):
        return {"id": hook_id, "jqlFilter": hook["jql"], "events": hook["events"],
                "url": hook["url"], "expirationDate": emu.render.time(hook["expires"])}

    @route("POST", "/webhook", cloud_only=True)
    async def register(request, v):
        data = await body(request)
        results = []
        for spec in data.get("webhooks") or []:
            events = spec.get("events") or []
            bad = [e for e in events if e not in WEBHOOK_EVENTS]
            try:
                if not spec.get("jqlFilter"):
                    raise jira_jql.JqlError("JQL filter is required")
                jira_jql.parse(spec["jqlFilter"])
            except jira_jql.JqlError as exc:
                results.append({"errors": [str(exc)]})
                continue
            if bad or not events:
                results.append({"errors": [f"Unsupported event: {', '.join(bad) or 'none'}"]})
                continue
            hook_id = next(emu._webhook_ids)
            emu.webhooks[hook_id] = {"url": data.get("url"), "events": events, "dynamic": True,
                                     "jql": spec["jqlFilter"], "owner": user_of(request),
                                     "expires": emu.now() + timedelta(days=30)}
            results.append({"createdWebhookId": hook_id})
        return web.json_response({"webhookRegistrationResult": results})

    @route("GET", "/webhook", cloud_only=True)
    async def list_webhooks(request, v):
        mine = [(i, h) for i, h in emu.webhooks.items() if h["dynamic"] and h["owner"] is user_of(request)]
        return web.json_response({"startAt": 0, "maxResults": 100, "total": len(mine), "isLast": True,
                                  "values": [webhook_json(i, h) for i, h in mine]})

    @route("DELETE", "/webhook", cloud_only=True)
    async def unregister(request, v):
        for hook_id in (await body(request)).get("webhookIds") or []:
            emu.webhooks.pop(int(hook_id), None)
        return web.Response(status=202)

    async def admin_webhooks(request):
        user = user_of(request)
        if not user.admin:
            raise JiraError(403, ["You do not have the permission to manage webhooks."])
        if request.method == "GET":
            return web.json_response([dict(webhook_json(i, h), name=h["name"], enabled=True)
                                      for i, h in emu.webhooks.items() if not h["dynamic"]])
        data = await body(request)
        jql = (data.get("filters") or {}).get("issue-related-events-section") or None
        if jql:
            jira_jql.parse(jql)
        hook_id = next(emu._webhook_ids)
        emu.webhooks[hook_id] = {"url": data.get("url"), "events": data.get("events") or [],
                                 "dynamic": False, "jql": jql, "owner": user,
                                 "name": data.get("name", ""), "expires": None}
        return web.json_response({
            "self": f"{emu.render.base}/rest/webhooks/1.0/webhook/{hook_id}", "name":
            data.get("name", ""), "url": data.get("url"), "events": data.get("events") or [],
            "filters": data.get("filters") or {}, "enabled": True}, status=201)

    async def admin_delete(request):
        if not user_of(request).admin:
            raise JiraError(403, ["You do not have the permission to manage webhooks."])
        if emu.webhooks.pop(int(request.match_info["id"]), None) is None:
            raise JiraError(404, ["Webhook not found."])
        return web.Response(status=204)

    app.router.add_route("GET", "/rest/webhooks/1.0/webhook", admin_webhooks)
    app.router.add_route("POST", "/rest/webhooks/1.0/webhook", admin_webhooks)
    app.router.add_route("DELETE", "/rest/webhooks/1.0/webhook/{id}", admin_delete)
