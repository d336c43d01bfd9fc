"""An emulator of Jira Cloud (REST v3 + v2) and Jira Data Center / Server (REST v2), in memory.

    emu = JiraEmulator(flavor="cloud")        # or "server"; tz="Europe/Berlin" by default
    async with serve(emu.app) as base_url: ...            # or serve_in_thread(emu.app)

Behaviour copied from Jira (and checked by driving it with the `jira` client library):
- Cloud: /rest/api/3 (ADF bodies) and /rest/api/2 (plain strings), basic auth e-mail + API token,
  users by accountId, enhanced search /search/jql with nextPageToken, its count POST
  /search/approximate-count (not on Data Center: 404), dynamic webhooks
  /rest/api/{2,3}/webhook. Server: /rest/api/2 only (wiki-markup strings), PAT as Bearer or basic
  username + password, users by username. Legacy /search (startAt/maxResults/total): Server
  always; Cloud answers 410 as it has since 2025 unless `legacy_search_gone` is set False. Both:
  admin webhooks /rest/webhooks/1.0/webhook.
- Timestamps "2026-11-28T22:32:00.123+0100" in the server zone; `updated` has millisecond
  precision while JQL dates have minute precision in the searching user's zone (jira_jql).
- Errors {"errorMessages": [...], "errors": {field: message}}; 401 without or with bad
  credentials (serverInfo is anonymous); per-user project access "write" (default), "read" or
  "none" (the project and its issues are invisible: 404, filtered from searches). A "read" user's
  writes are refused as the API description lists it per operation: editing an issue,
  transitioning it and adding, editing or deleting a comment -> 400; creating or deleting an
  issue, attachments and issue properties -> 403.
- Workflow To Do -> In Progress -> Done (the Done transition requires `resolution`), Reopen clears it.
- Issue properties (PUT, or `properties` in the create request; comments take them too) do not
  change `updated` (as in Jira). JQL `issue.property[k].path = ...` is valid for any k but
  matches only for keys in `indexed_properties` (empty by default): Jira indexes a property for
  JQL only where an installed app declares it, and Tandem is not a Jira app.
- Paged as the API description says: createmeta (startAt/maxResults, default 50, at most
  `meta_max_results`, 200), user/assignable/search (takes the users in [startAt, startAt +
  maxResults) up to the thousandth, then returns only the assignable ones among them: a page may
  be short or empty while more follow).
- Comments take `visibility` ({"type": "group"|"role", "value": ...}) on create and edit and
  show it; every user is taken to be in every group and role (nothing is hidden from anyone).
- Sub-tasks: tests seed them (new_issue with "parent": the parent's id; type "10004" Sub-task,
  which no project scheme offers for creates); issues show `subtasks`, sub-tasks `parent`; DELETE
  of a parent answers 400 unless deleteSubtasks=true, which deletes its sub-tasks with it.
- Attachment content on Cloud redirects (303) to a media URL unless `redirect=false`.
- Knobs (tests/fakes/server.py) for latency/5xx/429; `writes` records every write with its user
  (`writes_by(user)` for echo tests); `deliveries` records webhook deliveries; `drop_webhooks`
  loses them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from tests.fakes import jira_jql
from tests.fakes.jira_render import Renderer
from tests.fakes.jira_routes import add_routes
from tests.fakes.jira_search import evaluate
from tests.fakes.jira_state import STATUSES, USER, Issue, JiraError, Project, User
from tests.fakes.server import Knobs, install_knobs, route_template


# How Jira refuses a change to an issue the user may only see, per its API description:
# PUT /issue and POST /issue/{id}/transitions list "the user does not have permission" under
# 400 (their 403s are for other cases), and so do the comment operations; creating and
# deleting issues, attachments and properties answer 403.
REFUSALS = {
    "write": (403, ["You do not have permission to edit issues in this project."]),
    "edit": (400, ["You do not have permission to edit issues in this project."]),
    "transition": (400, ["You do not have permission to transition this issue."]),
    "comment": (400, ["You do not have permission to comment on this issue."]),
}


@dataclass
class Write:
    user: User
    method: str
    route: str
    issue_key: str | None


def _rate_limited(request: web.Request, status: int) -> web.Response:
    # Jira Cloud's 429 carries X-RateLimit-* next to Retry-After (the knobs add Retry-After).
    return web.json_response({"errorMessages": ["Rate limit exceeded."], "errors": {}}, status=status,
                             headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                                      "X-RateLimit-NearLimit": "true"})


class JiraEmulator:
    """In-memory Jira. Seeded with project PROJ (versions 1.0, 2.0), users alice (site admin) and
    bob; add more with add_user/add_project. `clock` returns the current aware time (tests may
    replace it to put events in the same minute)."""

    def __init__(self, flavor: str = "cloud", tz: str = "Europe/Berlin",
                 clock: Callable[[], datetime] | None = None, seed: int | None = 0):
        if flavor not in ("cloud", "server"):
            raise ValueError("flavor must be 'cloud' or 'server'")
        self.flavor = flavor
        self.cloud = flavor == "cloud"
        self.tz = ZoneInfo(tz)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.knobs = Knobs(seed)
        self.knobs.rate_limit_response = _rate_limited
        self.users: dict[str, User] = {}
        self.projects: dict[str, Project] = {}
        self.issues: dict[str, Issue] = {}            # id -> issue
        self.keys: dict[str, str] = {}                # key -> id (old keys stay after moves)
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.writes: list[Write] = []
        self.legacy_search_gone = self.cloud
        self.indexed_properties: set[str] = set()
        self.meta_max_results = 200
        self.drop_webhooks = False
        self.max_results = 100 if self.cloud else 1000
        self._ids = itertools.count(10000)
        self._other_ids = itertools.count(10000)
        self._webhook_ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        self.render = Renderer(flavor, self.tz, self.users, self.issues)
        self.alice = self.add_user("alice", "Alice Admin", "alice@example.com", admin=True)
        self.bob = self.add_user("bob", "Bob Builder", "bob@example.com")
        self.add_project("PROJ", "Project")
        self._app: web.Application | None = None

    # -- set-up helpers for tests ---------------------------------------------------------------

    def add_user(self, name: str, display_name: str, email: str, *, admin: bool = False,
                 time_zone: str | None = None, account_prefix: str | None = None) -> User:
        """A user whose Cloud API token / Server PAT is "<name>-token", password "<name>-pass".
        Its accountId has 24 hex digits; with `account_prefix` ("557058", "712020", ...) it has
        the other shape real Cloud sites hand out, "<prefix>:<uuid>" (the UUID derived from
        `name`, so runs are repeatable). Atlassian documents accountIds as opaque strings of up
        to 128 characters."""
        if account_prefix is None:
            account_id = f"5b10ac8d82e05b22cc7d{len(self.users) + 1:04d}"
        else:
            account_id = f"{account_prefix}:{uuid.uuid5(uuid.NAMESPACE_URL, 'jira-user:' + name)}"
        user = User(account_id, name, display_name, email, f"{name}-token", f"{name}-pass",
                    time_zone, admin)
        self.users[account_id] = user
        return user

    def add_project(self, key: str, name: str) -> Project:
        pid = str(10000 + len(self.projects))
        project = Project(pid, key, name, [(str(next(self._other_ids)), "1.0"),
                                           (str(next(self._other_ids)), "2.0")])
        self.projects[key] = project
        return project

    def basic_auth(self, user: User) -> tuple[str, str]:
        """What `jira.JIRA(basic_auth=...)` takes for `user` in this flavour."""
        return (user.email, user.token) if self.cloud else (user.name, user.password)

    def auth_header(self, user: User) -> str:
        login, secret = self.basic_auth(user)
        return "Basic " + base64.b64encode(f"{login}:{secret}".encode()).decode()

    def writes_by(self, who: User | str) -> list[Write]:
        """Writes made by `who` (a User, accountId, username or e-mail)."""
        return [w for w in self.writes if w.user is who or who in (
            w.user.account_id, w.user.name, w.user.email)]

    def now(self) -> datetime:
        moment = self.clock().astimezone(timezone.utc)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    @property
    def app(self) -> web.Application:
        if self._app is None:
            self._app = self.make_app()
        return self._app

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        install_knobs(app, self.knobs)
        app.middlewares.append(self._middleware)
        add_routes(app, self)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    # -- auth ---------------------------------------------------------------------------------

    def _authenticate(self, header: str) -> User | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                login, _, secret = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            for user in self.users.values():
                if self.cloud and (login, secret) == (user.email, user.token):
                    return user
                if not self.cloud and (login, secret) == (user.name, user.password):
                    return user
        if scheme.lower() == "bearer" and not self.cloud:
            for user in self.users.values():
                if value == user.token:
                    return user
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        self.render.base = f"{request.scheme}://{request.host}"
        header = request.headers.get("Authorization")
        user = self._authenticate(header) if header else None
        anonymous_ok = request.path.endswith("/serverInfo")
        try:
            if header and user is None:
                return web.json_response(
                    {"errorMessages": ["You are not authenticated. Authentication required to "
                                       "perform this operation."], "errors": {}}, status=401,
                    headers={"X-Seraph-LoginReason": "AUTHENTICATED_FAILED",
                             "WWW-Authenticate": 'Basic realm="protected-area"'})
            if user is None and not anonymous_ok:
                return web.json_response(
                    {"errorMessages": ["You are not authenticated. Authentication required to "
                                       "perform this operation."], "errors": {}}, status=401)
            request[USER] = user
            return await handler(request)
        except jira_jql.JqlError as exc:
            return JiraError(400, [str(exc)]).response()
        except JiraError as exc:
            return exc.response()

    # -- access -------------------------------------------------------------------------------

    def project_for(self, user: User, id_or_key: str, need: str = "read") -> Project:
        for project in self.projects.values():
            if id_or_key in (project.id, project.key) or id_or_key.upper() == project.key:
                level = user.level(project.key)
                if level == "none":
                    break
                if need == "write" and level != "write":
                    raise JiraError(403, ["You do not have permission to edit issues in this "
                                          "project."])
                return project
        raise JiraError(404, [f"No project could be found with key '{id_or_key}'."])

    def issue_for(self, user: User, id_or_key: str, need: str = "read") -> Issue:
        """The issue `user` may see; `need` one of REFUSALS' keys when the call changes it."""
        issue_id = self.keys.get(id_or_key.upper(), id_or_key)
        issue = self.issues.get(issue_id)
        if issue is None or user.level(issue.project.key) == "none":
            raise JiraError(404, ["Issue does not exist or you do not have permission to see it."])
        if need != "read" and user.level(issue.project.key) != "write":
            raise JiraError(*REFUSALS[need])
        return issue

    def record(self, request: web.Request, issue: Issue | None) -> None:
        self.writes.append(Write(request[USER], request.method, route_template(request),
                                 issue.key if issue else None))

    # -- issues -------------------------------------------------------------------------------

    def new_issue(self, user: User, project: Project, values: dict[str, Any]) -> Issue:
        now = self.now()
        issue_id = str(next(self._ids))
        key = f"{project.key}-{next(project.counter)}"
        fields = {"status": STATUSES[0].id, "priority": "3", "labels": [], "fixVersions": [],
                  "reporter": user, "creator": user, "assignee": None, "resolution": None,
                  "resolutiondate": None, "description": None, "duedate": None}
        fields.update(values)
        issue = Issue(issue_id, key, project, fields, now, now)
        self.issues[issue_id] = issue
        self.keys[key] = issue_id
        if fields.get("parent") in self.issues:
            self.issues[fields["parent"]].subtasks.append(issue_id)
        return issue

    def change(self, issue: Issue, user: User, values: dict[str, Any]) -> list[dict]:
        """Apply `values` (internal field values), record a changelog history when anything
        changed, bump `updated`; returns the changelog items."""
        items = []
        for fid, new in values.items():
            old = issue.fields.get(fid)
            if old == new:
                continue
            issue.fields[fid] = new
            if fid == "resolutiondate":
                continue
            from_id, from_str = self.render.display(fid, old, issue.project)
            to_id, to_str = self.render.display(fid, new, issue.project)
            items.append({"field": {"fixVersions": "Fix Version", "duedate": "duedate",
                                    "customfield_10010": "Story Points",
                                    "customfield_10011": "Team",
                                    "customfield_10012": "Customer",
                                    "customfield_10013": "Steps"}.get(fid, fid),
                          "fieldtype": "custom" if fid.startswith("customfield_") else "jira",
                          "fieldId": fid, "from": from_id, "fromString": from_str, "to": to_id,
                          "toString": to_str})
        if items:
            self.touch(issue, user, items)
        return items

    def touch(self, issue: Issue, user: User, items: list[dict]) -> None:
        issue.updated = self.now()
        issue.histories.append({"id": str(next(self._other_ids)), "author": user,
                                "created": issue.updated, "items": items})

    # -- webhooks -----------------------------------------------------------------------------

    def matches(self, jql: str | None, issue: Issue, user: User) -> bool:
        if not jql:
            return True
        return evaluate(self, jira_jql.parse(jql), issue, user)

    def emit(self, event: str, issue: Issue, user: User, *, changelog: list[dict] | None = None,
             comment: Any = None) -> None:
        """Deliver `event` to every webhook registered for it whose JQL filter matches."""
        if not self.webhooks:
            return
        payload: dict[str, Any] = {
            "timestamp": int(self.now().timestamp() * 1000), "webhookEvent": event,
            "user": self.render.user(user)}
        if event.startswith("jira:issue"):
            payload["issue_event_type_name"] = event.split(":")[1].replace("issue_updated",
                                                                           "issue_generic")
            payload["issue"] = self.render.issue(issue, "2")
            if changelog:
                payload["changelog"] = {"id": issue.histories[-1]["id"], "items": changelog}
        else:
            payload["comment"] = self.render.comment(comment, issue, "2")
            payload["issue"] = {"id": issue.id, "key": issue.key,
                                "self": f"{self.render.base}/rest/api/2/issue/{issue.id}",
                                "fields": {k: self.render.field_value(issue, k, "2") for k in
                                           ("summary", "status", "issuetype", "priority",
                                            "assignee", "project")}}
        for hook_id, hook in self.webhooks.items():
            owner = hook["owner"]
            if event not in hook["events"] or owner.level(issue.project.key) == "none":
                continue
            if not self.matches(hook.get("jql"), issue, owner):
                continue
            body = dict(payload)
            if hook["dynamic"]:
                body["matchedWebhookIds"] = [hook_id]
            url = hook["url"].replace("${issue.key}", issue.key).replace("${issue.id}", issue.id)
            task = asyncio.get_running_loop().create_task(self._deliver(url, event, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, event: str, body: dict) -> None:
        record = {"url": url, "event": event, "issue": body["issue"]["key"], "status": None}
        self.deliveries.append(record)
        if self.drop_webhooks:
            record["status"] = "dropped"
            return
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._session.post(url, data=json.dumps(body), headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": "Atlassian Webhook HTTP Client"}) as response:
                record["status"] = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            record["status"] = f"error: {type(exc).__name__}"

    async def drain(self) -> None:
        """Wait for in-flight webhook deliveries (in the server's loop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
