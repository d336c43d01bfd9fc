"""An in-memory GitLab (REST API v4) for tests, behaving like GitLab 17 where Tandem looks.

Built from the community OpenAPI description in ../shared/specs/ (beside the repository) and GitLab's documentation:

- Auth: `PRIVATE-TOKEN: <token>` or `Authorization: Bearer <token>`; personal access tokens belong to
  a user, project access tokens to a bot user that is a member of that one project. A missing,
  unknown or revoked token -> 401 {"message": "401 Unauthorized"}; a `read_api` token writing -> 403
  {"error": "insufficient_scope", ...}; too low an access level -> 403 {"message": "403 Forbidden"};
  a project the user cannot see -> 404 {"message": "404 Project Not Found"}.
- Timestamps are UTC with milliseconds ("2026-11-28T21:32:00.123Z"); the stored value keeps
  microseconds like PostgreSQL, so two edits in one millisecond print alike. `updated_after` and
  `updated_before` are inclusive ("updated on or after"), compared with the stored value.
- updated_at moves on every edit and on every note (notes touch their issue). Label, state,
  title, description, assignee and milestone changes add system notes (system=true).
- Issue lists break ties by id, descending, whichever the sort (GitLab's Issuable.sort_by_attribute).
- Offset pagination with X-Page, X-Per-Page, X-Next-Page, X-Prev-Page, X-Total, X-Total-Pages
  (the totals are left out beyond 10,000 rows, as GitLab does) and a Link header; /projects also
  does keyset pagination (pagination=keyset, order_by=id). /projects/:id/issues_statistics counts
  what the issue list's filters keep, by state, without that limit (its `scope` defaults to
  created_by_me).
- Milestones: a project's own, and its groups' (`add_group_milestone`, for the namespace and
  each parent of it), which an issue may carry; /projects/:id/milestones lists the groups' only
  with `include_ancestors=true` (16.7+) or the deprecated `include_parent_milestones` (both: 400).
- Internal notes: `internal` (or the older `confidential`) on create; shown only to members
  from Planner up and to their author, rendered with both `internal` and `confidential`, and
  delivered to confidential note hooks only.
- Webhooks: project hooks receive "Issue Hook" / "Note Hook" deliveries (X-Gitlab-Event,
  X-Gitlab-Token, X-Gitlab-Event-UUID), sent in order by a background task; `await drain_hooks()`.

`GitLabFake` holds the state and builds the app (`fake.app()`), with the shared `Knobs`
(tests/fakes/server.py) installed. Test set-up goes through its methods (add_user, add_project,
add_member, add_token), never through HTTP, so request counters count only what the code under
test did. `writes_by(token)` lists the writes a credential made, for echo tests. Uploads: POST
/projects/:id/uploads (multipart) -> {id, alt, url, full_path, markdown}; the file is served by
the API (/projects/:id/uploads/:secret/:filename) and by its `full_path` web route.

The endpoints live in gitlab_projects.py (user, version, projects, labels, milestones, members,
hooks) and gitlab_issues.py (issues, notes, uploads); this module holds the state, access
rules, rendering shared by both, pagination and webhook delivery.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.fakes.gitlab_issues import install_issue_routes
from tests.fakes.gitlab_projects import install_project_routes
from tests.fakes.server import Knobs, install_knobs

GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 15, 20, 30, 40, 50
MAX_COUNTED = 10_000  # GitLab stops counting (no X-Total) beyond this


def now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(value: datetime | None) -> str | None:
    """GitLab's JSON timestamp: UTC, milliseconds, "Z"."""
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """What Grape accepts for a DateTime param: ISO 8601 with or without zone (UTC assumed), or a date."""
    text = text.strip().replace(" ", "+") if "T" in text else text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), timezone.utc)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class ApiError(Exception):
    """Raised by handlers; rendered as GitLab renders it."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def not_found(what: str = "") -> ApiError:
    return ApiError(404, {"message": f"404 {what + ' ' if what else ''}Not Found"})


def record_not_found() -> ApiError:
    """What GitLab's API answers when a record lookup (issue, note, upload) fails."""
    return ApiError(404, {"message": "404 Not found"})


def forbidden() -> ApiError:
    return ApiError(403, {"message": "403 Forbidden"})


def bad_request(message: Any) -> ApiError:
    return ApiError(400, {"message": message})


def missing(name: str) -> ApiError:
    return ApiError(400, {"error": f"{name} is missing"})


@dataclass
class User:
    id: int
    username: str
    name: str
    email: str
    admin: bool = False
    bot: bool = False

    def basic(self, base_url: str) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "name": self.name, "state": "active",
                "locked": False, "avatar_url": None, "web_url": f"{base_url}/{self.username}"}


@dataclass
class Token:
    value: str
    user_id: int
    scopes: tuple[str, ...] = ("api",)
    revoked: bool = False


@dataclass
class Label:
    id: int
    name: str
    color: str = "#6699cc"
    description: str | None = None


@dataclass
class Milestone:
    """A project milestone (`project_id`) or a group milestone (`group`, the group's full path)."""
    id: int
    iid: int
    project_id: int | None
    title: str
    state: str = "active"
    due_date: str | None = None
    created_at: datetime = field(default_factory=now)
    group: str | None = None


@dataclass
class Note:
    id: int
    issue_iid: int
    author_id: int
    body: str
    system: bool
    created_at: datetime
    updated_at: datetime
    internal: bool = False  # shown to the project's members (Planner and up) and its author only


@dataclass
class Issue:
    id: int
    iid: int
    project_id: int
    title: str
    description: str | None
    author_id: int
    created_at: datetime
    updated_at: datetime
    state: str = "opened"
    closed_at: datetime | None = None
    closed_by_id: int | None = None
    labels: list[str] = field(default_factory=list)
    assignee_ids: list[int] = field(default_factory=list)
    milestone_id: int | None = None
    due_date: str | None = None
    weight: int | None = None
    confidential: bool = False
    issue_type: str = "issue"
    discussion_locked: bool | None = None


@dataclass
class Upload:
    id: int
    secret: str
    filename: str
    content: bytes
    content_type: str
    uploader_id: int
    created_at: datetime


@dataclass
class Hook:
    id: int
    url: str
    token: str | None
    issues_events: bool
    note_events: bool
    confidential_issues_events: bool
    confidential_note_events: bool
    created_at: datetime


@dataclass
class Project:
    id: int
    name: str
    path: str
    namespace: str
    description: str | None = None
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    labels: dict[str, Label] = field(default_factory=dict)
    milestones: dict[int, Milestone] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    notes: dict[int, list[Note]] = field(default_factory=dict)  # issue iid -> notes
    uploads: dict[str, Upload] = field(default_factory=dict)  # secret -> upload
    hooks: dict[int, Hook] = field(default_factory=dict)
    next_iid: int = 1
    next_milestone_iid: int = 1
    created_at: datetime = field(default_factory=now)

    @property
    def path_with_namespace(self) -> str:
        return f"{self.namespace}/{self.path}"


@dataclass
class Write:
    """One state-changing request, as `writes_by` reports it."""
    method: str
    path: str
    at: datetime


@dataclass
class Delivery:
    hook_id: int
    url: str
    event: str
    payload: dict[str, Any]
    status: int | None = None
    error: str | None = None


class GitLabFake:
    """The emulator's state and app factory. One instance per test; `clock` may be replaced
    (a callable returning an aware datetime) to make timestamps deterministic."""

    def __init__(self, *, version: str = "17.6.1-ee", seed: int | None = 0):
        self.version = version
        self._clock = now
        self._last_tick: datetime | None = None
        self.max_attachment_bytes = 100 * 1024 ** 2  # GitLab's default maximum attachment size
        self.base_url = "http://gitlab.invalid"  # replaced by the served URL on start-up
        self.knobs = Knobs(seed)
        self.knobs.rate_limit_response = _rate_limited
        # GitLab's limit on creating notes (Admin > Settings > Network > Notes rate limit: 300 a
        # minute per user by default, 60 on gitlab.com): (notes, window seconds), or None.
        self.notes_limit: tuple[int, float] | None = None
        self._notes_window: dict[int, tuple[float, int]] = {}     # user id -> (window start, notes in it)
        self.users: dict[int, User] = {}
        self.tokens: dict[str, Token] = {}
        self.projects: dict[int, Project] = {}
        self.group_milestones: dict[int, Milestone] = {}  # id -> milestone of a group (namespace)
        self.writes: dict[str, list[Write]] = {}  # token -> writes
        self.deliveries: list[Delivery] = []
        self._ids: dict[str, int] = {}
        self._hook_queue: asyncio.Queue[Delivery] | None = None
        self._hook_idle: asyncio.Event | None = None

    # -- set-up (no HTTP) ---------------------------------------------------------------------

    def next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    @property
    def clock(self):
        return self._clock

    @clock.setter
    def clock(self, value) -> None:
        """Replace the time source (a callable returning an aware datetime), e.g. for exact stamps."""
        self._clock, self._last_tick = value, None

    def tick(self) -> datetime:
        """The current time; never earlier than the last one handed out (a DB clock)."""
        value = self._clock()
        if self._last_tick is not None and value < self._last_tick:
            value = self._last_tick
        self._last_tick = value
        return value

    def add_user(self, username: str, *, name: str | None = None, email: str | None = None,
                 admin: bool = False, bot: bool = False) -> User:
        user = User(self.next_id("user"), username, name or username.title(),
                    email or f"{username}@example.com", admin, bot)
        self.users[user.id] = user
        return user

    def add_token(self, user: User, *, scopes: tuple[str, ...] = ("api",), value: str | None = None) -> str:
        token = value or "glpat-" + secrets.token_urlsafe(15)
        self.tokens[token] = Token(token, user.id, scopes)
        return token

    def revoke(self, token: str) -> None:
        self.tokens[token].revoked = True

    def add_project(self, path_with_namespace: str, *, owner: User | None = None,
                    name: str | None = None) -> Project:
        namespace, _, path = path_with_namespace.rpartition("/")
        project = Project(self.next_id("project"), name or path.replace("-", " ").title(), path,
                          namespace or "root", created_at=self.tick())
        if owner is not None:
            project.members[owner.id] = OWNER
        self.projects[project.id] = project
        return project

    def add_member(self, project: Project, user: User, access_level: int) -> None:
        project.members[user.id] = access_level

    def add_project_token(self, project: Project, *, access_level: int = MAINTAINER,
                          scopes: tuple[str, ...] = ("api",)) -> tuple[User, str]:
        """A project access token: a bot user that is a member of this project only."""
        bot = self.add_user(f"project_{project.id}_bot_{secrets.token_hex(4)}",
                            name=f"{project.name} bot", email=None, bot=True)
        bot.email = f"{bot.username}@noreply.gitlab.invalid"
        project.members[bot.id] = access_level
        return bot, self.add_token(bot, scopes=scopes)

    def add_label(self, project: Project, name: str, color: str = "#6699cc") -> Label:
        label = project.labels.get(name)
        if label is None:
            label = project.labels[name] = Label(self.next_id("label"), name, color)
        return label

    def add_milestone(self, project: Project, title: str) -> Milestone:
        milestone = Milestone(self.next_id("milestone"), project.next_milestone_iid, project.id, title,
                              created_at=self.tick())
        project.next_milestone_iid += 1
        project.milestones[milestone.id] = milestone
        return milestone

    def add_group_milestone(self, group: str, title: str) -> Milestone:
        """A milestone of the group `group` (a namespace full path, e.g. "acme" or "acme/team"):
        the projects in it and in its subgroups can use it. Ids share the project milestones' sequence."""
        iid = 1 + sum(1 for m in self.group_milestones.values() if m.group == group)
        milestone = Milestone(self.next_id("milestone"), iid, None, title, created_at=self.tick(), group=group)
        self.group_milestones[milestone.id] = milestone
        return milestone

    def milestones_of(self, project: Project, *, ancestors: bool) -> list[Milestone]:
        """The project's milestones, plus (`ancestors`) those of its group and the group's parents."""
        rows = list(project.milestones.values())
        if ancestors:
            parts = project.namespace.split("/")
            groups = {"/".join(parts[:n]) for n in range(1, len(parts) + 1)}
            rows += [m for m in self.group_milestones.values() if m.group in groups]
        return rows

    def milestone(self, project: Project, milestone_id: int | None) -> Milestone | None:
        """The milestone `milestone_id` if `project` can use it (its own or an ancestor group's)."""
        return next((m for m in self.milestones_of(project, ancestors=True) if m.id == milestone_id), None)

    # -- views for tests ----------------------------------------------------------------------

    def writes_by(self, token: str) -> list[Write]:
        """Every POST/PUT/DELETE the credential made that the API accepted (2xx)."""
        return list(self.writes.get(token, []))

    def issue(self, project: Project, iid: int) -> Issue:
        return project.issues[iid]

    async def drain_hooks(self, timeout: float = 5) -> None:
        """Wait until every queued webhook delivery has been attempted."""
        if self._hook_queue is None:
            return
        async with asyncio.timeout(timeout):
            await self._hook_queue.join()

    # -- access -------------------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> tuple[User, Token]:
        value = request.headers.get("PRIVATE-TOKEN")
        if not value:
            auth = request.headers.get("Authorization", "")
            if auth[:7].lower() == "bearer ":
                value = auth[7:].strip()
        token = self.tokens.get(value or "")
        if token is None or token.revoked:
            raise ApiError(401, {"message": "401 Unauthorized"})
        if request.method not in ("GET", "HEAD") and "api" not in token.scopes:
            raise ApiError(403, {"error": "insufficient_scope", "error_description":
                                 "The request requires higher privileges than provided by the access token.",
                                 "scope": "api"})
        return self.users[token.user_id], token

    def count_note(self, user: User) -> None:
        """Raise GitLab's answer to a note over `notes_limit`: 429 with a message and, unlike
        its Rack::Attack throttles, no Retry-After nor RateLimit header. Its window is fixed:
        it starts with the first note and the count resets when it ends."""
        if self.notes_limit is None:
            return
        most, seconds = self.notes_limit
        clock = time.monotonic()
        start, count = self._notes_window.get(user.id, (clock, 0))
        if clock - start >= seconds:
            start, count = clock, 0
        self._notes_window[user.id] = (start, count + 1)
        if count >= most:
            raise ApiError(429, {"message": {"error": "This endpoint has been requested too many times. "
                                                       "Try again later."}})

    def access_level(self, user: User, project: Project) -> int:
        if user.admin:
            return OWNER
        return project.members.get(user.id, 0)

    def find_project(self, user: User, ident: str, minimum: int = GUEST) -> Project:
        """By id or URL-encoded path; 404 when invisible, 403 when visible but too low a level."""
        project = None
        if ident.isdigit():
            project = self.projects.get(int(ident))
        else:
            project = next((p for p in self.projects.values() if p.path_with_namespace == ident), None)
        if project is None or self.access_level(user, project) == 0:
            raise not_found("Project")
        if self.access_level(user, project) < minimum:
            raise forbidden()
        return project

    # -- rendering ----------------------------------------------------------------------------

    def user_json(self, user: User | None) -> dict[str, Any] | None:
        return None if user is None else user.basic(self.base_url)

    def project_json(self, project: Project, user: User) -> dict[str, Any]:
        web_url = f"{self.base_url}/{project.path_with_namespace}"
        issues = [i for i in project.issues.values()]
        return {
            "id": project.id, "description": project.description, "name": project.name,
            "name_with_namespace": f"{project.namespace.title()} / {project.name}",
            "path": project.path, "path_with_namespace": project.path_with_namespace,
            "created_at": stamp(project.created_at), "default_branch": "main", "tag_list": [], "topics": [],
            "ssh_url_to_repo": f"git@gitlab.invalid:{project.path_with_namespace}.git",
            "http_url_to_repo": f"{web_url}.git", "web_url": web_url, "readme_url": None,
            "avatar_url": None, "forks_count": 0, "star_count": 0,
            "last_activity_at": stamp(max([project.created_at] + [i.updated_at for i in issues])),
            "namespace": {"id": abs(hash(project.namespace)) % 10_000, "name": project.namespace.title(),
                          "path": project.namespace, "kind": "group", "full_path": project.namespace,
                          "parent_id": None, "avatar_url": None,
                          "web_url": f"{self.base_url}/groups/{project.namespace}"},
            "visibility": "private", "issues_enabled": True, "archived": False,
            "open_issues_count": sum(1 for i in issues if i.state == "opened"),
            "_links": {"self": f"{self.base_url}/api/v4/projects/{project.id}",
                       "issues": f"{self.base_url}/api/v4/projects/{project.id}/issues",
                       "labels": f"{self.base_url}/api/v4/projects/{project.id}/labels",
                       "members": f"{self.base_url}/api/v4/projects/{project.id}/members"},
            "permissions": {"project_access": {"access_level": self.access_level(user, project),
                                               "notification_level": 3}, "group_access": None},
        }

    def label_json(self, project: Project, label: Label) -> dict[str, Any]:
        count = sum(1 for i in project.issues.values() if label.name in i.labels and i.state == "opened")
        return {"id": label.id, "name": label.name, "color": label.color, "text_color": "#FFFFFF",
                "description": label.description, "description_html": "", "open_issues_count": count,
                "closed_issues_count": 0, "open_merge_requests_count": 0, "subscribed": False,
                "priority": None, "is_project_label": True}

    def milestone_json(self, milestone: Milestone) -> dict[str, Any]:
        if milestone.group is not None:
            owner = {"group_id": abs(hash(milestone.group)) % 10_000}
            web_url = f"{self.base_url}/groups/{milestone.group}/-/milestones/{milestone.iid}"
        else:
            owner = {"project_id": milestone.project_id}
            project = self.projects[milestone.project_id]
            web_url = f"{self.base_url}/{project.path_with_namespace}/-/milestones/{milestone.iid}"
        return {"id": milestone.id, "iid": milestone.iid, **owner,
                "title": milestone.title, "description": "", "state": milestone.state,
                "created_at": stamp(milestone.created_at), "updated_at": stamp(milestone.created_at),
                "due_date": milestone.due_date, "start_date": None, "expired": False, "web_url": web_url}

    # -- webhooks -----------------------------------------------------------------------------

    def enqueue_hooks(self, project: Project, kind: str, payload: dict[str, Any], confidential: bool) -> None:
        """Queue a delivery to every hook of `project` subscribed to `kind` ("issue"/"note")."""
        event = {"issue": "Issue Hook", "note": "Note Hook"}[kind]
        if confidential:
            event = "Confidential " + event
        for hook in project.hooks.values():
            wanted = {("issue", False): hook.issues_events, ("issue", True): hook.confidential_issues_events,
                      ("note", False): hook.note_events, ("note", True): hook.confidential_note_events}
            if wanted[(kind, confidential)] and self._hook_queue is not None:
                delivery = Delivery(hook.id, hook.url, event, payload)
                self.deliveries.append(delivery)
                self._hook_queue.put_nowait(delivery)

    async def _deliver_hooks(self, app: web.Application):
        self._hook_queue = asyncio.Queue()
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

        async def run() -> None:
            while True:
                delivery = await self._hook_queue.get()
                try:
                    project = next(p for p in self.projects.values() if delivery.hook_id in p.hooks)
                    hook = project.hooks[delivery.hook_id]
                    headers = {"Content-Type": "application/json", "X-Gitlab-Event": delivery.event,
                               "X-Gitlab-Event-UUID": str(uuid.uuid4()),
                               "X-Gitlab-Webhook-UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, hook.url)),
                               "X-Gitlab-Instance": self.base_url, "User-Agent": f"GitLab/{self.version}"}
                    if hook.token:
                        headers["X-Gitlab-Token"] = hook.token
                    async with session.post(delivery.url, data=json.dumps(delivery.payload),
                                            headers=headers) as response:
                        delivery.status = response.status
                except Exception as exc:  # a failed delivery is recorded, as GitLab's hook log does
                    delivery.error = repr(exc)
                finally:
                    self._hook_queue.task_done()

        task = asyncio.create_task(run())
        yield
        task.cancel()
        await session.close()

    # -- the app ------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=100 * 1024 ** 2)
        install_knobs(app, self.knobs)
        app.cleanup_ctx.append(self._deliver_hooks)
        install_project_routes(self, app)
        install_issue_routes(self, app)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:
        # The port is chosen when the server starts, so the external URL comes from the Host header.
        self.base_url = f"{request.scheme}://{request.host}"
        try:
            response = await handler(request)
        except ApiError as exc:
            return web.json_response(exc.body, status=exc.status, headers=exc.headers)
        except web.HTTPNotFound:
            return web.json_response({"error": "404 Not Found"}, status=404)
        if request.method in ("POST", "PUT", "DELETE") and response.status < 300:
            token = request.headers.get("PRIVATE-TOKEN") or request.headers.get("Authorization", "")[7:].strip()
            self.writes.setdefault(token, []).append(Write(request.method, request.path, self.tick()))
        return response


def _rate_limited(request: web.Request, status: int) -> web.StreamResponse:
    """Rack::Attack's throttle answer with GitLab's RateLimit-* headers (Retry-After added by Knobs)."""
    reset = int(now().timestamp()) + 60
    headers = {"RateLimit-Name": "throttle_authenticated_api", "RateLimit-Limit": "60",
               "RateLimit-Observed": "61", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
               "RateLimit-ResetTime": datetime.fromtimestamp(reset, timezone.utc).strftime(
                   "%a, %d %b %Y %H:%M:%S GMT")}
    return web.Response(status=429, text="Retry later\n", content_type="text/plain", headers=headers)


# -- shared request helpers (also used by gitlab_issues) -------------------------------------

async def body_params(request: web.Request) -> dict[str, Any]:
    """Params as Grape merges them: query string, then a JSON or form body."""
    params: dict[str, Any] = {k: v for k, v in request.query.items()}
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                raise ApiError(400, {"error": "400 Bad Request"}) from None
            if isinstance(data, dict):
                params.update(data)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items()})
    return params


def list_param(value: Any) -> list[str]:
    """A Grape array param given as a JSON list or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def paginate(request: web.Request, rows: list[Any], render) -> web.Response:
    """Offset pagination with GitLab's headers; `render(row)` -> JSON."""
    try:
        page = max(1, int(request.query.get("page", "1")))
        per_page = min(100, max(1, int(request.query.get("per_page", "20"))))
    except ValueError:
        raise ApiError(400, {"error": "page is invalid"}) from None
    total = len(rows)
    pages = max(1, -(-total // per_page))
    chunk = rows[(page - 1) * per_page: page * per_page]
    headers = {"X-Page": str(page), "X-Per-Page": str(per_page),
               "X-Next-Page": str(page + 1) if page * per_page < total else "",
               "X-Prev-Page": str(page - 1) if page > 1 else ""}
    if total <= MAX_COUNTED:
        headers.update({"X-Total": str(total), "X-Total-Pages": str(pages)})
    base = f"{request.scheme}://{request.host}{request.path}"

    def link(number: int, rel: str) -> str:
        query = [(k, v) for k, v in request.query.items() if k not in ("page", "per_page")]
        query += [("page", str(number)), ("per_page", str(per_page))]
        return f'<{base}?{urlencode(query)}>; rel="{rel}"'

    links = []
    if page > 1:
        links.append(link(page - 1, "prev"))
    if headers["X-Next-Page"]:
        links.append(link(page + 1, "next"))
    links.append(link(1, "first"))
    if total <= MAX_COUNTED:
        links.append(link(pages, "last"))
    headers["Link"] = ", ".join(links)
    return web.json_response([render(row) for row in chunk], headers=headers)
