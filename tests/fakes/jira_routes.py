"""HTTP handlers of the Jira emulator (see tests/fakes/jira.py for the behaviour they copy)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes import jira_search
from tests.fakes.jira_comments import add_comment_routes, add_comment_to
from tests.fakes.jira_webhooks import add_webhook_routes
from tests.fakes.jira_state import (
    EDITABLE, FIELDS, ISSUE_TYPES, PRIORITIES, RESOLUTIONS, STATUSES, SUBTASK_TYPES, TEAM_OPTIONS,
    TRANSITIONS, USER, Attachment, FieldError, Issue, JiraError, read_properties)

if TYPE_CHECKING:
    from tests.fakes.jira import JiraEmulator

USER_SEARCH_HORIZON = 1000     # user searches look no further than the thousandth user
PERMISSIONS = {"BROWSE_PROJECTS": "read", "CREATE_ISSUES": "write", "EDIT_ISSUES": "write",
               "TRANSITION_ISSUES": "write", "ADD_COMMENTS": "write", "CREATE_ATTACHMENTS": "write",
               "DELETE_ISSUES": "write", "ASSIGN_ISSUES": "write", "ADMINISTER_PROJECTS": "admin"}


def add_routes(app: web.Application, emu: "JiraEmulator") -> None:

    versions = ("2", "3") if emu.cloud else ("2",)

    def route(method: str, path: str, cloud_only: bool = False):
        def register(handler):
            for v in versions if not cloud_only else ("2", "3") if emu.cloud else ():
                async def bound(request, _v=v):
                    return await handler(request, _v)
                app.router.add_route(method, f"/rest/api/{v}{path}", bound)
            return handler
        return register

    async def body(request: web.Request) -> Any:
        try:
            return await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise JiraError(400, ["Unexpected character in the request body; expected JSON."]) from None

    def field_errors(fn):
        try:
            return fn()
        except FieldError as exc:
            raise JiraError(400, [], {exc.field_id: exc.message}) from None

    def user_of(request):
        return request[USER]

    # -- server, user, catalogue ----------------------------------------------------------------

    @route("GET", "/serverInfo")
    async def server_info(request, v):
        out = {"baseUrl": emu.render.base, "serverTitle": "Jira",
               "serverTime": emu.render.time(emu.now())}
        if emu.cloud:
            out.update(version="1001.0.0-SNAPSHOT", versionNumbers=[1001, 0, 0],
                       deploymentType="Cloud", buildNumber=100285, buildDate="2026-11-20T00:00:00"
                       ".000+0000", scmInfo="0d6c0c1a", defaultLocale={"locale": "en_US"},
                       displayUrl=emu.render.base)
        else:
            out.update(version="9.12.15", versionNumbers=[9, 12, 15], deploymentType="Server",
                       buildNumber=9120015, buildDate="2024-10-01T00:00:00.000+0200",
                       scmInfo="4b9e8e0c", serverTimeZone=str(emu.tz))
        return web.json_response(out)

    @route("GET", "/myself")
    async def myself(request, v):
        out = emu.render.user(user_of(request), v)
        out.update(locale="en_US", groups={"size": 1, "items": []},
                   applicationRoles={"size": 1, "items": []})
        return web.json_response(out)

    def find_users(query: str) -> list:
        query = query.lower()
        return [u for u in emu.users.values() if not query or any(
            s.lower().startswith(query) for s in (u.display_name, u.email, u.name,
                                                  *u.display_name.split()))]

    @route("GET", "/user/search")
    async def user_search(request, v):
        q = request.query.get("query" if emu.cloud else "username", "")
        if not emu.cloud and "username" not in request.query:
            raise JiraError(400, ["The username query parameter was not provided"])
        start = int(request.query.get("startAt", 0))
        size = int(request.query.get("maxResults", 50))
        return web.json_response([emu.render.user(u, v) for u in find_users(q)][start:start + size])

    @route("GET", "/user/assignable/search")
    async def assignable(request, v):
        # As the API description says: the users in [startAt, startAt + maxResults), up to the
        # thousandth, and of those only the assignable ones (a page may be short, even empty).
        project = emu.project_for(user_of(request), request.query.get("project", ""))
        q = request.query.get("query" if emu.cloud else "username", "")
        start = jira_search._int(request.query.get("startAt"), 0)
        size = jira_search._int(request.query.get("maxResults"), 50)
        window = find_users(q)[:USER_SEARCH_HORIZON][start:start + size]
        return web.json_response([emu.render.user(u, v) for u in window if u.level(project.key) == "write"])

    @route("GET", "/user")
    async def get_user(request, v):
        wanted = request.query.get("accountId") or request.query.get("username")
        for u in emu.users.values():
            if wanted in (u.account_id, u.name):
                return web.json_response(emu.render.user(u, v))
        raise JiraError(404, [f"The user with the key '{wanted}' does not exist."])

    @route("GET", "/field")
    async def fields(request, v):
        out = []
        for fid, (name, typ, items, system, _) in FIELDS.items():
            custom = fid.startswith("customfield_")
            schema: dict[str, Any] = {"type": typ}
            if items:
                schema["items"] = items
            if custom:
                schema.update(custom=system, customId=int(fid.split("_")[1]))
            else:
                schema["system"] = system
            out.append({"id": fid, "key": fid, "name": name, "custom": custom, "orderable": True,
                        "navigable": True, "searchable": True, "schema": schema,
                        "clauseNames": [f"cf[{fid.split('_')[1]}]", name] if custom else [fid]})
        return web.json_response(out)

    @route("GET", "/status")
    async def statuses(request, v):
        return web.json_response([emu.render.status(s.id, v) for s in STATUSES])

    @route("GET", "/priority")
    async def priorities(request, v):
        return web.json_response([emu.render.named("priority", p, v) for p, _ in PRIORITIES])

    @route("GET", "/resolution")
    async def resolutions(request, v):
        return web.json_response([emu.render.named("resolution", r, v) for r, _ in RESOLUTIONS])

    @route("GET", "/issuetype")
    async def issuetypes(request, v):
        return web.json_response([emu.render.named("issuetype", t, v)
                                  for t, _ in ISSUE_TYPES + SUBTASK_TYPES])

    def visible_projects(user):
        return [p for p in emu.projects.values() if user.level(p.key) != "none"]

    @route("GET", "/project")
    async def projects(request, v):
        return web.json_response([emu.render.project(p, v) for p in visible_projects(user_of(request))])

    @route("GET", "/project/search", cloud_only=True)
    async def project_search(request, v):
        found = visible_projects(user_of(request))
        start = int(request.query.get("startAt", 0))
        size = int(request.query.get("maxResults", 50))
        return web.json_response({"startAt": start, "maxResults": size, "total": len(found),
                                  "isLast": start + size >= len(found), "values": [
                                      emu.render.project(p, v) for p in found[start:start + size]]})

    @route("GET", "/project/{projectIdOrKey}")
    async def project(request, v):
        p = emu.project_for(user_of(request), request.match_info["projectIdOrKey"])
        return web.json_response(emu.render.project(p, v, full=True))

    @route("GET", "/project/{projectIdOrKey}/versions")
    async def versions_(request, v):
        p = emu.project_for(user_of(request), request.match_info["projectIdOrKey"])
        return web.json_response([emu.render.version(p, vid, v) for vid, _ in p.versions])

    @route("GET", "/project/{projectIdOrKey}/statuses")
    async def project_statuses(request, v):
        emu.project_for(user_of(request), request.match_info["projectIdOrKey"])
        return web.json_response([dict(emu.render.named("issuetype", t, v),
                                       statuses=[emu.render.status(s.id, v) for s in STATUSES])
                                  for t, _ in ISSUE_TYPES])

    @route("GET", "/mypermissions")
    async def mypermissions(request, v):
        user = user_of(request)
        wanted = [p for p in request.query.get("permissions", "").split(",") if p]
        if emu.cloud and not wanted:
            raise JiraError(400, ["The permissions query parameter was not provided"])
        key = request.query.get("projectKey")
        level = emu.project_for(user, key).key if key else None
        out = {}
        for name in wanted or list(PERMISSIONS):
            need = PERMISSIONS.get(name)
            if need is None:
                raise JiraError(404, [f"No permission with key '{name}' exists."])
            have = (user.admin if need == "admin" else
                    any((user.level(p.key) if level is None or p.key == level else "none") in (
                        ("read", "write") if need == "read" else ("write",))
                        for p in emu.projects.values()))
            out[name] = {"id": str(abs(hash(name)) % 100), "key": name, "name": name.title(),
                         "type": "PROJECT", "description": "", "havePermission": bool(have)}
        return web.json_response({"permissions": out})

    # -- metadata ----------------------------------------------------------------------------

    def field_meta(fid: str, v: str, project, new_style: bool) -> dict:
        name, typ, items, system, _ = FIELDS[fid]
        schema: dict[str, Any] = {"type": typ}
        if items:
            schema["items"] = items
        schema["custom" if fid.startswith("customfield_") else "system"] = system
        out: dict[str, Any] = {"required": fid in ("summary", "issuetype", "project"),
                               "schema": schema, "name": name, "key": fid,
                               "hasDefaultValue": fid == "priority",
                               "operations": ["add", "set", "remove"] if typ == "array" else ["set"]}
        if new_style:
            out["fieldId"] = fid
        allowed = {"priority": [emu.render.named("priority", p, v) for p, _ in PRIORITIES],
                   "customfield_10011": [emu.render.named("customfield_10011", o, v)
                                         for o, _ in TEAM_OPTIONS],
                   "fixVersions": [emu.render.version(project, vid, v) for vid, _ in project.versions],
                   "issuetype": [emu.render.named("issuetype", t, v) for t, _ in ISSUE_TYPES]}
        if fid in allowed:
            out["allowedValues"] = allowed[fid]
        return out

    creatable = [f for f, spec in FIELDS.items() if spec[4]]

    def meta_page(request, entries: list, cloud_key: str) -> web.Response:
        # startAt / maxResults (default 50, at most emu.meta_max_results: 200 as in Jira); Cloud
        # names the list per endpoint and gives no isLast, Data Center says "values" and isLast.
        start = jira_search._int(request.query.get("startAt"), 0)
        size = max(1, min(jira_search._int(request.query.get("maxResults"), 50), emu.meta_max_results))
        page = {"maxResults": size, "startAt": start, "total": len(entries)}
        shown = entries[start:start + size]
        return web.json_response(dict(page, **{cloud_key: shown}) if emu.cloud
                                 else dict(page, isLast=start + size >= len(entries), values=shown))

    @route("GET", "/issue/createmeta/{projectIdOrKey}/issuetypes")
    async def createmeta_types(request, v):
        emu.project_for(user_of(request), request.match_info["projectIdOrKey"])
        return meta_page(request, [emu.render.named("issuetype", t, v) for t, _ in ISSUE_TYPES], "issueTypes")

    @route("GET", "/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}")
    async def createmeta_fields(request, v):
        p = emu.project_for(user_of(request), request.match_info["projectIdOrKey"])
        if request.match_info["issueTypeId"] not in dict(ISSUE_TYPES):
            raise JiraError(404, ["Issue type with given ID does not exist or you do not have "
                                  "permission to see it."])
        return meta_page(request, [field_meta(f, v, p, True) for f in creatable], "fields")

    @route("GET", "/issue/createmeta")
    async def createmeta_legacy(request, v):
        user = user_of(request)
        keys = [k for k in request.query.get("projectKeys", "").split(",") if k]
        projects_ = [emu.project_for(user, k) for k in keys] if keys else visible_projects(user)
        with_fields = "projects.issuetypes.fields" in request.query.get("expand", "")
        out = []
        for p in projects_:
            types = []
            for t, _ in ISSUE_TYPES:
                entry = emu.render.named("issuetype", t, v)
                if with_fields:
                    entry["fields"] = {f: field_meta(f, v, p, False) for f in creatable}
                types.append(entry)
            out.append(dict(emu.render.project(p, v), issuetypes=types))
        return web.json_response({"expand": "projects", "projects": out})

    @route("GET", "/issue/{issueIdOrKey}/editmeta")
    async def editmeta(request, v):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"])
        if user_of(request).level(issue.project.key) != "write":
            return web.json_response({"fields": {}})
        return web.json_response({"fields": {f: field_meta(f, v, issue.project, False)
                                             for f in EDITABLE + ["issuetype"]}})

    # -- issues -------------------------------------------------------------------------------

    def read_fields(raw: dict, v: str, project, allowed: list[str]) -> dict[str, Any]:
        values = {}
        for fid, value in raw.items():
            if fid not in allowed:
                raise JiraError(400, [], {fid: f"Field '{fid}' cannot be set. It is not on the "
                                               f"appropriate screen, or unknown."})
            values[fid] = field_errors(lambda: emu.render.field_in(fid, value, v, project))
        return values

    @route("POST", "/issue")
    async def create_issue(request, v):
        user = user_of(request)
        data = await body(request)
        raw = dict(data.get("fields") or {})
        ref = raw.pop("project", None)
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("key")):
            raise JiraError(400, [], {"project": "Specify a valid project ID or key"})
        p = emu.project_for(user, str(ref.get("id") or ref.get("key")))
        if user.level(p.key) != "write":
            raise JiraError(403, ["You do not have permission to create issues in this project."])
        if "issuetype" not in raw:
            raise JiraError(400, [], {"issuetype": "Specify an issue type"})
        if "summary" not in raw:
            raise JiraError(400, [], {"summary": "You must specify a summary of the issue."})
        values = read_fields(raw, v, p, creatable)
        properties = read_properties(data)
        issue = emu.new_issue(user, p, values)
        issue.properties.update(properties)
        emu.record(request, issue)
        emu.emit("jira:issue_created", issue, user)
        return web.json_response({"id": issue.id, "key": issue.key,
                                  "self": f"{emu.render.base}/rest/api/{v}/issue/{issue.id}"},
                                 status=201)

    @route("GET", "/issue/{issueIdOrKey}")
    async def get_issue(request, v):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"])
        q = request.query
        fields = jira_search._list_param(q.getall("fields")) if "fields" in q else None
        props = jira_search._list_param(q.getall("properties")) if "properties" in q else []
        return web.json_response(emu.render.issue(issue, v, fields, jira_search._expand(
            q.get("expand")), props))

    @route("PUT", "/issue/{issueIdOrKey}")
    async def edit_issue(request, v):
        user = user_of(request)
        issue = emu.issue_for(user, request.match_info["issueIdOrKey"], "edit")
        data = await body(request)
        values = read_fields(data.get("fields") or {}, v, issue.project, EDITABLE + ["issuetype"])
        comments = []
        for fid, ops in (data.get("update") or {}).items():
            if fid == "comment":
                comments += [op["add"]["body"] for op in ops if "add" in op]
                continue
            if fid not in EDITABLE:
                raise JiraError(400, [], {fid: f"Field '{fid}' cannot be set. It is not on the "
                                               f"appropriate screen, or unknown."})
            current = values.get(fid, issue.fields.get(fid))
            for op in ops:
                (verb, arg), = op.items()
                if verb == "set":
                    current = field_errors(lambda: emu.render.field_in(fid, arg, v, issue.project))
                elif verb in ("add", "remove") and fid in ("labels", "fixVersions"):
                    item = field_errors(lambda: emu.render.field_in(fid, [arg], v, issue.project))[0]
                    current = [x for x in current if x != item] + ([item] if verb == "add" else [])
                else:
                    raise JiraError(400, [], {fid: f"Operation '{verb}' is not supported."})
            values[fid] = current
        emu.record(request, issue)
        items = emu.change(issue, user, values)
        for text in comments:
            add_comment_to(emu, issue, user, emu.render.body_in(text, v, "comment"))
        if items:
            emu.emit("jira:issue_updated", issue, user, changelog=items)
        if request.query.get("returnIssue") == "true":
            return web.json_response(emu.render.issue(issue, v))
        return web.Response(status=204)

    @route("DELETE", "/issue/{issueIdOrKey}")
    async def delete_issue(request, v):
        user = user_of(request)
        issue = emu.issue_for(user, request.match_info["issueIdOrKey"], "write")
        subtasks = [emu.issues[i] for i in issue.subtasks if i in emu.issues]
        if subtasks and request.query.get("deleteSubtasks") != "true":
            raise JiraError(400, [f"The issue '{issue.key}' has subtasks; deleteSubtasks=true deletes "
                                  f"them with it."])
        emu.record(request, issue)
        for gone in subtasks + [issue]:
            emu.emit("jira:issue_deleted", gone, user)
            del emu.issues[gone.id]
        return web.Response(status=204)

    @route("GET", "/issue/{issueIdOrKey}/changelog", cloud_only=True)
    async def changelog(request, v):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"])
        start = int(request.query.get("startAt", 0))
        size = min(int(request.query.get("maxResults", 100)), 100)
        page = issue.histories[start:start + size]
        return web.json_response({"startAt": start, "maxResults": size,
                                  "total": len(issue.histories),
                                  "isLast": start + size >= len(issue.histories),
                                  "values": [emu.render.history(h, v) for h in page]})

    # -- transitions --------------------------------------------------------------------------

    def transition_json(t, v, with_fields):
        out = {"id": t.id, "name": t.name, "to": emu.render.status(t.to, v), "hasScreen":
               t.requires_resolution, "isGlobal": False, "isInitial": False, "isAvailable": True,
               "isConditional": False, "isLooped": False}
        if with_fields:
            out["fields"] = {"resolution": {
                "required": True, "schema": {"type": "resolution", "system": "resolution"},
                "name": "Resolution", "key": "resolution", "operations": ["set"],
                "allowedValues": [emu.render.named("resolution", r, v) for r, _ in RESOLUTIONS]}
            } if t.requires_resolution else {}
        return out

    @route("GET", "/issue/{issueIdOrKey}/transitions")
    async def transitions(request, v):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"])
        if user_of(request).level(issue.project.key) != "write":
            return web.json_response({"expand": "transitions", "transitions": []})
        with_fields = "transitions.fields" in request.query.get("expand", "")
        available = [t for t in TRANSITIONS if issue.fields["status"] in t.sources]
        wanted = request.query.get("transitionId")
        if wanted:
            available = [t for t in available if t.id == wanted]
        return web.json_response({"expand": "transitions", "transitions": [
            transition_json(t, v, with_fields) for t in available]})

    @route("POST", "/issue/{issueIdOrKey}/transitions")
    async def do_transition(request, v):
        user = user_of(request)
        issue = emu.issue_for(user, request.match_info["issueIdOrKey"], "transition")
        data = await body(request)
        wanted = str((data.get("transition") or {}).get("id", ""))
        t = next((t for t in TRANSITIONS if t.id == wanted), None)
        if t is None or issue.fields["status"] not in t.sources:
            raise JiraError(400, [f"Transition id '{wanted}' is not valid for this issue."])
        raw = dict(data.get("fields") or {})
        resolution = raw.pop("resolution", None)
        values = read_fields(raw, v, issue.project, EDITABLE)
        if t.requires_resolution:
            if resolution is None:
                raise JiraError(400, [], {"resolution": "Resolution is required."})
            values["resolution"] = field_errors(
                lambda: emu.render.field_in("resolution", resolution, v, issue.project))
            values["resolutiondate"] = emu.now()
        elif resolution is not None:
            raise JiraError(400, [], {"resolution": "Field 'resolution' cannot be set. It is not "
                                                    "on the appropriate screen, or unknown."})
        if t.clears_resolution:
            values.update(resolution=None, resolutiondate=None)
        values["status"] = t.to
        emu.record(request, issue)
        items = emu.change(issue, user, values)
        for op in (data.get("update") or {}).get("comment", []):
            if "add" in op:
                add_comment_to(emu, issue, user, emu.render.body_in(op["add"]["body"], v, "comment"))
        emu.emit("jira:issue_updated", issue, user, changelog=items)
        return web.Response(status=204)

    # -- attachments --------------------------------------------------------------------------

    @route("POST", "/issue/{issueIdOrKey}/attachments")
    async def add_attachments(request, v):
        if request.headers.get("X-Atlassian-Token", "").lower() != "no-check":
            return web.Response(status=403, text="XSRF check failed")
        user = user_of(request)
        issue = emu.issue_for(user, request.match_info["issueIdOrKey"], "write")
        reader = await request.multipart()
        added = []
        async for part in reader:
            if part.name != "file" or not part.filename:
                continue
            content = bytes(await part.read())
            mime = part.headers.get("Content-Type", "application/octet-stream")
            added.append(Attachment(str(next(emu._other_ids)), issue.id, part.filename, mime,
                                    content, user, emu.now()))
        if not added:
            raise JiraError(400, ["No attachments were found in the request."])
        issue.attachments += added
        emu.record(request, issue)
        items = [{"field": "Attachment", "fieldtype": "jira", "fieldId": "attachment", "from": None,
                  "fromString": None, "to": a.id, "toString": a.filename} for a in added]
        emu.touch(issue, user, items)
        emu.emit("jira:issue_updated", issue, user, changelog=items)
        return web.json_response([emu.render.attachment(a, v) for a in added])

    def find_attachment(request, need="read") -> tuple[Issue, Attachment]:
        for issue in emu.issues.values():
            for a in issue.attachments:
                if a.id == request.match_info["id"]:
                    emu.issue_for(user_of(request), issue.id, need)
                    return issue, a
        raise JiraError(404, [f"The attachment with id '{request.match_info['id']}' does not exist"])

    @route("GET", "/attachment/{id}")
    async def attachment_meta(request, v):
        return web.json_response(emu.render.attachment(find_attachment(request)[1], v))

    @route("DELETE", "/attachment/{id}")
    async def delete_attachment(request, v):
        issue, a = find_attachment(request, "write")
        issue.attachments.remove(a)
        emu.record(request, issue)
        emu.touch(issue, user_of(request), [{"field": "Attachment", "fieldtype": "jira",
                                             "fieldId": "attachment", "from": a.id,
                                             "fromString": a.filename, "to": None,
                                             "toString": None}])
        return web.Response(status=204)

    async def content(request, v=None):
        _, a = find_attachment(request)
        if emu.cloud and v is not None and request.query.get("redirect") != "false":
            # Cloud answers with a redirect to its media service unless told redirect=false.
            raise web.HTTPSeeOther(f"{emu.render.base}/media/file/{a.id}/binary")
        return web.Response(body=a.content, content_type=a.mime_type, headers={
            "Content-Disposition": f'attachment; filename="{a.filename}"'})

    if emu.cloud:
        route("GET", "/attachment/content/{id}")(content)
        app.router.add_get("/media/file/{id}/binary", content)
    else:
        app.router.add_get("/secure/attachment/{id}/{filename}", content)

    # -- properties ---------------------------------------------------------------------------

    @route("GET", "/issue/{issueIdOrKey}/properties")
    async def property_keys(request, v):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"])
        base = f"{emu.render.base}/rest/api/{v}/issue/{issue.id}/properties"
        return web.json_response({"keys": [{"self": f"{base}/{k}", "key": k}
                                           for k in issue.properties]})

    @route("GET", "/issue/{issueIdOrKey}/properties/{propertyKey}")
    async def get_property(request, v):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"])
        key = request.match_info["propertyKey"]
        if key not in issue.properties:
            raise JiraError(404, [f"The property with key '{key}' does not exist."])
        return web.json_response({"key": key, "value": issue.properties[key]})

    @route("PUT", "/issue/{issueIdOrKey}/properties/{propertyKey}")
    async def put_property(request, v):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"], "write")
        key = request.match_info["propertyKey"]
        existed = key in issue.properties
        issue.properties[key] = await body(request)     # Jira does not bump `updated` here
        emu.record(request, issue)
        return web.Response(status=200 if existed else 201)

    @route("DELETE", "/issue/{issueIdOrKey}/properties/{propertyKey}")
    async def delete_property(request, v):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"], "write")
        key = request.match_info["propertyKey"]
        if issue.properties.pop(key, None) is None:
            raise JiraError(404, [f"The property with key '{key}' does not exist."])
        emu.record(request, issue)
        return web.Response(status=204)

    # -- search -------------------------------------------------------------------------------

    for method in ("GET", "POST"):
        route(method, "/search")(lambda request, v: jira_search.legacy_search(request, emu, v))
        route(method, "/search/jql", cloud_only=True)(
            lambda request, v: jira_search.enhanced_search(request, emu, v))
    route("POST", "/search/approximate-count", cloud_only=True)(
        lambda request, v: jira_search.approximate_count(request, emu, v))

    add_comment_routes(app, emu, route, body, field_errors)
    add_webhook_routes(app, emu, route, body)
