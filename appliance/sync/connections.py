"""From a `connections` row to a working Connector; and whether a spec fits its connections.

Used by the engine (appliance.sync.engine, in the tenant worker) and by the web tier's
"test connection" (appliance.web.endpoints.connections). The row's credential is opened with
appliance.secrets (bound to the tenant schema and the row id); the plaintext only ever lives in
the auth headers handed to the ConnectionHttp, never in a log line or an error message.

Stored credential shapes (what the API accepts, see the endpoint module):
  jira:   {"email", "api_token"} (Cloud) | {"token"} (Data Center/Server PAT) |
          {"username", "password"} (Data Center/Server basic auth)
  gitlab: {"token"}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import asyncpg
from yarl import URL

from appliance import secrets
from appliance.connectors.base import Connector, ConnectorError, RemoteAuthError
from appliance.connectors.gitlab import ISSUE_TYPES, GitLabConnector
from appliance.connectors.jira import JiraConnector
from appliance.db import jsonb
from appliance.errors import FatalError
from appliance.keys import MasterKey
from appliance.outbound import OutboundClient
from appliance.sync.spec import IntegrationSpec

CONNECTORS: dict[str, type[Connector]] = {"jira": JiraConnector, "gitlab": GitLabConnector}
MAX_BIGINT = 2**63 - 1
# Canonical Item.fields keys each app has (appliance.connectors.jira / gitlab docstrings).
FIELDS = {"jira": {"title", "description", "status", "priority", "labels", "assignees", "reporter", "due_date",
                   "fix_versions", "resolution"},
          "gitlab": {"title", "description", "status", "labels", "assignees", "reporter", "milestone", "due_date",
                     "weight", "confidential"}}
JIRA_CUSTOM = re.compile(r"^customfield_\d+$")


class UnknownConnectionKind(FatalError):
    """The row names an app Tandem has no connector for."""


class CredentialUnusable(RemoteAuthError):
    """The stored credential cannot be used: it does not decrypt here (appliance.secrets), or it
    lacks what the app needs. Like a credential the app refuses, a person must fix the
    connection (enter the credential again), so the engine stops that integration's run."""


def connector_credentials(kind: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The stored credential in the shape the connector's `auth_headers` takes (Jira calls a
    Cloud API token `token`; the API and the panel call it `api_token`)."""
    if kind == "jira" and stored.get("email"):
        return {"email": stored["email"], "token": stored.get("api_token") or stored.get("token")}
    return dict(stored)


def host_of(base_url: str) -> str:
    """The egress allow-list entry of a connection: host, or host:port when the URL names a port."""
    url = URL(base_url)
    host = (url.host or "").lower()
    return f"{host}:{url.port}" if url.explicit_port else host


def webhook_reader(kind: str, options: Mapping[str, Any]) -> Connector:
    """A connector of `kind` for verify_webhook / parse_webhook only: those read the delivery,
    never the app, so it gets no HTTP client and no credential (the web tier does not open
    credentials to accept a webhook). Raises UnknownConnectionKind."""
    cls = CONNECTORS.get(kind)
    if cls is None:
        raise UnknownConnectionKind(f"no connector for kind {kind!r}")
    return cls(None, options)  # type: ignore[arg-type]  (no HTTP: see above)


def connector_for(row: Mapping[str, Any], key: MasterKey, outbound: OutboundClient, schema: str) -> Connector:
    """The connector of connection `row` (a `connections` row: id, kind, base_url, options,
    credentials) in the tenant whose schema is `schema`, talking through `outbound` (whose
    allow-list must contain the row's host: EgressDenied otherwise).

    Raises UnknownConnectionKind for a kind without a connector, and CredentialUnusable (a
    RemoteAuthError) when the credential does not open or lacks what the app needs."""
    kind = row["kind"]
    cls = CONNECTORS.get(kind)
    if cls is None:
        raise UnknownConnectionKind(f"connection {row['id']}: no connector for kind {kind!r}")
    try:
        stored = secrets.decrypt(key, row["credentials"], schema=schema, connection_id=row["id"])
        headers = cls.auth_headers(connector_credentials(kind, stored))
    except (secrets.SecretError, ConnectorError) as exc:
        raise CredentialUnusable(str(exc)) from None
    http = outbound.for_connection(str(row["id"]), row["base_url"], headers)
    return cls(http, jsonb(row["options"]) or {})


async def check_spec(conn: asyncpg.Connection, spec: IntegrationSpec) -> list[tuple[str, str]]:
    """What is wrong with `spec` given the tenant's connections ([(field path, message)], empty
    when nothing): each side's connection exists, and the spec names only what that kind of app
    has (item types, canonical fields, user logins). `conn` is in the tenant's scope; the
    connections read are locked FOR SHARE until its transaction ends, so they cannot be deleted
    meanwhile."""
    problems: list[tuple[str, str]] = []
    kinds: dict[str, str] = {}
    cloud: dict[str, bool] = {}
    for side in ("a", "b"):
        connection_id = getattr(spec, f"side_{side}").connection_id
        row = None if connection_id > MAX_BIGINT else await conn.fetchrow(
            "SELECT kind, options::text AS options FROM connections WHERE id = $1 FOR SHARE", connection_id)
        if row is None:
            problems.append((f"spec.side_{side}.connection_id", f"there is no connection {connection_id}"))
            continue
        kinds[side] = row["kind"]
        cloud[side] = (jsonb(row["options"]) or {}).get("flavor") == "cloud"
    if _holds_nul(spec.model_dump(mode="json")):
        problems.append(("spec", "must not contain the NUL character (\\u0000)"))
    for side, kind in kinds.items():
        for i, mapping in enumerate(spec.type_mappings):
            item_type = getattr(mapping, f"{side}_type")
            if kind == "gitlab" and item_type not in ISSUE_TYPES:
                problems.append((f"spec.type_mappings.{i}.{side}_type",
                                 f"GitLab has no item type {item_type!r}; it has {', '.join(ISSUE_TYPES)} "
                                 "(tell kinds of issue apart with labels)"))
        for i, mapping in enumerate(spec.field_mappings):
            name = getattr(mapping, f"{side}_field")
            if name not in FIELDS[kind] and not (kind == "jira" and JIRA_CUSTOM.match(name)):
                extra = " or customfield_<id>" if kind == "jira" else ""
                problems.append((f"spec.field_mappings.{i}.{side}_field",
                                 f"{kind} has no field {name!r}; it has {', '.join(sorted(FIELDS[kind]))}{extra}"))
        for t in getattr(spec.filters, side).types:
            if kind == "gitlab" and t not in ISSUE_TYPES:
                problems.append((f"spec.filters.{side}.types", f"GitLab has no item type {t!r}"))
        if spec.users.match == "login" and kind == "jira" and cloud.get(side):
            problems.append(("spec.users.match", f"side {side.upper()} is Jira Cloud, which has no logins; "
                                                 "match users by email"))
    return problems


def _holds_nul(value: Any) -> bool:
    """PostgreSQL's jsonb cannot store the NUL character (\\u0000) anywhere in a document."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return False
