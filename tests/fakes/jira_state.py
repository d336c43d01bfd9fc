"""In-memory state of the Jira emulator: users, projects, the workflow and field catalogue,
issues, its error types, Jira's timestamp format, and its own minimal ADF <-> text helpers.

Part of the emulator in tests/fakes/jira.py (which documents the behaviour); the HTTP handlers are
in jira_routes.py, jira_search.py and jira_webhooks.py.
"""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

USER = web.AppKey("jira_user", object)   # the authenticated User of a request


class JiraError(Exception):
    """Answered as Jira's error body with `status`."""

    def __init__(self, status: int, messages: list[str] | None = None,
                 errors: dict[str, str] | None = None):
        super().__init__(status, messages, errors)
        self.status = status
        self.messages = messages or []
        self.errors = errors or {}

    def response(self) -> web.Response:
        return web.json_response({"errorMessages": self.messages, "errors": self.errors},
                                 status=self.status)


class FieldError(ValueError):
    """A field value Jira refuses: becomes {"errorMessages": [], "errors": {field: message}}."""

    def __init__(self, field_id: str, message: str):
        super().__init__(message)
        self.field_id = field_id
        self.message = message


@dataclass(eq=False)
class User:
    account_id: str          # Cloud identity
    name: str                # Server/DC username
    display_name: str
    email: str
    token: str               # Cloud API token, or the Server PAT
    password: str            # Server basic auth password
    time_zone: str | None = None
    admin: bool = False
    access: dict[str, str] = field(default_factory=dict)   # project key -> none|read|write

    def level(self, project_key: str) -> str:
        return self.access.get(project_key, "write")


@dataclass
class Status:
    id: str
    name: str
    category: str            # new | indeterminate | done


@dataclass
class Transition:
    id: str
    name: str
    sources: tuple[str, ...]  # status ids it is available from
    to: str                   # status id
    requires_resolution: bool = False
    clears_resolution: bool = False


STATUSES = [Status("10000", "To Do", "new"), Status("3", "In Progress", "indeterminate"),
            Status("10001", "Done", "done")]
TRANSITIONS = [
    Transition("11", "Start Progress", ("10000",), "3"),
    Transition("21", "Done", ("10000", "3"), "10001", requires_resolution=True),
    Transition("41", "Stop Progress", ("3",), "10000"),
    Transition("31", "Reopen", ("10001",), "10000", clears_resolution=True),
]
CATEGORIES = {"new": (2, "To Do", "blue-gray"), "indeterminate": (4, "In Progress", "yellow"),
              "done": (3, "Done", "green")}
PRIORITIES = [("1", "Highest"), ("2", "High"), ("3", "Medium"), ("4", "Low"), ("5", "Lowest")]
RESOLUTIONS = [("10000", "Done"), ("10001", "Won't Do"), ("10002", "Duplicate")]
ISSUE_TYPES = [("10001", "Task"), ("10002", "Bug"), ("10003", "Story")]
# In the site's catalogue (GET /issuetype) but not in the projects' schemes: sub-tasks exist only
# as tests seed them (JiraEmulator.new_issue with a "parent"), enough for DELETE's subtask rule.
SUBTASK_TYPES = [("10004", "Sub-task")]
TEAM_OPTIONS = [("10100", "Red"), ("10101", "Blue")]

# Field catalogue: id -> (name, schema type, items, system/custom id, settable on create/edit).
FIELDS: dict[str, tuple[str, str, str | None, str, bool]] = {
    "summary": ("Summary", "string", None, "summary", True),
    "description": ("Description", "string", None, "description", True),
    "issuetype": ("Issue Type", "issuetype", None, "issuetype", True),
    "project": ("Project", "project", None, "project", True),
    "status": ("Status", "status", None, "status", False),
    "priority": ("Priority", "priority", None, "priority", True),
    "labels": ("Labels", "array", "string", "labels", True),
    "assignee": ("Assignee", "user", None, "assignee", True),
    "reporter": ("Reporter", "user", None, "reporter", True),
    "duedate": ("Due date", "date", None, "duedate", True),
    "fixVersions": ("Fix Version/s", "array", "version", "fixVersions", True),
    "resolution": ("Resolution", "resolution", None, "resolution", False),
    "resolutiondate": ("Resolved", "datetime", None, "resolutiondate", False),
    "created": ("Created", "datetime", None, "created", False),
    "updated": ("Updated", "datetime", None, "updated", False),
    "comment": ("Comment", "comments-page", None, "comment", False),
    "attachment": ("Attachment", "array", "attachment", "attachment", False),
    "customfield_10010": ("Story Points", "number", None, "com.atlassian.jira.plugin.system."
                          "customfieldtypes:float", True),
    "customfield_10011": ("Team", "option", None, "com.atlassian.jira.plugin.system."
                          "customfieldtypes:select", True),
    "customfield_10012": ("Customer", "string", None, "com.atlassian.jira.plugin.system."
                          "customfieldtypes:textfield", True),
    # A multi-line text field: ADF on Cloud's v3 like the description, wiki markup on Data Center.
    "customfield_10013": ("Steps", "string", None, "com.atlassian.jira.plugin.system."
                          "customfieldtypes:textarea", True),
    "parent": ("Parent", "issuelink", None, "parent", False),
    "subtasks": ("Sub-tasks", "array", "issuelinks", "subtasks", False),
}
RICH_TEXT = ("description", "customfield_10013")
EDITABLE = [f for f, spec in FIELDS.items() if spec[4] and f not in ("project", "issuetype")]


@dataclass
class Project:
    id: str
    key: str
    name: str
    versions: list[tuple[str, str]]      # (id, name)
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))


@dataclass
class Comment:
    id: str
    author: User
    body: Any                 # ADF dict on Cloud, wiki string on Server
    created: datetime
    updated: datetime
    update_author: User
    properties: dict[str, Any] = field(default_factory=dict)
    visibility: dict[str, Any] | None = None     # {"type": "group"|"role", "value": ...}: restricted


@dataclass
class Attachment:
    id: str
    issue_id: str
    filename: str
    mime_type: str
    content: bytes
    author: User
    created: datetime


@dataclass
class Issue:
    id: str
    key: str
    project: Project
    fields: dict[str, Any]    # internal values, see JiraEmulator docs
    created: datetime
    updated: datetime
    comments: list[Comment] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    histories: list[dict[str, Any]] = field(default_factory=list)
    subtasks: list[str] = field(default_factory=list)     # ids of the issues whose "parent" it is


# -- rich text --------------------------------------------------------------------------------
# The emulator keeps its own tiny conversions (plain paragraphs) so that it never depends on the
# converters under test: Cloud stores ADF, and its v2 API shows/accepts plain strings.

def adf_from_text(text: str | None) -> dict | None:
    if text is None:
        return None
    paragraphs = [p for p in text.split("\n\n")]
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": p}] if p else []}
        for p in paragraphs]}


def text_from_adf(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return node.get("text", "")
    if node.get("type") == "hardBreak":
        return "\n"
    if node.get("type") == "mention":
        return (node.get("attrs") or {}).get("text", "")
    parts = [text_from_adf(child) for child in node.get("content") or []]
    block = node.get("type") in ("doc", "bulletList", "orderedList", "listItem", "blockquote",
                                 "table", "tableRow", "panel")
    return ("\n\n" if node.get("type") == "doc" else "\n" if block else "").join(parts)


def valid_adf(value: Any) -> bool:
    return (isinstance(value, dict) and value.get("type") == "doc" and value.get("version") == 1
            and isinstance(value.get("content"), list))


def render_html(text: str | None) -> str | None:
    if text is None:
        return None
    return "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))


# -- time -------------------------------------------------------------------------------------

def jira_time(moment: datetime | None, tz: ZoneInfo) -> str | None:
    """Jira's REST timestamp: "2026-11-28T22:32:00.123+0100" in the server's zone."""
    if moment is None:
        return None
    local = moment.astimezone(tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + \
        local.strftime("%z")


def read_properties(data: dict) -> dict[str, Any]:
    """The entity properties a create request sets with the entity (IssueUpdateDetails /
    Comment `properties`: [{"key", "value"}]); 400 for an entry without both."""
    out = {}
    for entry in data.get("properties") or []:
        if not isinstance(entry, dict) or not entry.get("key") or "value" not in entry:
            raise JiraError(400, ["Property key and value are required."])
        out[entry["key"]] = entry["value"]
    return out
