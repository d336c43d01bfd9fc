"""The Jira connector: Jira Cloud (REST v3, Atlassian Document Format, e-mail + API token) and
Jira Data Center / Server (REST v2, wiki markup, personal access token or username + password).

Option `flavor` ("cloud" | "server"); when absent, serverInfo's deploymentType decides.
Containers are projects (ContainerRef.id = project id, key "PROJ"); items are issues (Item.id =
issue id, stable across moves; Item.key "PROJ-12"); Item.type the issue type name.

Canonical fields: title=summary, description (Markdown via appliance.richtext: ADF on Cloud,
wiki markup on Server), status (name), priority (name), labels (sorted), assignees (Jira has
one assignee: a list of 0 or 1), reporter, due_date=duedate, fix_versions (sorted names),
resolution (name), and custom fields by id ("customfield_10010"): options as their value,
users as UserRef dicts, numbers, strings, dates as given; multi-line text fields (`textarea`)
hold rich text as the description does and are converted both ways like it, so a value read
back is the Markdown written (on Data Center every textarea is taken to use the wiki renderer,
which Jira's field list does not tell). UserRef: Cloud id = accountId; Server id = user key,
login = username (writes use the username).

Status changes go through the workflow: the connector reads the transitions available from the
current status (with their screens' fields), takes one leading to the wanted status, or walks
towards it one status at a time (at most MAX_HOPS, preferring statuses of the wanted category),
and fills required transition fields: resolution from the change, else option `done_resolution`
(default "Done") when allowed, else the first allowed value; another required field without a
value fails the item with the field named. Resolution alone (without a status change) cannot
be written in Jira: RemoteItemError.

Sync marker: issue property `tandem.sync` = {"marker": ...}, set in the create request itself
(IssueUpdateDetails.properties, so no crash window), comments likewise carry a comment property.

Polls (changed_since, and how many issues a poll holds) and the search for an issue by its
marker (find_by_marker) are in appliance.connectors.jira_search.

Comments come with the issue: the search's and GET issue's `comment` field carries an issue's
comments (at most its `maxResults`); when it holds all of them (`total`), Item.comments of
changed_since and of get_item(comments=False) are those (saving a comment list per item), else
None. They come without their properties, so without markers (appliance.sync.comments lists the
comments itself when a marker could matter); get_item(comments=True) lists them, markers included.
A comment restricted to a role or group (`visibility`), or a Service Management internal note
(`jsdPublic` false), is private discussion: it comes with Comment.system set, as an app's own
notes do, so the engine never copies it to the other app, edits or deletes it.

Webhooks: Jira Cloud dynamic webhooks and Server webhooks carry no shared secret, so Tandem
registers a URL containing the integration's secret; the web tier passes the secret it found in
the URL as header `X-Tandem-Webhook-Secret`. Jira admin webhooks configured with a secret sign
the body (`X-Hub-Signature: sha256=<hmac>`); either proves the secret.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.connectors.base import (AttachmentRef, Comment, ConnectionReport, Connector, ConnectorError,
                                       ContainerInfo, ContainerRef, FieldSpec, Item, RemoteAuthError,
                                       RemoteItemError, RemoteNotFound, StatusSpec, UserRef, spooled_upload)
from appliance.connectors.jira_search import PROPERTY, JiraSearch
from appliance.connectors.jira_webhooks import JiraWebhooks
from appliance.connectors.jql import parse_time

MAX_HOPS = 4
META_PAGE = 200          # createmeta's largest page
USER_PAGE = 100          # users per user/assignable/search request
USER_HORIZON = 1000      # Jira's user searches look no further than the thousandth user
CATEGORIES = {"new": "todo", "indeterminate": "in_progress", "done": "done"}
CANONICAL = {"summary": "title", "description": "description", "priority": "priority",
             "labels": "labels", "assignee": "assignees", "reporter": "reporter", "duedate": "due_date",
             "fixVersions": "fix_versions", "resolution": "resolution", "status": "status"}
PERMISSIONS = {"BROWSE_PROJECTS": "read", "CREATE_ISSUES": "create", "EDIT_ISSUES": "write",
               "TRANSITION_ISSUES": "transition", "ADD_COMMENTS": "comment",
               "CREATE_ATTACHMENTS": "attach", "DELETE_ISSUES": "delete"}


class JiraConnector(JiraSearch, JiraWebhooks, Connector):
    """See the module docstring. Options: flavor, done_resolution."""

    kind = "jira"

    @classmethod
    def auth_headers(cls, credentials: Mapping[str, Any]) -> dict[str, str]:
        """{"email", "token"} (Cloud API token) or {"username", "password"} -> Basic;
        {"token"} alone (Server personal access token) -> Bearer."""
        login = credentials.get("email") or credentials.get("username")
        secret = credentials.get("token") if credentials.get("email") else credentials.get("password")
        if login and secret:
            return {"Authorization": "Basic " + base64.b64encode(f"{login}:{secret}".encode()).decode()}
        if credentials.get("token") and not login:
            return {"Authorization": f"Bearer {credentials['token']}"}
        raise ConnectorError("a Jira connection needs e-mail + API token (Cloud), a personal access "
                             "token, or username + password (Data Center / Server)")

    def __init__(self, http, options=None):
        super().__init__(http, options)
        self._cloud: bool | None = {"cloud": True, "server": False}.get(self.options.get("flavor"))
        self._me: dict[str, Any] | None = None
        self._tz: ZoneInfo | None = None
        self._field_schemas: dict[str, dict] | None = None
        self._statuses: dict[str, dict[str, str]] = {}

    # -- plumbing -----------------------------------------------------------------------------

    async def _setup(self) -> None:
        if self._cloud is None:
            info = (await self.http.request("GET", "rest/api/2/serverInfo")).json()
            self._cloud = info.get("deploymentType") == "Cloud"
        if self._me is None:
            self._me = (await self.http.request("GET", f"{self.api}/myself")).json()
            try:
                self._tz = ZoneInfo(self._me.get("timeZone") or "UTC")
            except (ZoneInfoNotFoundError, ValueError):
                self._tz = ZoneInfo("UTC")

    @property
    def api(self) -> str:
        return "rest/api/3" if self._cloud else "rest/api/2"

    async def _json(self, method: str, path: str, **kwargs) -> Any:
        await self._setup()
        return (await self.http.request(method, f"{self.api}/{path}", **kwargs)).json()

    def _user(self, data: Mapping[str, Any] | None) -> UserRef | None:
        if not data:
            return None
        if self._cloud:
            return UserRef(id=data["accountId"], name=data.get("displayName") or "",
                           email=data.get("emailAddress") or None)
        return UserRef(id=data.get("key") or data["name"], name=data.get("displayName") or "",
                       email=data.get("emailAddress") or None, login=data.get("name"))

    def _user_out(self, ref: Mapping[str, Any] | None) -> dict | None:
        if not ref:
            return None
        return {"accountId": ref["id"]} if self._cloud else {"name": ref.get("login") or ref["id"]}

    def _to_markdown(self, value: Any) -> str:
        from appliance import richtext
        if value is None:
            return ""
        return richtext.from_adf(value, richtext.ACCOUNT_IDS) if self._cloud else richtext.from_jira_wiki(value)

    def _from_markdown(self, text: str | None, empty: bool = False) -> Any:
        """Jira's body for Markdown `text`; None for no text unless `empty` (comments need a body)."""
        from appliance import richtext
        if not text and not empty:
            return None
        text = text or ""
        return richtext.to_adf(text, richtext.ACCOUNT_IDS) if self._cloud else richtext.to_jira_wiki(text)

    async def _schemas(self) -> dict[str, dict]:
        """The field catalogue by id (GET /field, once per connector). Reading issues needs it
        (_item tells rich-text custom fields by it): whoever reads issues awaits it first."""
        if self._field_schemas is None:
            self._field_schemas = {f["id"]: f for f in await self._json("GET", "field")}
        return self._field_schemas

    @staticmethod
    def _rich_text(schema: Mapping[str, Any]) -> bool:
        """Whether a custom field of this schema holds rich text (a multi-line text field)."""
        return schema.get("type") == "string" and str(schema.get("custom", "")).endswith(":textarea")

    # -- reading ------------------------------------------------------------------------------

    def _custom_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._custom_value(v) for v in value]
        if isinstance(value, dict):
            if value.get("type") == "doc":
                return self._to_markdown(value)
            if "accountId" in value or ("name" in value and "displayName" in value):
                return self._user(value).to_dict()
            return value.get("value", value.get("name"))
        return value

    def _item(self, issue: Mapping[str, Any]) -> Item:
        """The Item of an issue bean; the field catalogue (_schemas) must be loaded."""
        f = issue["fields"]
        schemas = self._field_schemas or {}
        assignee = self._user(f.get("assignee"))
        reporter = self._user(f.get("reporter"))
        fields: dict[str, Any] = {
            "title": f.get("summary") or "",
            "description": self._to_markdown(f.get("description")),
            "status": (f.get("status") or {}).get("name"),
            "priority": (f.get("priority") or {}).get("name"),
            "labels": sorted(f.get("labels") or []),
            "assignees": [assignee.to_dict()] if assignee else [],
            "reporter": reporter.to_dict() if reporter else None,
            "due_date": f.get("duedate"),
            "fix_versions": sorted(v["name"] for v in f.get("fixVersions") or []),
            "resolution": (f.get("resolution") or {}).get("name"),
        }
        for key, value in f.items():
            if not key.startswith("customfield_"):
                continue
            if value is not None and self._rich_text((schemas.get(key) or {}).get("schema") or {}):
                fields[key] = self._to_markdown(value)
            else:
                fields[key] = self._custom_value(value)
        marker = ((issue.get("properties") or {}).get(PROPERTY) or {}).get("marker")
        attachments = [self._attachment(a) for a in f.get("attachment") or []]
        listed = f.get("comment") or {}
        shown = listed.get("comments")
        comments = ([self._comment(c) for c in shown]
                    if shown is not None and len(shown) >= int(listed.get("total", 0)) else None)
        return Item(id=str(issue["id"]), key=issue["key"], url=str(self.http.url(f"browse/{issue['key']}")),
                    type=(f.get("issuetype") or {}).get("name", ""), created_at=parse_time(f["created"]),
                    updated_at=parse_time(f["updated"]), fields=fields, marker=marker,
                    attachments=attachments if "attachment" in f else None, comments=comments,
                    raw_version=f["updated"])

    def _attachment(self, a: Mapping[str, Any]) -> AttachmentRef:
        return AttachmentRef(id=str(a["id"]), filename=a["filename"], size=int(a.get("size") or 0),
                             mime_type=a.get("mimeType") or "application/octet-stream",
                             created_at=parse_time(a.get("created")), author=self._user(a.get("author")),
                             url=a["content"])

    def _comment(self, c: Mapping[str, Any]) -> Comment:
        props = {p["key"]: p.get("value") for p in c.get("properties") or []}
        # Restricted to a role or group, or internal to Service Management: not to be copied
        # where other people read (see the module docstring).
        private = bool(c.get("visibility")) or c.get("jsdPublic") is False
        return Comment(id=str(c["id"]), author=self._user(c.get("author")) or UserRef("", ""),
                       body=self._to_markdown(c.get("body")), created_at=parse_time(c["created"]),
                       updated_at=parse_time(c.get("updated") or c["created"]),
                       marker=(props.get(PROPERTY) or {}).get("marker"), system=private)

    # -- the contract: reading ----------------------------------------------------------------

    async def test(self) -> ConnectionReport:
        try:
            await self._setup()
            info = (await self.http.request("GET", f"{self.api}/serverInfo")).json()
            containers = await self.list_containers()
            wanted = ",".join(PERMISSIONS)
            granted = (await self._json("GET", "mypermissions", params={"permissions": wanted}))["permissions"]
        except RemoteAuthError as exc:
            return ConnectionReport(ok=False, account=None, detail=str(exc))
        permissions = sorted(name for key, name in PERMISSIONS.items()
                             if (granted.get(key) or {}).get("havePermission"))
        flavour = "Jira Cloud" if self._cloud else f"Jira {info.get('deploymentType', 'Server')}"
        detail = (f"{flavour} {info.get('version', '')} as {self._me.get('displayName')}, "
                  f"{len(containers)} project(s), time zone {self._tz}")
        return ConnectionReport(ok=True, account=self._user(self._me), containers=containers,
                                permissions=permissions, detail=detail)

    async def list_containers(self) -> list[ContainerRef]:
        await self._setup()
        if self._cloud:
            projects, start = [], 0
            while True:
                page = await self._json("GET", "project/search", params={"startAt": start, "maxResults": 50})
                projects += page["values"]
                start += len(page["values"])
                if page.get("isLast", True) or not page["values"]:
                    break
        else:
            projects = await self._json("GET", "project")
        return [ContainerRef(id=str(p["id"]), key=p["key"], name=p["name"],
                             url=str(self.http.url(f"browse/{p['key']}"))) for p in projects]

    async def describe(self, container: str) -> ContainerInfo:
        project = await self._json("GET", f"project/{container}")
        schemas = await self._schemas()
        specs: dict[str, FieldSpec] = {}
        for issue_type in project.get("issueTypes") or []:
            async for meta in self._create_meta(project["id"], issue_type["id"]):
                fid = meta.get("fieldId") or meta["key"]
                if fid in ("project", "issuetype") or fid in specs:
                    continue
                specs[fid] = self._field_spec(fid, meta, schemas.get(fid, {}))
        statuses = await self.describe_statuses(container)
        specs.setdefault("status", FieldSpec("status", "Status", "option", options=[s.name for s in statuses]))
        specs.setdefault("resolution", FieldSpec("resolution", "Resolution", "option", options=[
            r["name"] for r in await self._json("GET", "resolution")]))
        priorities = [p["name"] for p in await self._json("GET", "priority")]
        return ContainerInfo(id=str(project["id"]), key=project["key"], name=project["name"],
                             url=str(self.http.url(f"browse/{project['key']}")),
                             item_types=[t["name"] for t in project.get("issueTypes") or []],
                             fields=list(specs.values()), statuses=statuses,
                             priorities=priorities, labels=[])

    async def _create_meta(self, project_id: str, type_id: str) -> AsyncIterator[dict]:
        """The create metadata of each field of an issue type, through all its pages (startAt /
        maxResults; Cloud lists them as "fields", Data Center as "values")."""
        start = 0
        while True:
            page = await self._json("GET", f"issue/createmeta/{project_id}/issuetypes/{type_id}",
                                    params={"startAt": start, "maxResults": META_PAGE})
            entries = page.get("fields") or page.get("values") or []
            for meta in entries:
                yield meta
            start += len(entries)
            if not entries or page.get("isLast") or start >= int(page.get("total", start + 1)):
                return

    @classmethod
    def _field_spec(cls, fid: str, meta: Mapping[str, Any], field: Mapping[str, Any]) -> FieldSpec:
        schema = meta.get("schema") or field.get("schema") or {}
        kind, items = schema.get("type"), schema.get("items")
        if fid == "description" or cls._rich_text(schema):
            ftype = "richtext"
        elif fid == "assignee" or kind == "user":
            ftype = "user"
        elif kind == "array":
            ftype = {"string": "labels", "user": "users"}.get(items, "options")
        else:
            ftype = {"number": "number", "date": "date", "datetime": "datetime", "option": "option",
                     "priority": "option", "resolution": "option", "version": "option"}.get(kind, "string")
        options = [v.get("value") or v.get("name") for v in meta.get("allowedValues") or []] or None
        return FieldSpec(id=CANONICAL.get(fid, fid), name=meta.get("name") or field.get("name") or fid,
                         type=ftype, required=bool(meta.get("required")) and not meta.get("hasDefaultValue"),
                         options=options, custom=fid.startswith("customfield_"), writable=True)

    async def list_users(self, container: str, query: str = "") -> list[UserRef]:
        """Jira looks at the users in [startAt, startAt + maxResults) and answers only the
        assignable ones among them, so a short page is no sign of the end: pages follow until
        one comes back empty, or the search's horizon (the thousandth user) is reached."""
        await self._setup()
        project = await self._json("GET", f"project/{container}")
        found: dict[str, UserRef] = {}
        for start in range(0, USER_HORIZON, USER_PAGE):
            page = await self._json("GET", "user/assignable/search", params={
                "project": project["key"], "startAt": start, "maxResults": USER_PAGE,
                ("query" if self._cloud else "username"): query})
            if not page:
                break
            for user in page:
                ref = self._user(user)
                found.setdefault(ref.id, ref)
        return list(found.values())

    async def get_item(self, container: str, item_id: str, *, comments: bool = True,
                       attachments: bool = True) -> Item:
        issue = await self._json("GET", f"issue/{item_id}", params={"properties": PROPERTY})
        await self._schemas()
        item = self._item(issue)
        if comments:
            item.comments = await self.list_comments(container, item_id)
        if not attachments:
            item.attachments = None
        return item

    async def list_comments(self, container: str, item_id: str) -> list[Comment]:
        out, start = [], 0
        while True:
            page = await self._json("GET", f"issue/{item_id}/comment", params={
                "startAt": start, "maxResults": 100, "orderBy": "created", "expand": "properties"})
            out += [self._comment(c) for c in page["comments"]]
            start += len(page["comments"])
            if not page["comments"] or start >= page.get("total", 0):
                return out

    # -- the contract: writing ----------------------------------------------------------------

    async def _fields_out(self, container: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Jira field values for canonical `changes` (status and resolution excluded)."""
        await self._setup()
        out: dict[str, Any] = {}
        schemas = None
        for key, value in changes.items():
            if key in ("status", "resolution"):
                continue
            if key == "type":
                out["issuetype"] = {"name": value}
            elif key == "title":
                out["summary"] = value
            elif key == "description":
                out["description"] = self._from_markdown(value)
            elif key == "priority":
                out["priority"] = {"name": value} if value else None
            elif key == "labels":
                out["labels"] = sorted(value or [])
            elif key == "assignees":
                if len(value or []) > 1:
                    raise RemoteItemError("Jira issues have one assignee; got "
                                          f"{len(value)}", details={"assignee": "one assignee only"})
                out["assignee"] = self._user_out(value[0]) if value else None
            elif key == "reporter":
                out["reporter"] = self._user_out(value)
            elif key == "due_date":
                out["duedate"] = value
            elif key == "fix_versions":
                out["fixVersions"] = [{"name": name} for name in value or []]
            elif key.startswith("customfield_"):
                schemas = schemas or await self._schemas()
                out[key] = self._custom_out(value, (schemas.get(key) or {}).get("schema") or {})
            else:
                raise RemoteItemError(f"Jira has no field {key!r}", details={key: "unknown field"})
        return out

    def _custom_out(self, value: Any, schema: Mapping[str, Any]) -> Any:
        kind, items = schema.get("type"), schema.get("items")
        if value is None:
            return None
        if kind == "option":
            return {"value": value}
        if kind == "array" and items == "option":
            return [{"value": v} for v in value]
        if kind == "user":
            return self._user_out(value)
        if kind == "array" and items == "user":
            return [self._user_out(v) for v in value]
        if self._rich_text(schema):
            return self._from_markdown(value)
        return value

    async def create_item(self, container: str, item_type: str, fields: Mapping[str, Any],
                          marker: str) -> Item:
        payload = await self._fields_out(container, fields)
        payload.update(project={"id": container} if container.isdigit() else {"key": container},
                       issuetype={"name": item_type})
        # The marker goes in with the create itself, so no instant exists without it.
        created = await self._json("POST", "issue", expect=(201,), json={
            "fields": payload, "properties": [{"key": PROPERTY, "value": {"marker": marker}}]})
        item = await self.get_item(container, str(created["id"]), comments=False)
        wanted = fields.get("status")
        if wanted and wanted != item.fields["status"]:
            item = await self._transition_to(container, item, wanted, fields.get("resolution"))
        return item

    async def update_item(self, container: str, item_id: str, changes: Mapping[str, Any]) -> Item:
        payload = await self._fields_out(container, changes)
        if payload:
            await self._json("PUT", f"issue/{item_id}", json={"fields": payload}, expect=(204,))
        item = await self.get_item(container, item_id, comments=False)
        wanted = changes.get("status")
        if wanted and wanted != item.fields["status"]:
            item = await self._transition_to(container, item, wanted, changes.get("resolution"))
        elif "resolution" in changes and changes["resolution"] != item.fields["resolution"]:
            raise RemoteItemError(f"{item.key}: Jira sets a resolution only with a transition",
                                  details={"resolution": "only settable by a transition"})
        return item

    async def _transition_to(self, container: str, item: Item, status: str, resolution: str | None) -> Item:
        """Walk the workflow from the item's status to `status` (see the module docstring)."""
        if container not in self._statuses:
            self._statuses[container] = {s.name: s.category for s in await self.describe_statuses(container)}
        categories = self._statuses[container]
        visited = {item.fields["status"]}
        for _ in range(MAX_HOPS):
            available = (await self._json("GET", f"issue/{item.id}/transitions",
                                          params={"expand": "transitions.fields"}))["transitions"]
            direct = [t for t in available if t["to"]["name"] == status]
            candidates = direct or sorted(
                (t for t in available if t["to"]["name"] not in visited),
                key=lambda t: (categories.get(t["to"]["name"]) != categories.get(status),
                               categories.get(t["to"]["name"]) == "done"))
            if not candidates:
                break
            transition = candidates[0]
            body: dict[str, Any] = {"transition": {"id": transition["id"]}}
            fields = self._transition_fields(item, transition, resolution if direct else None)
            if fields:
                body["fields"] = fields
            await self._json("POST", f"issue/{item.id}/transitions", json=body, expect=(204,))
            visited.add(transition["to"]["name"])
            item = await self.get_item(container, item.id, comments=False)
            if item.fields["status"] == status:
                return item
        raise RemoteItemError(f"{item.key}: no workflow path from {item.fields['status']!r} to {status!r}",
                              details={"status": f"cannot reach {status!r}"})

    def _transition_fields(self, item: Item, transition: Mapping[str, Any], resolution: str | None) -> dict:
        out: dict[str, Any] = {}
        for fid, meta in (transition.get("fields") or {}).items():
            if not meta.get("required") or meta.get("hasDefaultValue"):
                continue
            allowed = [v.get("name") or v.get("value") for v in meta.get("allowedValues") or []]
            if fid == "resolution":
                preferred = resolution or self.options.get("done_resolution", "Done")
                name = preferred if preferred in allowed or not allowed else allowed[0]
                out["resolution"] = {"name": name}
            else:
                raise RemoteItemError(f"{item.key}: transition {transition['name']!r} requires field "
                                      f"{meta.get('name', fid)!r}", details={fid: "required by the transition"})
        return out

    async def container_exists(self, container: str) -> bool:
        try:
            await self._json("GET", f"project/{container}")
        except RemoteNotFound:
            return False
        return True

    async def describe_statuses(self, container: str) -> list[StatusSpec]:
        """The statuses of the project's workflows with their categories."""
        out: dict[str, StatusSpec] = {}
        for entry in await self._json("GET", f"project/{container}/statuses"):
            for s in entry.get("statuses") or []:
                out.setdefault(s["name"], StatusSpec(s["name"], CATEGORIES.get(
                    (s.get("statusCategory") or {}).get("key"), "in_progress")))
        return list(out.values())

    async def delete_item(self, container: str, item_id: str) -> None:
        # Jira refuses (400) to delete an issue with sub-tasks unless they go with it; they are
        # parts of the issue the other app deleted.
        await self._json("DELETE", f"issue/{item_id}", params={"deleteSubtasks": "true"}, expect=(204,))

    async def add_comment(self, container: str, item_id: str, body: str, marker: str) -> Comment:
        await self._setup()
        created = await self._json("POST", f"issue/{item_id}/comment", expect=(201,), json={
            "body": self._from_markdown(body, empty=True),
            "properties": [{"key": PROPERTY, "value": {"marker": marker}}]})
        comment = self._comment(created)
        comment.marker = marker
        return comment

    async def update_comment(self, container: str, item_id: str, comment_id: str, body: str) -> Comment:
        # The marker is a comment property: an edit of the body leaves it in place.
        await self._setup()
        updated = await self._json("PUT", f"issue/{item_id}/comment/{comment_id}", params={"expand": "properties"},
                                   json={"body": self._from_markdown(body, empty=True)})
        return self._comment(updated)

    async def delete_comment(self, container: str, item_id: str, comment_id: str) -> None:
        await self._json("DELETE", f"issue/{item_id}/comment/{comment_id}", expect=(204,))

    # -- attachments --------------------------------------------------------------------------

    async def delete_attachment(self, container: str, item_id: str, ref: AttachmentRef) -> None:
        await self._json("DELETE", f"attachment/{ref.id}", expect=(204,))

    async def download_attachment(self, ref: AttachmentRef) -> AsyncIterator[bytes]:
        await self._setup()
        # Cloud redirects content to its media host unless asked not to (that host would need
        # its own place on the egress allow-list, and must not get the credential).
        params = {"redirect": "false"} if self._cloud else None
        async with self.http.stream("GET", ref.url, params=params, endpoint="GET attachment content") as response:
            async for chunk in response.iter_chunked():
                yield chunk

    async def upload_attachment(self, container: str, item_id: str, filename: str,
                                chunks: AsyncIterator[bytes], size: int, mime_type: str) -> AttachmentRef:
        await self._setup()
        async with spooled_upload(chunks, size, filename, mime_type) as form:
            added = (await self.http.request("POST", f"{self.api}/issue/{item_id}/attachments", data=form,
                                             headers={"X-Atlassian-Token": "no-check"})).json()
        return self._attachment(added[0])
