"""The GitLab emulator's project-level endpoints: /user, /version, /users, /projects, labels,
milestones, members and hooks (see tests/fakes/gitlab.py for the behaviour it follows). Split
from gitlab.py to keep both readable; only gitlab.py imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.gitlab import GitLabFake, Hook, Project, User



def install_project_routes(fake: GitLabFake, app: web.Application) -> None:
    from tests.fakes import gitlab as g

    r = app.router

    async def get_user(request: web.Request) -> web.Response:
        user, token = fake.authenticate(request)
        body = fake.user_json(user) | {"email": user.email, "public_email": None, "is_admin": user.admin,
                                        "bot": user.bot, "created_at": g.stamp(fake.tick()),
                                        "two_factor_enabled": False, "external": False}
        return web.json_response(body)

    async def get_version(request: web.Request) -> web.Response:
        fake.authenticate(request)
        return web.json_response({"version": fake.version, "revision": "6d8c5e1a2b3",
                                  "kas": {"enabled": False, "externalUrl": None, "version": None},
                                  "enterprise": fake.version.endswith("-ee")})

    async def list_projects(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        minimum = int(request.query.get("min_access_level", "0") or 0)
        search = request.query.get("search", "").lower()
        rows = [p for p in fake.projects.values()
                if fake.access_level(user, p) and fake.access_level(user, p) >= minimum
                and (not search or search in p.path_with_namespace.lower() or search in p.name.lower())]
        if request.query.get("membership") in ("true", "1"):
            rows = [p for p in rows if user.id in p.members]
        order_by = request.query.get("order_by", "created_at")
        descending = request.query.get("sort", "desc") == "desc"
        if request.query.get("pagination") == "keyset":
            if order_by != "id":
                raise g.bad_request("Keyset pagination is not yet available for this type of request")
            return keyset(request, sorted(rows, key=lambda p: p.id, reverse=descending),
                          lambda p: fake.project_json(p, user), descending)
        key = {"id": lambda p: p.id, "name": lambda p: p.name, "path": lambda p: p.path,
               "created_at": lambda p: (p.created_at, p.id)}.get(order_by, lambda p: (p.created_at, p.id))
        rows.sort(key=key, reverse=descending)
        return g.paginate(request, rows, lambda p: fake.project_json(p, user))

    def keyset(request: web.Request, rows: list[Project], render, descending: bool) -> web.Response:
        per_page = min(100, max(1, int(request.query.get("per_page", "20"))))
        after = request.query.get("id_after") if not descending else request.query.get("id_before")
        if after:
            rows = [p for p in rows if (p.id < int(after) if descending else p.id > int(after))]
        chunk = rows[:per_page]
        headers = {}
        if len(rows) > per_page:
            query = {k: v for k, v in request.query.items() if k not in ("id_after", "id_before")}
            query["id_before" if descending else "id_after"] = str(chunk[-1].id)
            headers["Link"] = f'<{request.scheme}://{request.host}{request.path}?{urlencode(query)}>; rel="next"'
        return web.json_response([render(p) for p in chunk], headers=headers)

    async def get_project(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        return web.json_response(fake.project_json(project, user))

    async def list_labels(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        rows = sorted(project.labels.values(), key=lambda label: label.name.lower())
        return g.paginate(request, rows, lambda label: fake.label_json(project, label))

    async def create_label(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"], g.PLANNER)
        params = await g.body_params(request)
        if not params.get("name"):
            raise g.missing("name")
        if not params.get("color"):
            raise g.missing("color")
        if params["name"] in project.labels:
            raise g.ApiError(409, {"message": "Label already exists"})
        label = fake.add_label(project, params["name"], params["color"])
        label.description = params.get("description")
        return web.json_response(fake.label_json(project, label), status=201)

    def boolean(q, name: str) -> bool | None:
        """A Grape Boolean query param: None when not given, 400 when not a boolean."""
        value = q.get(name)
        if value is None:
            return None
        if value.lower() in ("true", "1", "t", "yes"):
            return True
        if value.lower() in ("false", "0", "f", "no"):
            return False
        raise g.ApiError(400, {"error": f"{name} is invalid"})

    async def list_milestones(request: web.Request) -> web.Response:
        """Project milestones; with `include_ancestors` (GitLab 16.7+) or the deprecated
        `include_parent_milestones` (mutually exclusive), also those of the project's group and
        its parent groups, as GitLab's MilestonesFinder gives them; `iids[]` is ignored then."""
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        q = request.query
        if "include_ancestors" in q and "include_parent_milestones" in q:
            raise g.ApiError(400, {"error": "include_ancestors, include_parent_milestones are mutually exclusive"})
        ancestors = bool(boolean(q, "include_ancestors") or boolean(q, "include_parent_milestones"))
        rows = sorted(fake.milestones_of(project, ancestors=ancestors), key=lambda m: m.id, reverse=True)
        state = q.get("state", "all")
        if state not in ("active", "closed", "all"):
            raise g.ApiError(400, {"error": "state does not have a valid value"})
        if state != "all":
            rows = [m for m in rows if m.state == state]
        iids = q.getall("iids[]", []) or q.getall("iids", [])
        if iids and not ancestors:
            rows = [m for m in rows if str(m.iid) in iids]
        if q.get("title"):
            rows = [m for m in rows if m.title == q["title"]]
        return g.paginate(request, rows, fake.milestone_json)

    async def create_milestone(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"], g.PLANNER)
        params = await g.body_params(request)
        if not params.get("title"):
            raise g.missing("title")
        if any(m.title == params["title"] for m in fake.milestones_of(project, ancestors=True)):
            raise g.bad_request({"title": ["already being used for another group or project milestone."]})
        milestone = fake.add_milestone(project, params["title"])
        milestone.due_date = params.get("due_date")
        return web.json_response(fake.milestone_json(milestone), status=201)

    def member_json(user: User, level: int) -> dict[str, Any]:
        return fake.user_json(user) | {"access_level": level, "created_at": g.stamp(fake.tick()),
                                       "expires_at": None, "email": user.email}

    async def list_members(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        query = request.query.get("query", "").lower()
        rows = [(fake.users[uid], level) for uid, level in sorted(project.members.items())
                if query in fake.users[uid].username.lower() or query in fake.users[uid].name.lower()]
        return g.paginate(request, rows, lambda row: member_json(*row))

    async def project_users(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        search = request.query.get("search", "").lower()
        rows = [fake.users[uid] for uid in sorted(project.members)
                if search in fake.users[uid].username.lower() or search in fake.users[uid].name.lower()
                or search == fake.users[uid].email.lower()]
        return g.paginate(request, rows, fake.user_json)

    async def list_users(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        search = request.query.get("search", "").lower()
        username = request.query.get("username")
        rows = [u for u in fake.users.values()
                if (username is None or u.username == username)
                and (not search or search in u.username.lower() or search in u.name.lower()
                     or (user.admin and search == u.email.lower()))]
        return g.paginate(request, rows, fake.user_json)

    def hook_json(project: Project, hook: Hook) -> dict[str, Any]:
        return {"id": hook.id, "url": hook.url, "project_id": project.id, "push_events": False,
                "issues_events": hook.issues_events, "note_events": hook.note_events,
                "confidential_issues_events": hook.confidential_issues_events,
                "confidential_note_events": hook.confidential_note_events,
                "enable_ssl_verification": True, "created_at": g.stamp(hook.created_at)}

    def truthy(value: Any) -> bool:
        return value in (True, "true", "1", 1)

    async def create_hook(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"], g.MAINTAINER)
        params = await g.body_params(request)
        if not params.get("url"):
            raise g.missing("url")
        hook = g.Hook(fake.next_id("hook"), params["url"], params.get("token"),
                    truthy(params.get("issues_events")), truthy(params.get("note_events")),
                    truthy(params.get("confidential_issues_events")),
                    truthy(params.get("confidential_note_events")), fake.tick())
        project.hooks[hook.id] = hook
        return web.json_response(hook_json(project, hook), status=201)

    async def list_hooks(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"], g.MAINTAINER)
        return g.paginate(request, list(project.hooks.values()), lambda h: hook_json(project, h))

    async def delete_hook(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"], g.MAINTAINER)
        if project.hooks.pop(int(request.match_info["hook_id"]), None) is None:
            raise g.not_found()
        return web.Response(status=204)

    r.add_get("/api/v4/user", get_user)
    r.add_get("/api/v4/version", get_version)
    r.add_get("/api/v4/users", list_users)
    r.add_get("/api/v4/projects", list_projects)
    r.add_get("/api/v4/projects/{id}", get_project)
    r.add_get("/api/v4/projects/{id}/labels", list_labels)
    r.add_post("/api/v4/projects/{id}/labels", create_label)
    r.add_get("/api/v4/projects/{id}/milestones", list_milestones)
    r.add_post("/api/v4/projects/{id}/milestones", create_milestone)
    r.add_get("/api/v4/projects/{id}/members/all", list_members)
    r.add_get("/api/v4/projects/{id}/members", list_members)
    r.add_get("/api/v4/projects/{id}/users", project_users)
    r.add_get("/api/v4/projects/{id}/hooks", list_hooks)
    r.add_post("/api/v4/projects/{id}/hooks", create_hook)
    r.add_delete("/api/v4/projects/{id}/hooks/{hook_id:\\d+}", delete_hook)
