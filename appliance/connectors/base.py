"""The connector contract, the canonical data model and the connector errors.

One `Connector` instance serves one connection (one base URL + one credential) inside one tenant
worker; every call goes through the `ConnectionHttp` it was given (appliance.outbound), so
timeouts, retries, the rate-limit budget and the egress allow-list apply uniformly.

Data model: plain dataclasses whose values are JSON-serialisable through `to_dict()` /
`from_dict()` (datetimes as ISO 8601 strings with offset), so the engine can store the last
synced values ("base snapshots") as JSON. All datetimes are tz-aware UTC with the full precision
the app gives.

Canonical `Item.fields` keys (a connector fills those its app has):
  "title" str; "description" Markdown str (the canonical rich text); "status" str (status name);
  "priority" str | None; "labels" sorted list[str]; "assignees" list[UserRef dict];
  "reporter" UserRef dict | None; "due_date" "YYYY-MM-DD" | None; "milestone" str | None;
  plus app-specific keys ("weight", "confidential", "fix_versions", "resolution",
  "customfield_10010", ...). Values are JSON-serialisable.

Errors: every failure a connector lets out is a `ConnectorError`; appliance.outbound classifies
HTTP outcomes once (its CLASSIFICATION table) into the subclasses below, which say what the
caller does: retry later, stop the connection and show the admin, or fail that one item.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from appliance.errors import ConfigurationError, FatalError, RetriableError, TandemError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from appliance.outbound import ConnectionHttp


# -- errors -----------------------------------------------------------------------------------

class ConnectorError(TandemError):
    """Base of every connector failure. `str(exc)` is a message fit to show the tenant admin
    (never a credential or a raw response body); `status` is the HTTP status when there was one,
    `endpoint` the "METHOD /path/template" it concerned (for stats and logs)."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.endpoint = endpoint


class RetriableRemoteError(ConnectorError, RetriableError):
    """Try again later: 429, 5xx, connection errors, timeouts, after the client's own retries
    ran out (or when the server asked for a wait longer than the client waits in-line).
    `retry_after` is the server's requested wait in seconds when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None,
                 endpoint: str | None = None):
        super().__init__(message, status=status, endpoint=endpoint)
        self.retry_after = retry_after


class RemoteAuthError(ConnectorError, ConfigurationError):
    """401/403: the credential is wrong, revoked or lacks a permission. A connection
    configuration error: stop this connection's work and show the tenant admin."""


class ContainerGone(RemoteAuthError):
    """The integration's container (a project) is gone, or the credential can no longer see it:
    every item in it then answers 404, which says nothing about the items. Stops the
    connection's work like a refused credential, so no delete policy acts on a lost access."""


class RemoteItemError(ConnectorError, FatalError):
    """Another 4xx (or an unexpected status): the app refused this request for this item.
    The message carries the app's own explanation (from its error body, secrets removed);
    `details` the app's per-field errors when it gave them ({"summary": "..."})."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None,
                 details: Mapping[str, str] | None = None):
        super().__init__(message, status=status, endpoint=endpoint)
        self.details = dict(details or {})


class RemoteNotFound(RemoteItemError):
    """404/410: the item (or container) does not exist, or is not visible to this credential."""


class NotSupported(RemoteItemError):
    """The app offers no way to make this change with this credential (GitLab lets only a
    note's author edit it; an upload linked from a description cannot be unlinked). Raised
    before anything is sent; the message says what a person can do instead."""


class EgressDenied(ConnectorError, ConfigurationError):
    """A request to a host outside the tenant's egress allow-list (the hosts of its configured
    connections) was refused before anything left the appliance."""


# -- data model -------------------------------------------------------------------------------

def _dt_out(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt_in(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def utc(value: datetime) -> datetime:
    """`value` as tz-aware UTC (naive values are taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


@dataclass(frozen=True)
class UserRef:
    """A person in one app. `id` is the app's stable id (Jira accountId / user key, GitLab user
    id as str); `email` and `login` when the app reveals them (used for user mapping)."""

    id: str
    name: str
    email: str | None = None
    login: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserRef:
        return cls(id=str(data["id"]), name=data["name"], email=data.get("email"), login=data.get("login"))


@dataclass
class Comment:
    """A comment in Markdown. `marker` is the sync marker found in it (None if not Tandem's);
    `system` marks app-generated notes (GitLab system notes), which are never synced."""

    id: str
    author: UserRef
    body: str
    created_at: datetime
    updated_at: datetime
    marker: str | None = None
    system: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "author": self.author.to_dict(), "body": self.body,
                "created_at": _dt_out(self.created_at), "updated_at": _dt_out(self.updated_at),
                "marker": self.marker, "system": self.system}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comment:
        return cls(id=str(data["id"]), author=UserRef.from_dict(data["author"]), body=data["body"],
                   created_at=_dt_in(data["created_at"]), updated_at=_dt_in(data["updated_at"]),
                   marker=data.get("marker"), system=bool(data.get("system", False)))


@dataclass
class AttachmentRef:
    """An attachment as the app lists it; `url` is what `download_attachment` fetches. `size`
    is None when the app does not list it (a file a person linked in GitLab Markdown): the engine
    then learns it by reading the file, never past the integration's size cap."""

    id: str
    filename: str
    size: int | None
    mime_type: str
    created_at: datetime
    author: UserRef | None
    url: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "filename": self.filename, "size": self.size, "mime_type": self.mime_type,
                "created_at": _dt_out(self.created_at),
                "author": self.author.to_dict() if self.author else None, "url": self.url}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttachmentRef:
        author = data.get("author")
        size = data.get("size")
        return cls(id=str(data["id"]), filename=data["filename"], size=None if size is None else int(size),
                   mime_type=data["mime_type"], created_at=_dt_in(data["created_at"]),
                   author=UserRef.from_dict(author) if author else None, url=data["url"])


@dataclass
class Item:
    """One work item. `id` is the stable remote id the engine links by (Jira issue id, GitLab
    issue iid), `key` the human one ("PROJ-12", "#12"). `fields` uses the canonical keys (module
    docstring). `marker` is the sync marker stamped on the item, if any. `comments` and
    `attachments` are None when not fetched (not the same as empty). `raw_version` is whatever
    the app offers to detect concurrent change (e.g. the updated timestamp string), or None.
    `unreadable` says why the connector could not convert the app's data of an item on a page
    of changes (see `readable`); such an item carries nothing else but its id, key and time."""

    id: str
    key: str
    url: str
    type: str
    created_at: datetime
    updated_at: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    marker: str | None = None
    deleted: bool = False
    comments: list[Comment] | None = None
    attachments: list[AttachmentRef] | None = None
    raw_version: str | None = None
    unreadable: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "url": self.url, "type": self.type,
                "created_at": _dt_out(self.created_at), "updated_at": _dt_out(self.updated_at),
                "fields": self.fields, "marker": self.marker, "deleted": self.deleted,
                "comments": None if self.comments is None else [c.to_dict() for c in self.comments],
                "attachments": (None if self.attachments is None
                                else [a.to_dict() for a in self.attachments]),
                "raw_version": self.raw_version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Item:
        comments = data.get("comments")
        attachments = data.get("attachments")
        return cls(id=str(data["id"]), key=data["key"], url=data["url"], type=data["type"],
                   created_at=_dt_in(data["created_at"]), updated_at=_dt_in(data["updated_at"]),
                   fields=dict(data.get("fields") or {}), marker=data.get("marker"),
                   deleted=bool(data.get("deleted", False)),
                   comments=None if comments is None else [Comment.from_dict(c) for c in comments],
                   attachments=(None if attachments is None
                                else [AttachmentRef.from_dict(a) for a in attachments]),
                   raw_version=data.get("raw_version"))


def readable(convert: Callable[[], Item], *, item_id: str, key: str, updated_at: datetime) -> Item:
    """`convert()`, the conversion of one item of a page of changes; when it raises (data the
    connector does not understand), an Item marked `unreadable` in its place, so that item
    fails on its own (an item error, retried) and the page, and the cursor, go on. Without this
    one odd item would stop every poll of its side at the same page."""
    try:
        return convert()
    except Exception as exc:   # any: this is the one item's problem, not the poll's
        log.warning("item %s could not be read: %s: %s", key, type(exc).__name__, exc)
        return Item(id=item_id, key=key, url="", type="", created_at=updated_at, updated_at=updated_at,
                    unreadable=f"{type(exc).__name__}: {exc}")


FieldType = Literal["string", "richtext", "number", "date", "datetime", "user", "users", "option",
                    "options", "labels", "boolean"]
StatusCategory = Literal["todo", "in_progress", "done"]


@dataclass
class FieldSpec:
    """A field of a container, for the mapping editor. `id` is the key used in Item.fields
    (canonical key or app-specific id such as "customfield_10010"); `options` lists allowed
    values for option(s) fields; `writable` False for fields the connector can only read."""

    id: str
    name: str
    type: FieldType
    required: bool = False
    options: list[str] | None = None
    custom: bool = False
    writable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldSpec:
        return cls(id=data["id"], name=data["name"], type=data["type"], required=bool(data.get("required")),
                   options=data.get("options"), custom=bool(data.get("custom")),
                   writable=bool(data.get("writable", True)))


@dataclass
class StatusSpec:
    name: str
    category: StatusCategory

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusSpec:
        return cls(name=data["name"], category=data["category"])


@dataclass
class ContainerRef:
    """A container (Jira project, GitLab project) as listed: `id` stable, `key` human
    ("PROJ", "group/project")."""

    id: str
    key: str
    name: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContainerRef:
        return cls(id=str(data["id"]), key=data["key"], name=data["name"], url=data["url"])


@dataclass
class ContainerInfo:
    """What the mapping editor needs to know about one container."""

    id: str
    key: str
    name: str
    url: str
    item_types: list[str] = field(default_factory=list)
    fields: list[FieldSpec] = field(default_factory=list)
    statuses: list[StatusSpec] = field(default_factory=list)
    priorities: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "name": self.name, "url": self.url,
                "item_types": list(self.item_types), "fields": [f.to_dict() for f in self.fields],
                "statuses": [s.to_dict() for s in self.statuses], "priorities": list(self.priorities),
                "labels": list(self.labels)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContainerInfo:
        return cls(id=str(data["id"]), key=data["key"], name=data["name"], url=data["url"],
                   item_types=list(data.get("item_types") or []),
                   fields=[FieldSpec.from_dict(f) for f in data.get("fields") or []],
                   statuses=[StatusSpec.from_dict(s) for s in data.get("statuses") or []],
                   priorities=list(data.get("priorities") or []), labels=list(data.get("labels") or []))


@dataclass
class ChangePage:
    """One page of changed items, oldest first; `next_cursor` None on the last page. `total`,
    on a poll's first page only, is how many items the whole poll holds as the app counted them
    then (an estimate: items change while it runs), or None when the app does not say."""

    items: list[Item]
    next_cursor: str | None = None
    total: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in self.items], "next_cursor": self.next_cursor, "total": self.total}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChangePage:
        return cls(items=[Item.from_dict(i) for i in data["items"]], next_cursor=data.get("next_cursor"),
                   total=data.get("total"))


WebhookKind = Literal["created", "updated", "deleted", "comment", "attachment", "other"]


@dataclass(frozen=True)
class WebhookEvent:
    """"Look at item `item_id` of `container` now": a delivery only enqueues work; the engine
    reads the item itself (the poll remains the safety net)."""

    container: str
    item_id: str
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookEvent:
        return cls(container=str(data["container"]), item_id=str(data["item_id"]), kind=data["kind"])


@dataclass
class ConnectionReport:
    """The result of "test connection": who the credential is, what it can see, what it may do
    (`permissions`, e.g. ["read", "write", "comment", "attach", "admin"]), and a one-line
    `detail` for the admin (app name and version, or what is wrong)."""

    ok: bool
    account: UserRef | None
    containers: list[ContainerRef] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "account": self.account.to_dict() if self.account else None,
                "containers": [c.to_dict() for c in self.containers],
                "permissions": list(self.permissions), "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConnectionReport:
        account = data.get("account")
        return cls(ok=bool(data["ok"]), account=UserRef.from_dict(account) if account else None,
                   containers=[ContainerRef.from_dict(c) for c in data.get("containers") or []],
                   permissions=list(data.get("permissions") or []), detail=data.get("detail", ""))


# -- the contract -----------------------------------------------------------------------------

class Connector(abc.ABC):
    """One instance per connection, used by one tenant worker. All methods are async and may raise
    any ConnectorError (RetriableRemoteError, RemoteAuthError, RemoteItemError/RemoteNotFound,
    EgressDenied); they never log a credential or a response body.

    `container` arguments are ContainerRef.id values. `item_id` arguments are Item.id values.
    Writes take canonical field keys and values (module docstring) and return the item as the app
    has it afterwards (so the engine's base snapshot is what the app really stored).
    """

    #: The app name ("jira", "gitlab"), used in the connection's configuration.
    kind: ClassVar[str] = ""

    def __init__(self, http: ConnectionHttp, options: Mapping[str, Any] | None = None):
        """`http` is the connection's client (base URL and credential headers already set);
        `options` the connection's non-secret settings (e.g. {"flavor": "cloud"})."""
        self.http = http
        self.options = dict(options or {})

    @classmethod
    @abc.abstractmethod
    def auth_headers(cls, credentials: Mapping[str, Any]) -> dict[str, str]:
        """The HTTP headers that authenticate with `credentials` (the connection's decrypted
        secret, e.g. {"token": ...} or {"email": ..., "token": ...}); used to build the
        ConnectionHttp. Raises ConnectorError if required keys are missing."""

    @abc.abstractmethod
    async def test(self) -> ConnectionReport:
        """Who the credential is and what it can see. Returns ok=False with a readable `detail`
        for a bad credential (RemoteAuthError is caught and reported, not raised); other errors
        propagate. `account` is the identity the engine uses for echo suppression."""

    @abc.abstractmethod
    async def list_containers(self) -> list[ContainerRef]:
        """Every container the credential can see (all pages)."""

    @abc.abstractmethod
    async def describe(self, container: str) -> ContainerInfo:
        """Item types, fields (custom ones included), statuses with categories, priorities and
        labels of `container`. Raises RemoteNotFound for an unknown container."""

    async def container_exists(self, container: str) -> bool:
        """Whether the container can still be seen with this credential (False on 404); asked
        before a 404 for one of its items is taken to mean the item was deleted. Connectors
        override it with one cheap request."""
        try:
            await self.describe(container)
        except RemoteNotFound:
            return False
        return True

    @abc.abstractmethod
    async def list_users(self, container: str, query: str = "") -> list[UserRef]:
        """Users who can be assigned in `container`, filtered by `query` (name, login or e-mail
        prefix as the app searches) when given."""

    @abc.abstractmethod
    async def changed_since(self, container: str, since: datetime | None, cursor: str | None, *,
                            page_size: int = 50) -> ChangePage:
        """Items updated at or after `since` (all items when None), oldest first (by updated_at,
        then id), in stable pages: pass the returned `next_cursor` back to continue, with the
        same `since`. Where the app's filter is coarser than its timestamps (JQL's minutes),
        ask for an earlier bound and drop older items precisely. Items carry fields and marker;
        comments/attachments may be None (fetch with get_item). The first page (cursor None)
        carries `total` when the app counts the matching items in its answer, or at one more
        request made only when more pages follow; otherwise (and on later pages) None."""

    @abc.abstractmethod
    async def get_item(self, container: str, item_id: str, *, comments: bool = True,
                       attachments: bool = True) -> Item:
        """One item with all canonical fields, its marker, and (when asked) its comments (all
        pages, oldest first, system notes flagged) and attachments. RemoteNotFound if gone."""

    @abc.abstractmethod
    async def create_item(self, container: str, item_type: str, fields: Mapping[str, Any],
                          marker: str) -> Item:
        """Create an item of `item_type` with canonical `fields` and stamp `marker` where the
        app allows (Jira: issue property `tandem.sync`; GitLab: description footer
        `<!-- tandem:sync:<marker> -->`, invisible when rendered). Fields the create call cannot
        set (e.g. a status reached through a transition) are applied after creation. Returns
        the created item with `marker` set. Not retried blindly by the HTTP layer: after an
        ambiguous failure the engine calls find_by_marker before creating again."""

    @abc.abstractmethod
    async def update_item(self, container: str, item_id: str, changes: Mapping[str, Any]) -> Item:
        """Apply canonical field `changes` (only the keys given). A "status" change goes through
        the app's workflow (Jira: the transition leading to that status, with its required
        fields such as resolution; GitLab: state_event and status labels). Key "type" (an
        Item.type value) changes the item's type. Keeps the marker (GitLab: the description
        footer survives a description change). Returns the item."""

    @abc.abstractmethod
    async def find_by_marker(self, container: str, marker: str) -> Item | None:
        """The item carrying `marker`, or None. Must see items created moments ago (use the
        app's strongly consistent lookup where the search index lags)."""

    @abc.abstractmethod
    async def add_comment(self, container: str, item_id: str, body: str, marker: str) -> Comment:
        """Add a Markdown comment stamped with `marker` (Jira: comment property or a hidden
        footer; GitLab: hidden HTML comment footer); returns it with `marker` set."""

    @abc.abstractmethod
    async def update_comment(self, container: str, item_id: str, comment_id: str, body: str) -> Comment:
        """Replace the comment's text with Markdown `body`, keeping its marker; returns it as the
        app stores it. NotSupported when the app lets only the author edit it and the credential
        is not the author; RemoteNotFound if it is gone."""

    @abc.abstractmethod
    async def delete_comment(self, container: str, item_id: str, comment_id: str) -> None:
        """Delete the comment. RemoteNotFound if it is gone already; NotSupported when the
        credential may not delete it (checked before asking, where the app's rule is known)."""

    @abc.abstractmethod
    async def list_comments(self, container: str, item_id: str) -> list[Comment]:
        """All comments of the item (all pages), oldest first, with markers and system flags."""

    @abc.abstractmethod
    def download_attachment(self, ref: AttachmentRef) -> AsyncIterator[bytes]:
        """Stream the attachment's bytes (implement as an async generator: `async def` with
        `yield`; use `self.http.stream`). RemoteNotFound if it is gone."""

    @abc.abstractmethod
    async def upload_attachment(self, container: str, item_id: str, filename: str,
                                chunks: AsyncIterator[bytes], size: int, mime_type: str) -> AttachmentRef:
        """Attach `size` bytes read from `chunks` to the item under `filename`; returns the ref
        as the app lists it (GitLab: the upload, linked from the issue)."""

    @abc.abstractmethod
    async def delete_attachment(self, container: str, item_id: str, ref: AttachmentRef) -> None:
        """Remove the attachment `ref` (as get_item listed it) from the item. RemoteNotFound if
        it is gone already; NotSupported where the app cannot (the message says why)."""

    @abc.abstractmethod
    async def delete_item(self, container: str, item_id: str) -> None:
        """Delete the item (the engine's delete policy decides whether to call this).
        RemoteNotFound if it is already gone; RemoteAuthError if the credential may not."""

    @abc.abstractmethod
    async def verify_webhook(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """True only if the delivery proves knowledge of `secret` (GitLab: X-Gitlab-Token;
        Jira: HMAC signature header or the secret in the URL, as configured). Compares in
        constant time. Never raises for a malformed delivery: returns False."""

    @abc.abstractmethod
    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        """The items a (verified) delivery concerns; [] for events Tandem does not sync.
        Never raises for a malformed or unknown payload: returns []."""


# Uploads larger than this are spooled to disk, never held in memory.
SPOOL_BYTES = 1024 * 1024


@contextlib.asynccontextmanager
async def spooled_upload(chunks: AsyncIterator[bytes], size: int, filename: str, mime_type: str,
                         field_name: str = "file"):
    """Spool an attachment's stream (memory, then disk) and yield a factory of multipart
    bodies over it, one fresh body per attempt, so the outbound client can send the
    upload again after a 429 without holding a large file in memory.

    Raises RemoteItemError when the stream's length differs from `size`.
    """
    import aiohttp  # connectors only; keeps this module importable without the HTTP stack

    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        written = 0
        async for chunk in chunks:
            spool.write(chunk)
            written += len(chunk)
        if written != size:
            raise RemoteItemError(f"attachment {filename!r}: read {written} bytes, expected {size}")

        def form() -> aiohttp.FormData:
            async def read() -> AsyncIterator[bytes]:
                spool.seek(0)
                while block := spool.read(64 * 1024):
                    yield block

            data = aiohttp.FormData()
            data.add_field(field_name, read(), filename=filename, content_type=mime_type)
            return data

        yield form
