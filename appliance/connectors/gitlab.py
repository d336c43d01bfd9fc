"""The GitLab connector: REST API v4 on gitlab.com or a self-managed instance, with a personal
or project access token (sent as PRIVATE-TOKEN).

Containers are projects, by numeric id (a "group/project" path works too). Items are issues;
`Item.id` is the issue iid (stable within the project), `Item.key` "#iid".

Canonical fields: title; description (GitLab Markdown is the canonical rich text already; the
sync-marker footer is removed); status; labels (sorted, status labels excluded); assignees;
reporter (the author); milestone (title: the project's own milestones and those of its group
and the group's parents, `include_ancestors`); due_date; weight; confidential. `Item.type` is
the issue_type ("issue", "incident", "task", "test_case").

Upload links: GitLab links an upload project-relative (`/uploads/<secret>/<file>`); the text
the connector returns (description, comment bodies) has such links absolute (the project's
web URL in front), and text it writes has links to the project's uploads made relative again,
so GitLab keeps its own form and a read -> write -> read round trip gives the same text
(gitlab_markdown). Upload detection for attachments reads the text as GitLab stores it.

Status: GitLab has two states, "opened" and "closed". With the connection option
`status_scope` (default "status"; "" turns it off), scoped labels `status::<name>` on an open
issue refine it: the canonical status is "closed", else the issue's `status::*` label, else
"opened". Writing "status::doing" reopens if needed and swaps the scoped label; writing
"opened"/"closed" drops any status label.

Sync marker: a hidden HTML comment footer `<!-- tandem:sync:<marker> -->` at the end of the
description (or of a note), invisible when rendered and removed from the canonical text;
updates keep it. find_by_marker searches descriptions (`search` + `in=description`) and
verifies the footer exactly; as a second look it scans the connection account's newest issues,
so a lagging search cannot cause a duplicate.

Comments are notes; system notes ("added ~1 label", "closed") are not comments and are left
out, as are the link notes of attachments and internal notes (`internal: true`, formerly
`confidential: true`: for project members only, so never copied to the other app; Tandem
never edits or deletes one either, and files linked only from one are no attachments).

Attachments: GitLab has no per-issue attachment list; a file is an upload (POST
/projects/:id/uploads) referenced by a Markdown link `/uploads/<secret>/<filename>`. Tandem
uploads a file and links it in a note of its own (footer `<!-- tandem:attachment size=N -->`,
which also records the size), so the description, which is a synced field, is never
rewritten for an attachment. An item's attachments are the project's uploads linked from its
description and notes; they are downloaded through the API
(`/projects/:id/uploads/:secret/:filename`, GitLab 17.4+). GitLab does not tell an upload's
size without fetching it: `size` is None for uploads Tandem did not make.

changed_since pages by a keyset of its own (the issue list has offset pages only), so an
issue edited while paging is neither skipped nor returned twice for one change, also within more
than a page of issues updated at one instant: see gitlab_changes.
"""

from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import re
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote


from appliance.connectors.base import (AttachmentRef, ChangePage, Comment, ConnectionReport, Connector,
                                       ConnectorError, ContainerInfo, ContainerRef, FieldSpec, Item,
                                       NotSupported, RemoteAuthError, RemoteItemError, RemoteNotFound,
                                       StatusSpec, UserRef, WebhookEvent, spooled_upload)
from appliance.connectors.gitlab_changes import PER_PAGE, changed_page, parse_time
from appliance.connectors.gitlab_markdown import (ATTACHMENT_NOTE, UPLOAD_LINK, absolute_uploads, has_upload_link,
                                                  project_web_url, relative_uploads, split_marker, with_marker)

log = logging.getLogger(__name__)

API = "api/v4"
ISSUE_TYPES = ["issue", "incident", "task", "test_case"]
LEVELS = {10: "Guest", 15: "Planner", 20: "Reporter", 30: "Developer", 40: "Maintainer", 50: "Owner"}
# Group milestones too (of the project's group and its parents; GitLab 16.7+, as uploads need 17.4).
ANCESTORS = {"include_ancestors": "true"}
RECENT_SCAN = 20  # how many of the account's newest issues find_by_marker checks after the search


def user_ref(data: Mapping[str, Any] | None) -> UserRef | None:
    if not data:
        return None
    return UserRef(id=str(data["id"]), name=data.get("name") or data.get("username") or "",
                   email=data.get("email") or data.get("public_email") or None, login=data.get("username"))


def is_internal(note: Mapping[str, Any]) -> bool:
    """Whether a note is internal (`internal`; older GitLab names it `confidential` only)."""
    return bool(note.get("internal") or note.get("confidential"))


class GitLabConnector(Connector):
    """See the module docstring. Options: `status_scope` (str, default "status")."""

    kind = "gitlab"

    @classmethod
    def auth_headers(cls, credentials: Mapping[str, Any]) -> dict[str, str]:
        token = credentials.get("token")
        if not token:
            raise ConnectorError("a GitLab connection needs an access token (credentials key 'token')")
        return {"PRIVATE-TOKEN": str(token)}

    def __init__(self, http, options=None):
        super().__init__(http, options)
        self._account: dict[str, Any] | None = None

    @property
    def status_scope(self) -> str:
        return str(self.options.get("status_scope", "status") or "")

    def is_status_label(self, name: str) -> bool:
        return bool(self.status_scope) and name.startswith(self.status_scope + "::")

    # -- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def project_path(container: str) -> str:
        return f"{API}/projects/{quote(str(container), safe='')}"

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return (await self.http.request("GET", path, params=params)).json()

    async def _all(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row of an offset-paginated list, following X-Next-Page."""
        rows: list[Any] = []
        page = "1"
        while page:
            response = await self.http.request("GET", path, params={**(params or {}), "per_page": PER_PAGE,
                                                                    "page": page})
            rows.extend(response.json())
            page = response.headers.get("X-Next-Page", "")
        return rows

    # -- reading ------------------------------------------------------------------------------

    def to_item(self, issue: Mapping[str, Any], notes: list[Mapping[str, Any]] | None = None, *,
                comments: bool = False, attachments: bool = False) -> Item:
        project_url = project_web_url(issue["web_url"])
        description, marker = split_marker(issue.get("description"))
        description = absolute_uploads(description, project_url)
        labels = [name for name in issue.get("labels") or [] if not self.is_status_label(name)]
        status_labels = [name for name in issue.get("labels") or [] if self.is_status_label(name)]
        if issue["state"] == "closed":
            status = "closed"
        else:
            status = status_labels[0] if status_labels else "opened"
        milestone = issue.get("milestone")
        reporter = user_ref(issue.get("author"))
        fields = {
            "title": issue["title"], "description": description, "status": status,
            "labels": sorted(labels),
            "assignees": [user_ref(a).to_dict() for a in issue.get("assignees") or []],
            "reporter": reporter.to_dict() if reporter else None,
            "milestone": milestone["title"] if milestone else None,
            "due_date": issue.get("due_date"), "weight": issue.get("weight"),
            "confidential": bool(issue.get("confidential")),
        }
        item = Item(id=str(issue["iid"]), key=f"#{issue['iid']}", url=issue["web_url"],
                    type=issue.get("issue_type") or "issue", created_at=parse_time(issue["created_at"]),
                    updated_at=parse_time(issue["updated_at"]), fields=fields, marker=marker,
                    raw_version=issue["updated_at"])
        if notes is not None and comments:
            item.comments = [self.to_comment(n, project_url) for n in notes if self.is_comment(n)]
        if notes is not None and attachments:
            item.attachments = self.linked_uploads(issue, notes)
        return item

    @staticmethod
    def is_comment(note: Mapping[str, Any]) -> bool:
        """Whether the note is a comment to sync: not a system note, not an internal one (for
        project members only: copying it would publish it), not an attachment's link note."""
        return (not note.get("system") and not is_internal(note)
                and not ATTACHMENT_NOTE.search(note.get("body") or ""))

    @staticmethod
    def to_comment(note: Mapping[str, Any], project_url: str | None = None) -> Comment:
        """The note as a Comment, its upload links made absolute with `project_url` (the
        project's web URL; needed when the body has a relative one). An internal note is
        flagged `system` like a system note, as nothing flagged so is synced."""
        body, marker = split_marker(note.get("body"))
        return Comment(id=str(note["id"]), author=user_ref(note["author"]), body=absolute_uploads(body, project_url),
                       created_at=parse_time(note["created_at"]), updated_at=parse_time(note["updated_at"]),
                       marker=marker, system=bool(note.get("system")) or is_internal(note))

    def linked_uploads(self, issue: Mapping[str, Any], notes: list[Mapping[str, Any]]) -> list[AttachmentRef]:
        """Uploads linked from the description and the notes (not system or internal ones: an
        internal note's file is as private as the note), first link wins; read from the text
        as GitLab stores it, where links are relative or absolute."""
        found: dict[str, AttachmentRef] = {}
        project_url = project_web_url(issue["web_url"])
        sources = [(issue.get("description"), issue["created_at"], issue.get("author"))]
        sources += [(n.get("body"), n["created_at"], n.get("author")) for n in notes
                    if not n.get("system") and not is_internal(n)]
        for text, created, author in sources:
            for match in UPLOAD_LINK.finditer(text or ""):
                if not _own_upload(match["base"], project_url, issue["project_id"]):
                    continue  # another project's upload: not this issue's to list, nor fetchable here
                secret, filename = match["secret"], match["file"]
                key = f"{secret}/{filename}"
                if key in found:
                    continue
                size = ATTACHMENT_NOTE.search(text or "")
                filename = unquote(filename)
                found[key] = AttachmentRef(
                    id=key, filename=filename, size=int(size.group(1)) if size else None,
                    mime_type=mimetypes.guess_type(filename)[0] or "application/octet-stream",
                    created_at=parse_time(created), author=user_ref(author),
                    url=self._upload_url(issue["project_id"], secret, filename))
        return list(found.values())

    async def _notes(self, container: str, item_id: str) -> list[dict[str, Any]]:
        return await self._all(f"{self.project_path(container)}/issues/{item_id}/notes",
                               {"sort": "asc", "order_by": "created_at"})

    async def get_item(self, container: str, item_id: str, *, comments: bool = True,
                       attachments: bool = True) -> Item:
        issue = await self._get(f"{self.project_path(container)}/issues/{item_id}")
        notes = await self._notes(container, item_id) if comments or attachments else None
        return self.to_item(issue, notes, comments=comments, attachments=attachments)

    async def list_comments(self, container: str, item_id: str) -> list[Comment]:
        notes = [n for n in await self._notes(container, item_id) if self.is_comment(n)]
        project_url = await self._project_url(container, *(n.get("body") for n in notes))
        return [self.to_comment(n, project_url) for n in notes]

    async def _project_url(self, container: str, *texts: str | None) -> str | None:
        """The project's web URL when one of `texts` has an upload link (to convert), else None
        without asking. Not cached: a renamed project must not leave texts in two forms."""
        if not any(has_upload_link(text) for text in texts):
            return None
        return (await self._get(self.project_path(container)))["web_url"]

    async def changed_since(self, container: str, since: datetime | None, cursor: str | None, *,
                            page_size: int = 50) -> ChangePage:
        """See Connector.changed_since; the paging is gitlab_changes' (its docstring says how)."""
        return await changed_page(self, container, since, cursor, page_size)

    async def find_by_marker(self, container: str, marker: str) -> Item | None:
        base = f"{self.project_path(container)}/issues"
        rows = await self._get(base, {"search": f"tandem:sync:{marker}", "in": "description", "scope": "all",
                                      "state": "all", "per_page": PER_PAGE})
        for row in rows:
            if split_marker(row.get("description"))[1] == marker:
                return self.to_item(row)
        me = await self._get(f"{API}/user")
        recent = await self._get(base, {"author_id": me["id"], "order_by": "created_at", "sort": "desc",
                                        "scope": "all", "state": "all", "per_page": RECENT_SCAN})
        for row in recent:
            if split_marker(row.get("description"))[1] == marker:
                return self.to_item(row)
        return None

    # -- the connection and its projects ------------------------------------------------------

    async def test(self) -> ConnectionReport:
        try:
            me = await self._get(f"{API}/user")
        except RemoteAuthError as exc:
            return ConnectionReport(ok=False, account=None, detail=f"GitLab refused the token: {exc}")
        version = (await self._get(f"{API}/version")).get("version", "?")
        projects = await self._projects()
        levels = {p["id"]: _access_level(p) for p in projects}
        best = max(levels.values(), default=0)
        permissions = [name for name, minimum in (("read", 10), ("comment", 10), ("attach", 10),
                                                  ("write", 15), ("admin", 40), ("delete", 50))
                       if best >= minimum]
        shown = ", ".join(f"{p['path_with_namespace']} ({LEVELS.get(levels[p['id']], '?')})"
                          for p in projects[:10])
        more = f" and {len(projects) - 10} more" if len(projects) > 10 else ""
        account = user_ref(me)
        detail = (f"GitLab {version} as @{me.get('username')}; {len(projects)} project(s)"
                  + (f": {shown}{more}" if projects else "; the token is not a member of any project"))
        return ConnectionReport(ok=True, account=account, containers=[self._container(p) for p in projects],
                                permissions=permissions, detail=detail)

    async def _projects(self) -> list[dict[str, Any]]:
        """Projects the token is a member of, by keyset pagination (cheap on large instances)."""
        rows: list[dict[str, Any]] = []
        url: str | None = f"{API}/projects"
        params: dict[str, Any] | None = {"membership": "true", "min_access_level": 10, "pagination": "keyset",
                                         "order_by": "id", "sort": "asc", "per_page": PER_PAGE, "simple": "false"}
        while url:
            response = await self.http.request("GET", url, params=params)
            rows.extend(response.json())
            url = _next_link(response.headers.get("Link", ""))
            params = None  # the next link carries the query
        return rows

    @staticmethod
    def _container(project: Mapping[str, Any]) -> ContainerRef:
        return ContainerRef(id=str(project["id"]), key=project["path_with_namespace"], name=project["name"],
                            url=project["web_url"])

    async def list_containers(self) -> list[ContainerRef]:
        return [self._container(p) for p in await self._projects()]

    async def container_exists(self, container: str) -> bool:
        try:
            await self._get(self.project_path(container))
        except RemoteNotFound:
            return False
        return True

    async def describe(self, container: str) -> ContainerInfo:
        path = self.project_path(container)
        project = await self._get(path)
        labels = [label["name"] for label in await self._all(f"{path}/labels")]
        milestones = [m["title"] for m in await self._all(f"{path}/milestones", {"state": "active", **ANCESTORS})]
        statuses = [StatusSpec("opened", "todo")]
        statuses += [StatusSpec(name, _category(name)) for name in sorted(labels) if self.is_status_label(name)]
        statuses.append(StatusSpec("closed", "done"))
        plain = sorted(name for name in labels if not self.is_status_label(name))
        fields = [
            FieldSpec("title", "Title", "string", required=True),
            FieldSpec("description", "Description", "richtext"),
            FieldSpec("status", "Status", "option", options=[s.name for s in statuses]),
            FieldSpec("labels", "Labels", "labels", options=plain),
            FieldSpec("assignees", "Assignees", "users"),
            FieldSpec("reporter", "Author", "user", writable=False),
            FieldSpec("milestone", "Milestone", "option", options=milestones),
            FieldSpec("due_date", "Due date", "date"),
            FieldSpec("weight", "Weight", "number"),
            FieldSpec("confidential", "Confidential", "boolean"),
        ]
        ref = self._container(project)
        return ContainerInfo(id=ref.id, key=ref.key, name=ref.name, url=ref.url, item_types=list(ISSUE_TYPES),
                             fields=fields, statuses=statuses, priorities=[], labels=plain)

    async def list_users(self, container: str, query: str = "") -> list[UserRef]:
        params = {"search": query} if query else {}
        return [user_ref(u) for u in await self._all(f"{self.project_path(container)}/users", params)]

    # -- writing ------------------------------------------------------------------------------

    async def _milestone_id(self, container: str, title: str | None) -> int:
        """The id of the milestone titled `title` of the project or of one of its groups (0
        removes the milestone)."""
        if not title:
            return 0
        rows = await self._get(f"{self.project_path(container)}/milestones", {"title": title, **ANCESTORS})
        if not rows:
            raise RemoteItemError(f"GitLab project {container} has no milestone {title!r}")
        return rows[0]["id"]

    async def _write_params(self, container: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """GitLab params for the canonical `fields` except title/description/status/labels."""
        params: dict[str, Any] = {}
        if "assignees" in fields:
            params["assignee_ids"] = [int(a["id"]) for a in fields["assignees"] or []]
        if "milestone" in fields:
            params["milestone_id"] = await self._milestone_id(container, fields["milestone"])
        if "due_date" in fields:
            params["due_date"] = fields["due_date"] or ""
        if "weight" in fields:
            params["weight"] = fields["weight"]
        if "confidential" in fields:
            params["confidential"] = bool(fields["confidential"])
        if "title" in fields:
            params["title"] = fields["title"]
        if "type" in fields:
            params["issue_type"] = fields["type"]
        return params

    def _labels_for(self, labels: list[str], status: str) -> list[str]:
        """`labels` plus the status label `status` calls for; RemoteItemError for a status
        GitLab cannot express (the value map should have turned it into one it can)."""
        if status not in ("opened", "closed") and not self.is_status_label(status):
            scoped = f", or {self.status_scope}::<name>" if self.status_scope else ""
            raise RemoteItemError(f"GitLab has no status {status!r}: use opened, closed{scoped}")
        kept = [name for name in labels if not self.is_status_label(name)]
        if self.is_status_label(status):
            kept.append(status)
        return kept

    async def create_item(self, container: str, item_type: str, fields: Mapping[str, Any],
                          marker: str) -> Item:
        params = await self._write_params(container, fields)
        status = fields.get("status") or "opened"
        description = fields.get("description")
        description = relative_uploads(description, await self._project_url(container, description))
        params.update({"issue_type": item_type, "description": with_marker(description, marker),
                       "labels": ",".join(self._labels_for(list(fields.get("labels") or []), status))})
        issue = (await self.http.request("POST", f"{self.project_path(container)}/issues", json=params,
                                         expect=(201,))).json()
        if status == "closed":
            # An issue is created open; closing is a second call (GitLab has no closed create).
            issue = (await self.http.request("PUT", f"{self.project_path(container)}/issues/{issue['iid']}",
                                             json={"state_event": "close"})).json()
        return self.to_item(issue)

    async def update_item(self, container: str, item_id: str, changes: Mapping[str, Any]) -> Item:
        path = f"{self.project_path(container)}/issues/{item_id}"
        params = await self._write_params(container, changes)
        if {"description", "labels", "status"} & changes.keys():
            current = await self._get(path)
            item = self.to_item(current)
            if "description" in changes:
                description = relative_uploads(changes["description"], project_web_url(current["web_url"]))
                params["description"] = with_marker(description, item.marker)
            if "labels" in changes or "status" in changes:
                status = changes.get("status", item.fields["status"])
                labels = list(changes.get("labels", item.fields["labels"]))
                params["labels"] = ",".join(self._labels_for(labels, status))
                if status == "closed" and current["state"] != "closed":
                    params["state_event"] = "close"
                elif status != "closed" and current["state"] == "closed":
                    params["state_event"] = "reopen"
        if not params:
            return await self.get_item(container, item_id, comments=False, attachments=False)
        return self.to_item((await self.http.request("PUT", path, json=params)).json())

    async def delete_item(self, container: str, item_id: str) -> None:
        await self.http.request("DELETE", f"{self.project_path(container)}/issues/{item_id}", expect=(204,))

    async def add_comment(self, container: str, item_id: str, body: str, marker: str) -> Comment:
        project_url = await self._project_url(container, body)
        note = (await self.http.request("POST", f"{self.project_path(container)}/issues/{item_id}/notes",
                                        json={"body": with_marker(relative_uploads(body, project_url), marker)},
                                        expect=(201,))).json()
        return self.to_comment(note, project_url)

    async def _me(self) -> dict[str, Any]:
        if self._account is None:
            self._account = await self._get(f"{API}/user")
        return self._account

    async def update_comment(self, container: str, item_id: str, comment_id: str, body: str) -> Comment:
        path = f"{self.project_path(container)}/issues/{item_id}/notes/{comment_id}"
        note = _not_internal(await self._get(path), "edit")
        if note["author"]["id"] != (await self._me())["id"]:
            # GitLab lets only a note's author edit it (a 403 would read as a revoked token).
            raise NotSupported(f"GitLab lets only the author of note {comment_id} "
                               f"(@{note['author'].get('username')}) edit it")
        marker = split_marker(note.get("body"))[1]
        project_url = await self._project_url(container, body)
        note = (await self.http.request("PUT", path, json={"body": with_marker(relative_uploads(body, project_url),
                                                                               marker)})).json()
        return self.to_comment(note, project_url)

    async def delete_comment(self, container: str, item_id: str, comment_id: str) -> None:
        path = f"{self.project_path(container)}/issues/{item_id}/notes/{comment_id}"
        note = _not_internal(await self._get(path), "delete")
        if note["author"]["id"] != (await self._me())["id"]:
            if _access_level(await self._get(self.project_path(container))) < 40:
                raise NotSupported(f"GitLab lets only the author of note {comment_id} "
                                   f"(@{note['author'].get('username')}) or a maintainer delete it")
        await self.http.request("DELETE", path, expect=(204,))

    # -- attachments --------------------------------------------------------------------------

    async def download_attachment(self, ref: AttachmentRef) -> AsyncIterator[bytes]:
        async with self.http.stream("GET", ref.url, headers={"Accept": "*/*"}) as response:
            async for chunk in response.iter_chunked():
                yield chunk

    async def upload_attachment(self, container: str, item_id: str, filename: str,
                                chunks: AsyncIterator[bytes], size: int, mime_type: str) -> AttachmentRef:
        async with spooled_upload(chunks, size, filename, mime_type) as form:
            upload = (await self.http.request("POST", f"{self.project_path(container)}/uploads", data=form,
                                              expect=(201,))).json()
        link = upload["markdown"]
        body = f"{link}\n\n<!-- tandem:attachment size={size} -->"
        note = (await self.http.request("POST", f"{self.project_path(container)}/issues/{item_id}/notes",
                                        json={"body": body}, expect=(201,))).json()
        # GitLab stores a sanitised file name ("my file.txt" -> "my_file.txt"); the ref uses the
        # stored one, as get_item will list it.
        secret, name = upload["url"].split("/")[2:4]
        return AttachmentRef(id=f"{secret}/{name}", filename=unquote(name), size=size, mime_type=mime_type,
                             created_at=parse_time(note["created_at"]), author=user_ref(note["author"]),
                             url=self._upload_url(container, secret, unquote(name)))

    async def delete_attachment(self, container: str, item_id: str, ref: AttachmentRef) -> None:
        """Removes Tandem's own note that links the upload; an upload linked from the description
        or from a person's note is NotSupported (GitLab has no call that unlinks it, and editing a
        person's text is not Tandem's to do). The uploaded file itself stays on the server."""
        me = (await self._me())["id"]
        for note in await self._notes(container, item_id):
            body = note.get("body") or ""
            linked = {f"{m['secret']}/{m['file']}" for m in UPLOAD_LINK.finditer(body)}
            if note.get("system") or is_internal(note) or ref.id not in linked:
                continue
            if ATTACHMENT_NOTE.search(body) and note["author"]["id"] == me:
                path = f"{self.project_path(container)}/issues/{item_id}/notes/{note['id']}"
                await self.http.request("DELETE", path, expect=(204,))
                return
            raise NotSupported(f"GitLab cannot remove {ref.filename!r}: it is linked from a comment by "
                               f"@{note['author'].get('username')}; remove the link there by hand")
        raise NotSupported(f"GitLab cannot remove {ref.filename!r}: it is linked from the issue's description; "
                           "remove the link there by hand")

    def _upload_url(self, container: str | int, secret: str, filename: str) -> str:
        """The API download URL of an upload (GitLab 17.4+)."""
        return str(self.http.url(f"{self.project_path(str(container))}/uploads/{secret}/{quote(filename)}"))

    # -- webhooks -----------------------------------------------------------------------------

    async def verify_webhook(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        token = _header(headers, "X-Gitlab-Token")
        if not token or not secret:
            return False
        return hmac.compare_digest(token.encode(), secret.encode())

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        event = (_header(headers, "X-Gitlab-Event") or "").removeprefix("Confidential ")
        try:
            payload = json.loads(body)
            project = str(payload["project"]["id"])
            if event == "Issue Hook":
                action = payload["object_attributes"].get("action")
                kind = {"open": "created", "close": "updated", "reopen": "updated"}.get(action, "updated")
                return [WebhookEvent(project, str(payload["object_attributes"]["iid"]), kind)]
            if event == "Note Hook" and payload["object_attributes"].get("noteable_type") == "Issue":
                return [WebhookEvent(project, str(payload["issue"]["iid"]), "comment")]
        except (ValueError, KeyError, TypeError):
            log.info("ignoring a malformed GitLab %s delivery", event or "webhook")
        return []


def _own_upload(base: str, project_url: str, project_id: int) -> bool:
    """Whether an upload link's `base` (what precedes /uploads/) is the project's: relative, its
    web URL, or the `full_path` form GitLab's upload API also returns (`/-/project/<id>`)."""
    full_path = re.fullmatch(rf"(?:https?://[^/\s]+)?/-/project/{project_id}", base)
    return base in ("", project_url) or full_path is not None


def _not_internal(note: dict[str, Any], action: str) -> dict[str, Any]:
    """`note`, or NotSupported when it is internal: Tandem never lists one as a comment, so a
    request to change one is not the engine's to make (and its text is not for the other app)."""
    if is_internal(note):
        raise NotSupported(f"note {note['id']} is an internal note (for project members only); "
                           f"Tandem does not {action} internal notes")
    return note


def _access_level(project: Mapping[str, Any]) -> int:
    """The token's level in a project: direct membership or through its group, the higher."""
    permissions = project.get("permissions") or {}
    return max((permissions.get(kind) or {}).get("access_level", 0) for kind in ("project_access", "group_access"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _next_link(link: str) -> str | None:
    for part in link.split(","):
        match = re.match(r'\s*<([^>]+)>;\s*rel="next"', part)
        if match:
            return match.group(1)
    return None


def _category(name: str) -> str:
    """A guess at a status label's category from its name (the mapping editor can override)."""
    value = name.rsplit("::", 1)[-1].lower()
    if any(word in value for word in ("done", "closed", "resolved", "complete")):
        return "done"
    if any(word in value for word in ("todo", "to do", "backlog", "new", "open", "triage")):
        return "todo"
    return "in_progress"
