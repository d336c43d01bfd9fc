"""JQL evaluation and the search endpoints of the Jira emulator: legacy /search (startAt,
maxResults, total), Cloud's enhanced /search/jql (nextPageToken, isLast, default fields = id) and
Cloud's /search/approximate-count ({"count": N}; exact here, as Jira's is once its index caught up).
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.fakes import jira_jql
from tests.fakes.jira_jql import JqlError, compare
from tests.fakes.jira_state import ISSUE_TYPES, STATUSES, SUBTASK_TYPES, USER, Issue, JiraError, User

if TYPE_CHECKING:
    from tests.fakes.jira import JiraEmulator

USER_FIELDS = ("assignee", "reporter", "creator")


def _check_projects(emu: "JiraEmulator", query: jira_jql.Query, user: User) -> None:
    for clause in query.clauses:
        if clause.field != "project":
            continue
        for value in clause.values:
            visible = [p for p in emu.projects.values() if user.level(p.key) != "none"]
            if not any(value.upper() == p.key or value in (p.id, p.name) for p in visible):
                raise JqlError(f"The value '{value}' does not exist for the field 'project'.")


def _clause(emu: "JiraEmulator", clause: jira_jql.Clause, issue: Issue, user: User, tz: ZoneInfo) -> bool:
    name, op, values = clause.field, clause.op, clause.values
    positive = op in ("=", "in")
    if any(isinstance(v, jira_jql.Function) for v in values):
        if name not in USER_FIELDS:
            raise JqlError(f"The function 'currentUser' is not supported by the '{name}' field.")
        # currentUser() is the searching user (for a webhook's filter, the webhook's owner).
        values = [user.account_id if isinstance(v, jira_jql.Function) else v for v in values]
    prop = jira_jql.property_path(name)
    if prop is not None:
        # Jira indexes an entity property for JQL only where an installed app declares it: on
        # any other property the clause is valid and matches nothing.
        if prop[0] not in emu.indexed_properties:
            return False
        value: Any = issue.properties.get(prop[0])
        for part in prop[1]:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:       # as for fields, != and NOT IN never match an absent value
            return False
        hit = str(value) in values
        return hit if positive else not hit
    if name in ("updated", "updateddate", "created", "createddate"):
        if op in ("in", "not in") or len(values) != 1:
            raise JqlError(f"The operator '{op}' is not supported by the '{name}' field.")
        bound = jira_jql.parse_date(values[0], name.replace("date", ""), tz)
        moment = issue.updated if name.startswith("updated") else issue.created
        return compare(moment, op, bound)
    if name == "id" and op in (">", ">=", "<", "<="):
        return compare(int(issue.id), op, int(values[0]))
    candidates: set[str]
    if name == "project":
        candidates = {issue.project.key.lower(), issue.project.id, issue.project.name.lower()}
    elif name in ("key", "issuekey", "id"):
        candidates = {issue.id} | {k.lower() for k, i in emu.keys.items() if i == issue.id}
    elif name in ("issuetype", "type"):
        type_id = issue.fields["issuetype"]
        candidates = {type_id, dict(ISSUE_TYPES + SUBTASK_TYPES)[type_id].lower()}
    elif name == "status":
        status = next(s for s in STATUSES if s.id == issue.fields["status"])
        candidates = {status.id, status.name.lower()}
    elif name == "labels":
        candidates = {label.lower() for label in issue.fields.get("labels", [])}
    elif name in USER_FIELDS:
        u = issue.fields.get(name)
        candidates = ({u.account_id.lower(), u.name.lower(), u.email.lower()} if u
                      else {"empty", "null"})
    else:
        raise JqlError(f"The operator '{op}' is not supported by the '{name}' field.")
    if op not in ("=", "!=", "in", "not in"):
        raise JqlError(f"The operator '{op}' is not supported by the '{name}' field.")
    hit = any(v.lower() in candidates for v in values)
    return hit if positive else not hit


def evaluate(emu: "JiraEmulator", query: jira_jql.Query, issue: Issue, user: User) -> bool:
    tz = ZoneInfo(user.time_zone) if user.time_zone else emu.tz
    return all(_clause(emu, clause, issue, user, tz) for clause in query.clauses)


def _sort_key(issue: Issue, name: str):
    if name in ("updated", "updateddate"):
        return issue.updated
    if name in ("created", "createddate"):
        return issue.created
    if name in ("key", "issuekey"):
        project, _, number = issue.key.partition("-")
        return (project, int(number))
    if name == "id":
        return int(issue.id)
    if name == "priority":
        return int(issue.fields.get("priority") or 99)
    raise JqlError(f"Field '{name}' does not support sorting.")


def run(emu: "JiraEmulator", jql: str, user: User) -> list[Issue]:
    """Issues visible to `user` matching `jql`, ordered as asked (ties by id, as Jira's index)."""
    query = jira_jql.parse(jql)
    _check_projects(emu, query, user)
    found = [i for i in emu.issues.values()
             if user.level(i.project.key) != "none" and evaluate(emu, query, i, user)]
    found.sort(key=lambda i: int(i.id))
    order = query.order or [("key", "DESC")]
    for name, direction in reversed(order):
        found.sort(key=lambda i: _sort_key(i, name), reverse=direction == "DESC")
    return found


def _list_param(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


async def _params(request: web.Request) -> dict[str, Any]:
    if request.method == "POST":
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise JiraError(400, ["Invalid request payload. Refer to the REST API documentation "
                                  "and try again."])
        return body
    query = request.query
    out: dict[str, Any] = {k: query.get(k) for k in query}
    for many in ("fields", "properties"):
        if many in query:
            out[many] = query.getall(many)
    return out


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise JiraError(400, [f"'{value}' is not a valid number."]) from None


def _expand(value: Any) -> set[str]:
    return set(_list_param(value) or [])


async def legacy_search(request: web.Request, emu: "JiraEmulator", v: str) -> web.Response:
    if emu.legacy_search_gone:
        raise JiraError(410, ["The requested API has been removed. Please migrate to the "
                              "/rest/api/3/search/jql API. A full migration guideline is "
                              "available at https://developer.atlassian.com/changelog/#CHANGE-2046"])
    params = await _params(request)
    if request.method == "POST" and not emu.cloud and "properties" in params:
        # Data Center's SearchRequestBean has no "properties" (the jira library works around it).
        raise JiraError(400, ['Unrecognized field "properties" (Class com.atlassian.jira.rest.v2.'
                              'search.SearchRequestBean), not marked as ignorable'])
    found = run(emu, params.get("jql") or "", request[USER])
    start = _int(params.get("startAt"), 0)
    size = min(_int(params.get("maxResults"), 50), emu.max_results)
    fields = _list_param(params.get("fields")) or ["*navigable"]
    page = found[start:start + size]
    return web.json_response({
        "expand": "schema,names", "startAt": start, "maxResults": size, "total": len(found),
        "issues": [emu.render.issue(i, v, fields, _expand(params.get("expand")),
                                    _list_param(params.get("properties")) or []) for i in page]})


async def enhanced_search(request: web.Request, emu: "JiraEmulator", v: str) -> web.Response:
    params = await _params(request)
    jql = params.get("jql") or ""
    token = params.get("nextPageToken")
    start = 0
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            start, token_jql = decoded["o"], decoded["q"]
        except (ValueError, KeyError, TypeError):
            raise JiraError(400, ["The provided next page token is invalid or expired."]) from None
        if token_jql != jql:
            raise JiraError(400, ["The provided next page token is invalid or expired."])
    found = run(emu, jql, request[USER])
    fields = _list_param(params.get("fields")) or ["id"]
    size = min(_int(params.get("maxResults"), 50), emu.max_results if fields != ["id"] else 5000)
    page = found[start:start + size]
    issues = []
    properties = _list_param(params.get("properties")) or []
    for issue in page:
        if fields == ["id"]:
            bean: dict[str, Any] = {"id": issue.id}
            if properties:      # asked-for properties come whatever the fields
                keys = issue.properties if "*all" in properties else properties
                bean["properties"] = {k: issue.properties[k] for k in keys if k in issue.properties}
            issues.append(bean)
        else:
            issues.append(emu.render.issue(issue, v, fields, _expand(params.get("expand")), properties))
    out: dict[str, Any] = {"issues": issues, "isLast": start + size >= len(found)}
    if not out["isLast"]:
        out["nextPageToken"] = base64.urlsafe_b64encode(
            json.dumps({"o": start + size, "q": jql}).encode()).decode()
    return web.json_response(out)


async def approximate_count(request: web.Request, emu: "JiraEmulator", v: str) -> web.Response:
    """How many issues the user sees match the body's `jql`; 400 for JQL that does not parse
    or has no search restriction (Cloud wants bounded JQL here, as in /search/jql)."""
    jql = (await _params(request)).get("jql") or ""
    if not jira_jql.parse(jql).clauses:
        raise JqlError("Unbounded JQL queries are not allowed here. Please add a search restriction "
                       "to your query.")
    return web.json_response({"count": len(run(emu, jql, request[USER]))})
