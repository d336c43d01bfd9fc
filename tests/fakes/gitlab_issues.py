"""The GitLab emulator's issue, note and upload endpoints (see tests/fakes/gitlab.py for the
behaviour it follows). Split from gitlab.py to keep both readable; only gitlab.py imports it."""

from __future__ import annotations

import mimetypes
import re
import secrets
from urllib.parse import quote, unquote
from datetime import date
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.gitlab import GitLabFake, Issue, Project, User

ISSUE_TYPES = ("issue", "incident", "test_case", "task")
EDITABLE = ("title", "description", "labels", "add_labels", "remove_labels", "assignee_id", "assignee_ids",
            "milestone_id", "due_date", "weight", "confidential", "state_event", "issue_type",
            "discussion_locked")


def install_issue_routes(fake: GitLabFake, app: web.Application) -> None:
    from tests.fakes import gitlab as g

    r = app.router

    # -- rendering ----------------------------------------------------------------------------

    def issue_json(project: Project, issue: Issue) -> dict[str, Any]:
        web_url = f"{fake.base_url}/{project.path_with_namespace}/-/issues/{issue.iid}"
        assignees = [fake.user_json(fake.users[uid]) for uid in issue.assignee_ids]
        milestone = fake.milestone(project, issue.milestone_id) if issue.milestone_id else None
        notes = project.notes.get(issue.iid, [])
        api = f"{fake.base_url}/api/v4/projects/{project.id}"
        return {
            "id": issue.id, "iid": issue.iid, "project_id": project.id, "title": issue.title,
            "description": issue.description, "state": issue.state,
            "created_at": g.stamp(issue.created_at), "updated_at": g.stamp(issue.updated_at),
            "closed_at": g.stamp(issue.closed_at),
            "closed_by": fake.user_json(fake.users.get(issue.closed_by_id)) if issue.closed_by_id else None,
            "labels": sorted(issue.labels, key=str.lower),
            "milestone": fake.milestone_json(milestone) if milestone else None,
            "assignees": assignees, "assignee": assignees[0] if assignees else None,
            "author": fake.user_json(fake.users[issue.author_id]), "type": issue.issue_type.upper(),
            "user_notes_count": sum(1 for n in notes if not n.system), "merge_requests_count": 0,
            "upvotes": 0, "downvotes": 0, "due_date": issue.due_date, "confidential": issue.confidential,
            "discussion_locked": issue.discussion_locked, "issue_type": issue.issue_type, "web_url": web_url,
            "time_stats": {"time_estimate": 0, "total_time_spent": 0, "human_time_estimate": None,
                           "human_total_time_spent": None},
            "task_completion_status": {"count": 0, "completed_count": 0}, "weight": issue.weight,
            "blocking_issues_count": 0, "has_tasks": False, "severity": "UNKNOWN",
            "_links": {"self": f"{api}/issues/{issue.iid}", "notes": f"{api}/issues/{issue.iid}/notes",
                       "award_emoji": f"{api}/issues/{issue.iid}/award_emoji",
                       "project": api, "closed_as_duplicate_of": None},
            "references": {"short": f"#{issue.iid}", "relative": f"#{issue.iid}",
                           "full": f"{project.path_with_namespace}#{issue.iid}"},
            "moved_to_id": None, "service_desk_reply_to": None, "subscribed": False,
        }

    def note_json(project: Project, issue: Issue, note) -> dict[str, Any]:
        return {"id": note.id, "type": None, "body": note.body, "attachment": None,
                "author": fake.user_json(fake.users[note.author_id]),
                "created_at": g.stamp(note.created_at), "updated_at": g.stamp(note.updated_at),
                "system": note.system, "noteable_id": issue.id, "noteable_type": "Issue",
                "project_id": project.id, "resolvable": False,
                # `confidential` is the field's older name; GitLab still sends both.
                "confidential": note.internal, "internal": note.internal,
                "imported": False, "imported_from": "none", "noteable_iid": issue.iid, "commands_changes": {}}

    def hook_user(user: User) -> dict[str, Any]:
        return {"id": user.id, "name": user.name, "username": user.username, "avatar_url": None,
                "email": "[REDACTED]"}

    def hook_project(project: Project) -> dict[str, Any]:
        web_url = f"{fake.base_url}/{project.path_with_namespace}"
        return {"id": project.id, "name": project.name, "description": project.description,
                "web_url": web_url, "namespace": project.namespace.title(),
                "path_with_namespace": project.path_with_namespace, "default_branch": "main",
                "visibility_level": 0}

    def issue_hook(project: Project, issue: Issue, user: User, action: str, changes: dict[str, Any]) -> None:
        if not project.hooks:
            return      # nobody to tell; the payload's label counts cost a pass over all issues
        attributes = issue_json(project, issue)
        attributes.update({"action": action, "author_id": issue.author_id, "assignee_ids": issue.assignee_ids,
                           "milestone_id": issue.milestone_id, "url": attributes["web_url"],
                           "labels": [fake.label_json(project, project.labels[name]) for name in issue.labels
                                      if name in project.labels]})
        payload = {"object_kind": "issue",
                   "event_type": "confidential_issue" if issue.confidential else "issue",
                   "user": hook_user(user), "project": hook_project(project), "object_attributes": attributes,
                   "labels": attributes["labels"], "changes": changes,
                   "assignees": [hook_user(fake.users[uid]) for uid in issue.assignee_ids],
                   "repository": {"name": project.name, "url": attributes["web_url"].split("/-/")[0]}}
        fake.enqueue_hooks(project, "issue", payload, issue.confidential)

    def note_hook(project: Project, issue: Issue, user: User, note, action: str = "create") -> None:
        attributes = note_json(project, issue, note)
        attributes.update({"note": note.body, "author_id": note.author_id,
                           "url": f"{issue_json(project, issue)['web_url']}#note_{note.id}", "action": action})
        confidential = issue.confidential or note.internal  # an internal note goes to confidential hooks only
        payload = {"object_kind": "note",
                   "event_type": "confidential_note" if confidential else "note",
                   "user": hook_user(user), "project_id": project.id, "project": hook_project(project),
                   "object_attributes": attributes, "issue": issue_json(project, issue)}
        fake.enqueue_hooks(project, "note", payload, confidential)

    # -- helpers ------------------------------------------------------------------------------

    def visible(user: User, project: Project, issue: Issue) -> bool:
        if not issue.confidential:
            return True
        return (fake.access_level(user, project) >= g.PLANNER or user.id == issue.author_id
                or user.id in issue.assignee_ids)

    def note_visible(user: User, project: Project, note) -> bool:
        """Internal notes: for the project's members from Planner up, and their author."""
        return not note.internal or fake.access_level(user, project) >= g.PLANNER or user.id == note.author_id

    def find_issue(user: User, project: Project, iid: str) -> Issue:
        issue = project.issues.get(int(iid)) if iid.isdigit() else None
        if issue is None or not visible(user, project, issue):
            raise g.record_not_found()
        return issue

    def system_note(project: Project, issue: Issue, user: User, body: str, at) -> None:
        note = g.Note(fake.next_id("note"), issue.iid, user.id, body, True, at, at)
        project.notes.setdefault(issue.iid, []).append(note)

    def label_refs(project: Project, names: list[str]) -> str:
        return " ".join(f"~{project.labels[name].id}" for name in names if name in project.labels)

    def apply_labels(project: Project, issue: Issue, wanted: list[str]) -> None:
        """Set labels, creating missing ones; a scoped label (`scope::value`) replaces any other
        label of the same scope (GitLab's mutually exclusive scoped labels)."""
        result: list[str] = []
        for name in wanted:
            fake.add_label(project, name)
            if "::" in name:
                scope = name.rsplit("::", 1)[0]
                result = [x for x in result if not ("::" in x and x.rsplit("::", 1)[0] == scope)]
            if name not in result:
                result.append(name)
        issue.labels = result

    def int_or_none(value: Any, name: str) -> int | None:
        if value in (None, "", "null"):
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise g.ApiError(400, {"error": f"{name} is invalid"}) from None

    def parse_due(value: Any) -> str | None:
        if value in (None, ""):
            return None
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise g.ApiError(400, {"error": "due_date is invalid"}) from None

    def apply_fields(project: Project, issue: Issue, user: User, params: dict[str, Any]) -> dict[str, Any]:
        """Apply editable params; return GitLab's `changes` map ({field: {previous, current}})
        and add the system notes GitLab writes for them."""
        at = fake.tick()
        changes: dict[str, Any] = {}

        def changed(name: str, old: Any, new: Any) -> bool:
            if old != new:
                changes[name] = {"previous": old, "current": new}
                return True
            return False

        if "title" in params:
            title = str(params["title"] or "").strip()
            if not title:
                raise g.bad_request({"title": ["can't be blank"]})
            if len(title) > 255:
                raise g.bad_request({"title": ["is too long (maximum is 255 characters)"]})
            if changed("title", issue.title, title):
                system_note(project, issue, user, f"changed title from **{{-{changes['title']['previous']}-}}** "
                                                  f"to **{{+{title}+}}**", at)
                issue.title = title
        if "description" in params and changed("description", issue.description, params["description"]):
            issue.description = params["description"]
            system_note(project, issue, user, "changed the description", at)
        old_labels = list(issue.labels)
        if "labels" in params:
            apply_labels(project, issue, g.list_param(params["labels"]))
        if "add_labels" in params:
            apply_labels(project, issue, issue.labels + g.list_param(params["add_labels"]))
        if "remove_labels" in params:
            removed = set(g.list_param(params["remove_labels"]))
            issue.labels = [name for name in issue.labels if name not in removed]
        if sorted(old_labels) != sorted(issue.labels):
            changes["labels"] = {"previous": old_labels, "current": list(issue.labels)}
            added = [n for n in issue.labels if n not in old_labels]
            gone = [n for n in old_labels if n not in issue.labels]
            parts = []
            if added:
                parts.append(f"added {label_refs(project, added)}")
            if gone:
                parts.append(f"removed {label_refs(project, gone)}")
            system_note(project, issue, user,
                        " and ".join(parts) + (" labels" if len(added) + len(gone) > 1 else " label"), at)
        if "assignee_ids" in params or "assignee_id" in params:
            raw = params.get("assignee_ids", params.get("assignee_id"))
            ids = [int_or_none(v, "assignee_ids") for v in (raw if isinstance(raw, list) else g.list_param(raw))]
            ids = [i for i in ids if i]
            ids = [i for i in ids if i in fake.users and project.members.get(i)]
            if changed("assignees", issue.assignee_ids, ids):
                for uid in ids:
                    if uid not in changes["assignees"]["previous"]:
                        system_note(project, issue, user, f"assigned to @{fake.users[uid].username}", at)
                for uid in changes["assignees"]["previous"]:
                    if uid not in ids:
                        system_note(project, issue, user, f"unassigned @{fake.users[uid].username}", at)
                issue.assignee_ids = ids
        if "milestone_id" in params:
            milestone_id = int_or_none(params["milestone_id"], "milestone_id") or None
            milestone = fake.milestone(project, milestone_id)  # the project's or an ancestor group's
            if milestone_id is not None and milestone is None:
                raise g.not_found("Milestone")
            if changed("milestone_id", issue.milestone_id, milestone_id):
                issue.milestone_id = milestone_id
                if milestone is None:
                    text = "removed milestone"
                elif milestone.group is not None:   # group milestones have name references only
                    text = f'changed milestone to %"{milestone.title}"'
                else:
                    text = f"changed milestone to %{milestone.iid}"
                system_note(project, issue, user, text, at)
        if "due_date" in params:
            due = parse_due(params["due_date"])
            if changed("due_date", issue.due_date, due):
                issue.due_date = due
                text = (f"changed due date to {date.fromisoformat(due).strftime('%B %-d, %Y')}" if due
                        else "removed due date")
                system_note(project, issue, user, text, at)
        if "weight" in params:
            weight = int_or_none(params["weight"], "weight")
            if weight is not None and weight < 0:
                raise g.bad_request({"weight": ["must be greater than or equal to 0"]})
            if changed("weight", issue.weight, weight):
                issue.weight = weight
                system_note(project, issue, user, f"changed weight to **{weight}**" if weight is not None
                            else "removed the weight", at)
        if "confidential" in params:
            value = params["confidential"] in (True, "true", "1", 1)
            if changed("confidential", issue.confidential, value):
                issue.confidential = value
                system_note(project, issue, user, "made the issue confidential" if value
                            else "made the issue visible to everyone", at)
        if "issue_type" in params:
            if params["issue_type"] not in ISSUE_TYPES:
                raise g.ApiError(400, {"error": "issue_type does not have a valid value"})
            if changed("issue_type", issue.issue_type, params["issue_type"]):
                issue.issue_type = params["issue_type"]
        if "discussion_locked" in params:
            changed("discussion_locked", issue.discussion_locked, params["discussion_locked"] in (True, "true"))
            issue.discussion_locked = params["discussion_locked"] in (True, "true")
        event = params.get("state_event")
        if event not in (None, "close", "reopen"):
            raise g.ApiError(400, {"error": "state_event does not have a valid value"})
        if event == "close" and issue.state == "opened":
            issue.state, issue.closed_at, issue.closed_by_id = "closed", at, user.id
            changes["state_id"] = {"previous": 1, "current": 2}
            changes["closed_at"] = {"previous": None, "current": g.stamp(at)}
            system_note(project, issue, user, "closed", at)
        elif event == "reopen" and issue.state == "closed":
            issue.state, issue.closed_at, issue.closed_by_id = "opened", None, None
            changes["state_id"] = {"previous": 2, "current": 1}
            system_note(project, issue, user, "reopened", at)
        if changes:
            changes["updated_at"] = {"previous": g.stamp(issue.updated_at), "current": g.stamp(at)}
            issue.updated_at = at
        return changes

    # -- issues -------------------------------------------------------------------------------

    def matching(user: User, project: Project, q, *, state: str) -> list[Issue]:
        """The issues of `project` that `user` sees and the query's filters keep (as the list
        and the statistics share them)."""
        rows = [i for i in project.issues.values() if visible(user, project, i)]
        if state in ("opened", "closed"):
            rows = [i for i in rows if i.state == state]
        iids = q.getall("iids[]", []) or q.getall("iids", [])
        if iids:
            wanted = {int(x) for x in iids if x.isdigit()}
            rows = [i for i in rows if i.iid in wanted]
        if "labels" in q:
            labels = g.list_param(q["labels"])
            if labels == ["None"]:
                rows = [i for i in rows if not i.labels]
            elif labels == ["Any"]:
                rows = [i for i in rows if i.labels]
            else:
                rows = [i for i in rows if all(name in i.labels for name in labels)]
        for name, attr, compare in (("updated_after", "updated_at", lambda v, b: v >= b),
                                    ("updated_before", "updated_at", lambda v, b: v <= b),
                                    ("created_after", "created_at", lambda v, b: v >= b),
                                    ("created_before", "created_at", lambda v, b: v <= b)):
            if q.get(name):
                try:
                    bound = g.parse_time(q[name])
                except ValueError:
                    raise g.ApiError(400, {"error": f"{name} is invalid"}) from None
                rows = [i for i in rows if compare(getattr(i, attr), bound)]
        if q.get("milestone"):
            title = q["milestone"]
            if title == "None":
                rows = [i for i in rows if i.milestone_id is None]
            else:
                rows = [i for i in rows if i.milestone_id and fake.milestone(project, i.milestone_id).title == title]
        if q.get("assignee_id"):
            rows = [i for i in rows if int(q["assignee_id"]) in i.assignee_ids]
        if q.get("author_id"):
            rows = [i for i in rows if i.author_id == int(q["author_id"])]
        if q.get("confidential") in ("true", "false"):
            rows = [i for i in rows if i.confidential == (q["confidential"] == "true")]
        if q.get("search"):
            # GitLab: every word of 3+ characters must occur (ILIKE) in one of the `in` fields.
            scopes = g.list_param(q.get("in", "title,description"))
            words = [w.lower() for w in q["search"].split() if len(w) >= 3]

            def matches(issue: Issue) -> bool:
                text = " ".join(getattr(issue, s) or "" for s in scopes if s in ("title", "description"))
                return all(w in text.lower() for w in words)
            rows = [i for i in rows if matches(i)]
        return rows

    async def list_issues(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        q = request.query
        rows = matching(user, project, q, state=q.get("state", "all"))
        order_by = q.get("order_by", "created_at")
        if order_by not in ("created_at", "updated_at", "title", "due_date", "priority", "relative_position",
                            "label_priority", "milestone_due", "popularity", "weight"):
            raise g.ApiError(400, {"error": "order_by does not have a valid value"})
        sort = q.get("sort", "desc")
        if sort not in ("asc", "desc"):
            raise g.ApiError(400, {"error": "sort does not have a valid value"})
        attr = order_by if order_by in ("created_at", "updated_at", "title") else "created_at"
        # GitLab breaks ties by id, descending whichever the sort (Issuable.sort_by_attribute).
        rows.sort(key=lambda i: i.id, reverse=True)
        rows.sort(key=lambda i: getattr(i, attr), reverse=sort == "desc")
        return g.paginate(request, rows, lambda i: issue_json(project, i))

    async def issues_statistics(request: web.Request) -> web.Response:
        """Counts of the issues the list's filters keep, by state (GitLab ignores `state` here);
        `scope` defaults to created_by_me, as GitLab's does, unlike the list's."""
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        q = request.query
        rows = matching(user, project, q, state="all")
        scope = q.get("scope", "created_by_me")
        if scope == "created_by_me":
            rows = [i for i in rows if i.author_id == user.id]
        elif scope == "assigned_to_me":
            rows = [i for i in rows if user.id in i.assignee_ids]
        elif scope != "all":
            raise g.ApiError(400, {"error": "scope does not have a valid value"})
        closed = sum(i.state == "closed" for i in rows)
        return web.json_response({"statistics": {"counts": {"all": len(rows), "closed": closed,
                                                            "opened": len(rows) - closed}}})

    async def get_issue(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        return web.json_response(issue_json(project, find_issue(user, project, request.match_info["iid"])))

    async def create_issue(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"], g.GUEST)
        params = await g.body_params(request)
        if "title" not in params:
            raise g.missing("title")
        at = fake.tick()
        issue = g.Issue(fake.next_id("issue"), project.next_iid, project.id, "", None, user.id, at, at)
        probe = dict(params)
        probe.pop("state_event", None)
        issue.title = "\0"  # any real title differs, so apply_fields validates and sets it
        apply_fields(project, issue, user, {k: v for k, v in probe.items() if k in EDITABLE})
        project.notes.pop(issue.iid, None)  # creation values make no system notes
        issue.created_at = issue.updated_at = at
        project.issues[issue.iid] = issue
        project.next_iid += 1
        issue_hook(project, issue, user, "open", {})
        return web.json_response(issue_json(project, issue), status=201)

    async def edit_issue(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        issue = find_issue(user, project, request.match_info["iid"])
        if fake.access_level(user, project) < g.PLANNER and user.id != issue.author_id:
            raise g.forbidden()
        params = await g.body_params(request)
        given = {k: v for k, v in params.items() if k in EDITABLE}
        if not given:
            raise g.ApiError(400, {"error": ", ".join(EDITABLE) + " are missing, at least one parameter "
                                                                  "must be provided"})
        state_before = issue.state
        changes = apply_fields(project, issue, user, given)
        if changes:
            action = ("close" if issue.state != state_before and issue.state == "closed" else
                      "reopen" if issue.state != state_before else "update")
            issue_hook(project, issue, user, action, changes)
        return web.json_response(issue_json(project, issue))

    async def delete_issue(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        issue = find_issue(user, project, request.match_info["iid"])
        if fake.access_level(user, project) < g.OWNER:
            raise g.forbidden()
        del project.issues[issue.iid]
        project.notes.pop(issue.iid, None)
        return web.Response(status=204)

    # -- notes --------------------------------------------------------------------------------

    async def list_notes(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        issue = find_issue(user, project, request.match_info["iid"])
        order_by = request.query.get("order_by", "created_at")
        if order_by not in ("created_at", "updated_at"):
            raise g.ApiError(400, {"error": "order_by does not have a valid value"})
        rows = sorted((n for n in project.notes.get(issue.iid, []) if note_visible(user, project, n)),
                      key=lambda n: (getattr(n, order_by), n.id),
                      reverse=request.query.get("sort", "desc") == "desc")
        return g.paginate(request, rows, lambda n: note_json(project, issue, n))

    def find_note(user: User, project: Project, issue: Issue, note_id: str):
        for note in project.notes.get(issue.iid, []):
            if str(note.id) == note_id and note_visible(user, project, note):
                return note
        raise g.record_not_found()

    async def get_note(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        issue = find_issue(user, project, request.match_info["iid"])
        note = find_note(user, project, issue, request.match_info["note_id"])
        return web.json_response(note_json(project, issue, note))

    async def create_note(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        issue = find_issue(user, project, request.match_info["iid"])
        fake.count_note(user)
        params = await g.body_params(request)
        if "body" not in params:
            raise g.missing("body")
        if not str(params["body"]).strip():
            raise g.bad_request({"note": ["can't be blank"]})
        if len(str(params["body"])) > 1_000_000:
            raise g.bad_request({"note": ["is too long (maximum is 1000000 characters)"]})
        # `internal` overrides the older `confidential` when both are given.
        internal = params.get("internal", params.get("confidential", False))
        if internal not in (True, False, "true", "false", "1", "0", 1, 0):
            raise g.ApiError(400, {"error": "internal is invalid"})
        at = fake.tick()
        note = g.Note(fake.next_id("note"), issue.iid, user.id, str(params["body"]), False, at, at,
                      internal=internal in (True, "true", "1", 1))
        project.notes.setdefault(issue.iid, []).append(note)
        issue.updated_at = at  # a note touches its issue
        note_hook(project, issue, user, note)
        return web.json_response(note_json(project, issue, note), status=201)

    async def edit_note(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        issue = find_issue(user, project, request.match_info["iid"])
        note = find_note(user, project, issue, request.match_info["note_id"])
        if note.system or note.author_id != user.id:
            raise g.forbidden()     # only the author edits a note (administrators neither)
        params = await g.body_params(request)
        if not str(params.get("body") or "").strip():
            raise g.missing("body")
        at = fake.tick()
        if note.body != params["body"]:
            note.body, note.updated_at, issue.updated_at = str(params["body"]), at, at
            note_hook(project, issue, user, note, "update")
        return web.json_response(note_json(project, issue, note))

    async def delete_note(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        issue = find_issue(user, project, request.match_info["iid"])
        note = find_note(user, project, issue, request.match_info["note_id"])
        if note.author_id != user.id and fake.access_level(user, project) < g.MAINTAINER:
            raise g.forbidden()
        project.notes[issue.iid].remove(note)
        issue.updated_at = fake.tick()
        return web.Response(status=204)

    # -- uploads ------------------------------------------------------------------------------

    async def create_upload(request: web.Request) -> web.Response:
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"], g.GUEST)
        if not request.content_type.startswith("multipart/"):
            raise g.ApiError(400, {"error": "file is invalid"})
        reader = await request.multipart()
        upload = None
        async for part in reader:
            if part.name != "file" or not part.filename:
                await part.release()
                continue
            data = bytearray()
            while chunk := await part.read_chunk(65536):
                data.extend(chunk)
                if len(data) > fake.max_attachment_bytes:
                    raise g.ApiError(413, {"message": "413 Request Entity Too Large"})
            content_type = part.headers.get("Content-Type") or ""
            if not content_type or content_type == "application/octet-stream":
                content_type = mimetypes.guess_type(part.filename)[0] or "application/octet-stream"
            # Rack unescapes a %-encoded multipart file name (aiohttp clients send one); then
            # CarrierWave's sanitising: anything but word characters, ".", "-" and "+" becomes "_".
            filename = re.sub(r"[^\w.\-+]", "_", unquote(part.filename))
            upload = g.Upload(fake.next_id("upload"), secrets.token_hex(16), filename, bytes(data),
                              content_type, user.id, fake.tick())
        if upload is None:
            raise g.ApiError(400, {"error": "file is invalid"})
        project.uploads[upload.secret] = upload
        url = f"/uploads/{upload.secret}/{quote(upload.filename)}"
        alt = upload.filename.rsplit(".", 1)[0]
        image = upload.content_type.startswith("image/")
        return web.json_response({"id": upload.id, "alt": alt, "url": url,
                                  "full_path": f"/-/project/{project.id}{url}",
                                  "markdown": f"![{alt}]({url})" if image else f"[{upload.filename}]({url})"},
                                 status=201)

    def file_response(upload) -> web.Response:
        disposition = "inline" if upload.content_type.startswith("image/") else "attachment"
        return web.Response(body=upload.content, content_type=upload.content_type, headers={
            "Content-Disposition": f'{disposition}; filename="{upload.filename}"'})

    async def download_upload(request: web.Request) -> web.Response:
        """API download by secret and filename (GitLab 17.4+)."""
        user, _ = fake.authenticate(request)
        project = fake.find_project(user, request.match_info["id"])
        upload = project.uploads.get(request.match_info["secret"])
        if upload is None or upload.filename != request.match_info["filename"]:
            raise g.record_not_found()
        return file_response(upload)

    async def web_upload(request: web.Request) -> web.Response:
        """The web route of `full_path` (/-/project/:id/uploads/:secret/:filename); GitLab answers
        a private project's upload to a token holder with access, 404 otherwise."""
        try:
            user, _ = fake.authenticate(request)
            project = fake.find_project(user, request.match_info["id"])
        except g.ApiError:
            raise web.HTTPNotFound() from None
        upload = project.uploads.get(request.match_info["secret"])
        if upload is None or upload.filename != request.match_info["filename"]:
            raise web.HTTPNotFound()
        return file_response(upload)

    base = "/api/v4/projects/{id}/issues"
    r.add_get(base, list_issues)
    r.add_get("/api/v4/projects/{id}/issues_statistics", issues_statistics)
    r.add_post(base, create_issue)
    r.add_get(base + "/{iid}", get_issue)
    r.add_put(base + "/{iid}", edit_issue)
    r.add_delete(base + "/{iid}", delete_issue)
    r.add_get(base + "/{iid}/notes", list_notes)
    r.add_post(base + "/{iid}/notes", create_note)
    r.add_get(base + "/{iid}/notes/{note_id}", get_note)
    r.add_put(base + "/{iid}/notes/{note_id}", edit_note)
    r.add_delete(base + "/{iid}/notes/{note_id}", delete_note)
    r.add_post("/api/v4/projects/{id}/uploads", create_upload)
    r.add_get("/api/v4/projects/{id}/uploads/{secret}/{filename}", download_upload)
    r.add_get("/-/project/{id}/uploads/{secret}/{filename}", web_upload)
