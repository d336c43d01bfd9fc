"""How the Jira emulator shows its objects as JSON and reads field values sent to it.

`Renderer` knows the flavour (Cloud: accountId users, ADF bodies on v3; Server/DC: username users,
wiki strings) and the server's time zone. Used only by tests/fakes/jira.py.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from tests.fakes.jira_state import (
    CATEGORIES, FIELDS, ISSUE_TYPES, PRIORITIES, RESOLUTIONS, RICH_TEXT, STATUSES, SUBTASK_TYPES,
    TEAM_OPTIONS, Attachment, Comment, FieldError, Issue, Project, User, adf_from_text, jira_time,
    render_html, text_from_adf, valid_adf)

NAMES = {"priority": dict(PRIORITIES), "resolution": dict(RESOLUTIONS),
         "issuetype": dict(ISSUE_TYPES + SUBTASK_TYPES), "customfield_10011": dict(TEAM_OPTIONS)}


#: jira.text.field.character.limit, Jira's default.
TEXT_LIMIT = 32767


class Renderer:
    def __init__(self, flavor: str, tz: ZoneInfo, users: dict[str, User], issues: dict[str, Issue]):
        self.cloud = flavor == "cloud"
        self.tz = tz
        self.users = users          # account_id -> User
        self.issues = issues        # id -> Issue (for parent and sub-task references)
        self.base = "http://127.0.0.1"

    def time(self, moment) -> str | None:
        return jira_time(moment, self.tz)

    # -- catalogue objects --------------------------------------------------------------------

    def user(self, u: User | None, v: str = "2") -> dict | None:
        if u is None:
            return None
        avatars = {size: f"{self.base}/avatar/{u.name}?s={size[:2]}" for size in
                   ("48x48", "24x24", "16x16", "32x32")}
        out: dict[str, Any] = {"displayName": u.display_name, "emailAddress": u.email,
                               "avatarUrls": avatars, "active": True,
                               "timeZone": u.time_zone or str(self.tz)}
        if self.cloud:
            out.update(self=f"{self.base}/rest/api/{v}/user?accountId={quote(u.account_id)}",
                       accountId=u.account_id, accountType="atlassian")
        else:
            out.update(self=f"{self.base}/rest/api/2/user?username={u.name}", name=u.name,
                       key=f"JIRAUSER{abs(hash(u.account_id)) % 90000 + 10000}")
        return out

    def status(self, status_id: str, v: str = "2") -> dict:
        s = next(s for s in STATUSES if s.id == status_id)
        cat_id, cat_name, colour = CATEGORIES[s.category]
        return {"self": f"{self.base}/rest/api/{v}/status/{s.id}", "description": "",
                "iconUrl": f"{self.base}/images/icons/statuses/generic.png", "name": s.name,
                "id": s.id, "statusCategory": {
                    "self": f"{self.base}/rest/api/{v}/statuscategory/{cat_id}", "id": cat_id,
                    "key": s.category, "colorName": colour, "name": cat_name}}

    def named(self, kind: str, item_id: str | None, v: str = "2") -> dict | None:
        if item_id is None:
            return None
        name = NAMES[kind][item_id]
        if kind == "customfield_10011":
            return {"self": f"{self.base}/rest/api/{v}/customFieldOption/{item_id}", "value": name,
                    "id": item_id}
        out = {"self": f"{self.base}/rest/api/{v}/{kind}/{item_id}", "id": item_id, "name": name}
        if kind == "issuetype":
            subtask = item_id in dict(SUBTASK_TYPES)
            out.update(description="", iconUrl=f"{self.base}/images/icons/issuetypes/{name}.png",
                       subtask=subtask, hierarchyLevel=-1 if subtask else 0)
        if kind == "priority":
            out["iconUrl"] = f"{self.base}/images/icons/priorities/{name.lower()}.svg"
        if kind == "resolution":
            out["description"] = ""
        return out

    def version(self, project: Project, version_id: str, v: str = "2") -> dict:
        name = dict(project.versions)[version_id]
        return {"self": f"{self.base}/rest/api/{v}/version/{version_id}", "id": version_id,
                "name": name, "archived": False, "released": False, "projectId": int(project.id)}

    def project(self, p: Project, v: str = "2", full: bool = False) -> dict:
        out = {"self": f"{self.base}/rest/api/{v}/project/{p.id}", "id": p.id, "key": p.key,
               "name": p.name, "projectTypeKey": "software", "simplified": False,
               "avatarUrls": {"48x48": f"{self.base}/avatar/project/{p.id}"}}
        if full:
            out.update(description="", lead=self.user(next(iter(self.users.values())), v),
                       issueTypes=[self.named("issuetype", t, v) for t, _ in ISSUE_TYPES],
                       versions=[self.version(p, vid, v) for vid, _ in p.versions],
                       components=[], assigneeType="UNASSIGNED")
        return out

    # -- bodies -------------------------------------------------------------------------------

    def body_out(self, value: Any, v: str) -> Any:
        if not self.cloud or value is None:
            return value
        return value if v == "3" else text_from_adf(value)

    def body_in(self, raw: Any, v: str, field_id: str) -> Any:
        if raw is None:
            return None
        if self.cloud and v == "3":
            if not valid_adf(raw):
                raise FieldError(field_id, "Operation value must be an Atlassian Document (see the "
                                           "Atlassian Document Format)")
            self._within_limit(text_from_adf(raw), field_id)
            return raw
        if not isinstance(raw, str):
            raise FieldError(field_id, "Operation value must be a string")
        self._within_limit(raw, field_id)
        return adf_from_text(raw) if self.cloud else raw

    @staticmethod
    def _within_limit(text: str, field_id: str) -> None:
        """Jira's text fields and comments hold at most jira.text.field.character.limit
        characters (32,767 by default)."""
        if len(text) > TEXT_LIMIT:
            raise FieldError(field_id, f"The entered text is too long. It exceeds the allowed limit of "
                                       f"{TEXT_LIMIT:,} characters.")

    def plain(self, value: Any) -> str | None:
        """A body as the plain text used in changelogs and renderedFields."""
        if value is None:
            return None
        return text_from_adf(value) if self.cloud else value

    # -- issues -------------------------------------------------------------------------------

    def comment(self, c: Comment, issue: Issue, v: str, expand: set[str] = frozenset()) -> dict:
        out: dict[str, Any] = {"self": f"{self.base}/rest/api/{v}/issue/{issue.id}/comment/{c.id}", "id": c.id,
               "author": self.user(c.author, v), "body": self.body_out(c.body, v),
               "updateAuthor": self.user(c.update_author, v), "created": self.time(c.created),
               "updated": self.time(c.updated)}
        if self.cloud:
            out["jsdPublic"] = True
        if c.visibility:
            out["visibility"] = dict(c.visibility)
        if "properties" in expand:
            out["properties"] = [{"key": k, "value": val} for k, val in c.properties.items()]
        return out

    def attachment(self, a: Attachment, v: str) -> dict:
        content = (f"{self.base}/rest/api/{v}/attachment/content/{a.id}" if self.cloud
                   else f"{self.base}/secure/attachment/{a.id}/{a.filename}")
        return {"self": f"{self.base}/rest/api/{v}/attachment/{a.id}", "id": a.id,
                "filename": a.filename, "author": self.user(a.author, v),
                "created": self.time(a.created), "size": len(a.content), "mimeType": a.mime_type,
                "content": content}

    def field_value(self, issue: Issue, fid: str, v: str) -> Any:
        f = issue.fields
        if fid == "summary":
            return f["summary"]
        if fid in RICH_TEXT:
            return self.body_out(f.get(fid), v)
        if fid == "parent":
            parent = self.issues.get(f.get("parent") or "")
            return self.issue_ref(parent, v) if parent else None
        if fid == "subtasks":
            return [self.issue_ref(self.issues[i], v) for i in issue.subtasks if i in self.issues]
        if fid == "project":
            return self.project(issue.project, v)
        if fid == "status":
            return self.status(f["status"], v)
        if fid in ("issuetype", "priority", "resolution", "customfield_10011"):
            return self.named(fid, f.get(fid), v)
        if fid in ("assignee", "reporter", "creator"):
            return self.user(f.get(fid), v)
        if fid == "fixVersions":
            return [self.version(issue.project, vid, v) for vid in f.get("fixVersions", [])]
        if fid in ("created", "updated"):
            return self.time(getattr(issue, fid))
        if fid == "resolutiondate":
            return self.time(f.get("resolutiondate"))
        if fid == "comment":
            comments = [self.comment(c, issue, v) for c in issue.comments]
            return {"comments": comments, "self": f"{self.base}/rest/api/{v}/issue/{issue.id}/comment",
                    "maxResults": len(comments), "total": len(comments), "startAt": 0}
        if fid == "attachment":
            return [self.attachment(a, v) for a in issue.attachments]
        if fid == "labels":
            return list(f.get("labels", []))
        return f.get(fid)

    def issue_ref(self, issue: Issue, v: str) -> dict:
        """An issue as a parent or sub-task reference shows it."""
        return {"id": issue.id, "key": issue.key, "self": f"{self.base}/rest/api/{v}/issue/{issue.id}",
                "fields": {k: self.field_value(issue, k, v) for k in ("summary", "status", "priority",
                                                                      "issuetype")}}

    def issue(self, issue: Issue, v: str, fields: list[str] | None = None,
              expand: set[str] = frozenset(), properties: list[str] = ()) -> dict:
        """The issue bean; `fields` None or containing "*all"/"*navigable" means every field."""
        wanted = list(FIELDS) + ["creator"]
        if fields is not None and not {"*all", "*navigable"} & set(fields):
            wanted = [f for f in fields if f in FIELDS or f == "creator"]
        if fields is not None:
            wanted = [f for f in wanted if f"-{f}" not in fields]
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
                      "versionedRepresentations", "id": issue.id,
            "self": f"{self.base}/rest/api/{v}/issue/{issue.id}", "key": issue.key,
            "fields": {fid: self.field_value(issue, fid, v) for fid in wanted
                       if fid != "parent" or issue.fields.get("parent")}}    # only sub-tasks have one
        if "renderedFields" in expand:
            out["renderedFields"] = {
                "description": render_html(self.plain(issue.fields.get("description"))),
                "created": issue.created.astimezone(self.tz).strftime("%d/%b/%y %I:%M %p"),
                "updated": issue.updated.astimezone(self.tz).strftime("%d/%b/%y %I:%M %p")}
        if "changelog" in expand:
            out["changelog"] = {"startAt": 0, "maxResults": len(issue.histories),
                                "total": len(issue.histories),
                                "histories": [self.history(h, v) for h in issue.histories]}
        if "names" in expand:
            out["names"] = {fid: FIELDS[fid][0] for fid in wanted if fid in FIELDS}
        if properties:
            keys = issue.properties if "*all" in properties else properties
            out["properties"] = {k: issue.properties[k] for k in keys if k in issue.properties}
        return out

    def history(self, h: dict, v: str) -> dict:
        return {"id": h["id"], "author": self.user(h["author"], v), "created": self.time(h["created"]),
                "items": h["items"]}

    # -- reading field values -----------------------------------------------------------------

    def find_user(self, raw: Any, field_id: str) -> User | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise FieldError(field_id, "expected Object")
        wanted = raw.get("accountId") or raw.get("id") if self.cloud else raw.get("name")
        for u in self.users.values():
            if wanted in ((u.account_id,) if self.cloud else (u.name,)):
                return u
        if self.cloud and not wanted:
            raise FieldError(field_id, "Specify a valid value for " + field_id)
        raise FieldError(field_id, f"User '{wanted}' does not exist.")

    def named_in(self, kind: str, raw: Any, field_id: str) -> str | None:
        if raw is None:
            return None
        table = NAMES[kind]
        if isinstance(raw, dict):
            if "id" in raw and str(raw["id"]) in table:
                return str(raw["id"])
            name = raw.get("value" if kind == "customfield_10011" else "name")
            for item_id, item_name in table.items():
                if name is not None and item_name == name:
                    return item_id
            wanted = raw.get("id") or name
        else:
            wanted = raw
        label = {"customfield_10011": "Option value", "priority": "Priority name",
                 "resolution": "Resolution name"}.get(kind, "Value")
        raise FieldError(field_id, f"{label} '{wanted}' is not valid")

    def field_in(self, fid: str, raw: Any, v: str, project: Project) -> Any:
        """The internal value of field `fid` sent as `raw`; FieldError when Jira would refuse."""
        if fid == "summary":
            if not isinstance(raw, str) or not raw.strip():
                raise FieldError("summary", "You must specify a summary of the issue.")
            if len(raw) > 255:
                raise FieldError("summary", "Summary must be less than 255 characters.")
            return raw
        if fid in RICH_TEXT or fid == "customfield_10012":
            return self.body_in(raw, v, fid) if fid in RICH_TEXT else (
                raw if raw is None or isinstance(raw, str) else _refuse(fid, "Operation value must "
                                                                        "be a string"))
        if fid in ("priority", "resolution", "customfield_10011", "issuetype"):
            return self.named_in(fid, raw, fid)
        if fid in ("assignee", "reporter"):
            return self.find_user(raw, fid)
        if fid == "labels":
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                raise FieldError("labels", "expected array of strings")
            for label in raw:
                if re.search(r"\s", label):
                    raise FieldError("labels", f"The label '{label}' contains spaces which is invalid.")
            return sorted(set(raw), key=raw.index)
        if fid == "duedate":
            if raw is None:
                return None
            try:
                return date.fromisoformat(raw).isoformat()
            except (TypeError, ValueError):
                raise FieldError("duedate", f"Error parsing date string: {raw}") from None
        if fid == "fixVersions":
            if not isinstance(raw, list):
                raise FieldError("fixVersions", "expected array")
            return [self.version_in(project, x) for x in raw]
        if fid == "customfield_10010":
            if raw is not None and (isinstance(raw, bool) or not isinstance(raw, (int, float))):
                raise FieldError(fid, "Operation value must be a number")
            return None if raw is None else float(raw)
        raise FieldError(fid, f"Field '{fid}' cannot be set. It is not on the appropriate screen, "
                              f"or unknown.")

    def version_in(self, project: Project, raw: Any) -> str:
        for vid, name in project.versions:
            if isinstance(raw, dict) and (str(raw.get("id")) == vid or raw.get("name") == name):
                return vid
        wanted = raw.get("name") or raw.get("id") if isinstance(raw, dict) else raw
        raise FieldError("fixVersions", f"Version name '{wanted}' is not valid")

    def display(self, fid: str, value: Any, project: Project) -> tuple[str | None, str | None]:
        """(raw id, display string) for a changelog item."""
        if value is None or value == []:
            return None, None
        if fid in NAMES:
            return value, NAMES[fid][value]
        if fid == "status":
            return value, next(s.name for s in STATUSES if s.id == value)
        if fid in ("assignee", "reporter"):
            return (value.account_id if self.cloud else value.name), value.display_name
        if fid == "labels":
            return None, " ".join(value)
        if fid == "fixVersions":
            names = dict(project.versions)
            return ", ".join(value), ", ".join(names[x] for x in value)
        if fid in RICH_TEXT:
            return None, self.plain(value)
        return None, str(value)


def _refuse(fid: str, message: str):
    raise FieldError(fid, message)
