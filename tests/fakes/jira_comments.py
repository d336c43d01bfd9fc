"""Comments in the Jira emulator: listing, adding (with entity properties and `visibility`),
reading, editing and deleting, with Jira's default comment permissions. Part of the emulator in
tests/fakes/jira.py (which documents the behaviour)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes import jira_search
from tests.fakes.jira_state import USER, Comment, Issue, JiraError, User, read_properties

if TYPE_CHECKING:
    from tests.fakes.jira import JiraEmulator


def add_comment_to(emu: "JiraEmulator", issue: Issue, user: User, text: Any,
                   properties: dict[str, Any] | None = None,
                   visibility: dict[str, Any] | None = None) -> Comment:
    """Add a comment (its body already read by Renderer.body_in) and tell the webhooks."""
    now = emu.now()
    comment = Comment(str(next(emu._other_ids)), user, text, now, now, user, dict(properties or {}),
                      visibility)
    issue.comments.append(comment)
    issue.updated = now
    emu.emit("comment_created", issue, user, comment=comment)
    return comment


def read_visibility(data: dict) -> dict[str, Any] | None:
    """The `visibility` of a comment request (Visibility: type group|role, value or, for a
    group, identifier), or None; 400 for one Jira would not take."""
    raw = data.get("visibility")
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("group", "role") or not (
            raw.get("value") or (raw.get("type") == "group" and raw.get("identifier"))):
        raise JiraError(400, [], {"commentLevel": "Visibility needs a type (group or role) and the "
                                                  "group's or role's name."})
    return {k: raw[k] for k in ("type", "value", "identifier") if raw.get(k) is not None}


def add_comment_routes(app: web.Application, emu: "JiraEmulator", route, body, field_errors) -> None:
    """`route`, `body` and `field_errors` are jira_routes' registration, JSON-body and
    field-error helpers."""

    def user_of(request):
        return request[USER]

    @route("GET", "/issue/{issueIdOrKey}/comment")
    async def comments(request, v):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"])
        start = int(request.query.get("startAt", 0))
        size = min(int(request.query.get("maxResults", 5000)), 5000)
        expand = jira_search._expand(request.query.get("expand"))
        ordered = sorted(issue.comments, key=lambda c: c.created,
                         reverse=request.query.get("orderBy") == "-created")
        return web.json_response({"startAt": start, "maxResults": size, "total": len(ordered),
                                  "comments": [emu.render.comment(c, issue, v, expand)
                                               for c in ordered[start:start + size]]})

    @route("POST", "/issue/{issueIdOrKey}/comment")
    async def add_comment(request, v):
        user = user_of(request)
        issue = emu.issue_for(user, request.match_info["issueIdOrKey"], "comment")
        data = await body(request)
        if data.get("body") in (None, ""):
            raise JiraError(400, [], {"comment": "Comment body can not be empty!"})
        text = field_errors(lambda: emu.render.body_in(data["body"], v, "comment"))
        properties = read_properties(data)
        visibility = read_visibility(data)
        emu.record(request, issue)
        comment = add_comment_to(emu, issue, user, text, properties, visibility)
        return web.json_response(emu.render.comment(comment, issue, v, {"properties"} if properties
                                                    else set()), status=201)

    def find_comment(request, need):
        issue = emu.issue_for(user_of(request), request.match_info["issueIdOrKey"], need)
        for c in issue.comments:
            if c.id == request.match_info["id"]:
                return issue, c
        raise JiraError(404, [f"Can not find a comment for the id: {request.match_info['id']}."])

    @route("GET", "/issue/{issueIdOrKey}/comment/{id}")
    async def get_comment(request, v):
        issue, c = find_comment(request, "read")
        return web.json_response(emu.render.comment(c, issue, v, jira_search._expand(
            request.query.get("expand"))))

    def may_change(request, c: Comment, verb: str) -> None:
        # The default permission scheme: everyone may edit / delete their own comments; "Edit
        # All Comments" / "Delete All Comments" belong to administrators. Jira answers 400 here
        # (the API description lists no 403 for these calls).
        user = user_of(request)
        if c.author is not user and not user.admin:
            raise JiraError(400, [f"You do not have the permission to {verb} this comment."])

    @route("PUT", "/issue/{issueIdOrKey}/comment/{id}")
    async def edit_comment(request, v):
        issue, c = find_comment(request, "comment")
        may_change(request, c, "edit")
        data = await body(request)
        c.body = field_errors(lambda: emu.render.body_in(data.get("body"), v, "comment"))
        if "visibility" in data:      # "Optional on create and update": absent keeps it
            c.visibility = read_visibility(data)
        c.updated, c.update_author = emu.now(), user_of(request)
        issue.updated = c.updated
        emu.record(request, issue)
        emu.emit("comment_updated", issue, user_of(request), comment=c)
        return web.json_response(emu.render.comment(c, issue, v, jira_search._expand(request.query.get("expand"))))

    @route("DELETE", "/issue/{issueIdOrKey}/comment/{id}")
    async def delete_comment(request, v):
        issue, c = find_comment(request, "comment")
        may_change(request, c, "delete")
        issue.comments.remove(c)
        issue.updated = emu.now()
        emu.record(request, issue)
        emu.emit("comment_deleted", issue, user_of(request), comment=c)
        return web.Response(status=204)
