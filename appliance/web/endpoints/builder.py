"""What the integration builder asks: tenant realm.

Discovery (role editor: the builder is an editor's screen, and each call signs in to the app with
the connection's stored credential, like "test connection"):
  GET /api/v1/connections/{id}/containers                      projects / repositories it sees
  GET /api/v1/connections/{id}/containers/{container}          item types, fields, statuses, ...
  GET /api/v1/connections/{id}/containers/{container}/users?q= people who can be assigned there
Each call goes to the app at once, through an OutboundClient allowing only that connection's
host (appliance.web.endpoints.connections.remote), with a short retry and DISCOVERY_SECONDS
overall. `{container}` is a ContainerRef.id as the containers list gives it ("10000", "7").

What the app says goes to the person in the standard error shape, with
`details = {"connection_id", "connection", "kind"}`: the app refused the credential (or the
stored one cannot be used) -> 502 "remote_auth"; the app is unreachable or overloaded -> 502
"remote_unavailable" (Retry-After when the app gave one); no answer in time -> 504
"remote_timeout"; an answer no app of this kind sends -> 502 "remote_unexpected"; the host is not
allowed -> 502 "egress_denied"; an unknown or invisible container -> 404.

Suggestions (role viewer: a pure function of the body, it reads nothing):
  POST /api/v1/integrations/suggest: from the statuses, priorities and users both sides
  described, suggested value-map pairs and the values left unmapped (appliance.sync.suggest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import asyncpg
from aiohttp import web
from pydantic import Field

from appliance.connectors.base import (Connector, ConnectorError, EgressDenied, FieldType, RemoteAuthError,
                                       RemoteNotFound, RetriableRemoteError, StatusCategory)
from appliance.sync import suggest
from appliance.sync.connections import CredentialUnusable
from appliance.web.api import API, ApiError, ApiModel, Context
from appliance.web.endpoints.connections import CONNECTIONS, Container, load_connection, remote

log = logging.getLogger(__name__)

TAG = "builder"
ONE = CONNECTIONS + "/{id}/containers/{container}"
DISCOVERY_SECONDS = 60
MAX_USERS = 200
MAX_VALUES = 1000
T = TypeVar("T")

REMOTE_ERRORS = {404: "The connection does not exist, or it sees no such container.",
                 502: "The app refused the credential, was unreachable or answered unexpectedly "
                      "(error.code says which; error.details names the connection).",
                 504: "The app did not answer in time."}


# --- models --------------------------------------------------------------------------------------

class ContainerList(ApiModel):
    containers: list[Container] = Field(description="Every container the credential sees, as the app lists them.")


class FieldOut(ApiModel):
    id: str = Field(description="The key a field mapping names (a canonical field or e.g. customfield_10010).")
    name: str
    type: FieldType
    required: bool
    options: list[str] | None = Field(description="Allowed values of option(s) fields; null otherwise.")
    custom: bool
    writable: bool = Field(description="False: Tandem can read it but not write it.")


class StatusOut(ApiModel):
    name: str
    category: StatusCategory


class ContainerDescription(ApiModel):
    id: str
    key: str
    name: str
    url: str
    item_types: list[str]
    fields: list[FieldOut]
    statuses: list[StatusOut]
    priorities: list[str]
    labels: list[str]


class RemoteUser(ApiModel):
    id: str
    name: str
    email: str | None
    login: str | None


class UserQuery(ApiModel):
    q: str | None = Field(default=None, min_length=1, max_length=100,
                          description="Name, login or e-mail prefix, as the app searches.")
    limit: int = Field(default=50, ge=1, le=MAX_USERS)


class UserList(ApiModel):
    users: list[RemoteUser]
    truncated: bool = Field(description="The app knows more matches than `limit`; narrow the search.")


class SuggestSide(ApiModel):
    """What one side's describe (and users search) reported."""

    statuses: list[StatusOut] = Field(default_factory=list, max_length=MAX_VALUES)
    priorities: list[str] = Field(default_factory=list, max_length=MAX_VALUES)
    users: list[RemoteUser] = Field(default_factory=list, max_length=5 * MAX_VALUES)


class SuggestRequest(ApiModel):
    a: SuggestSide
    b: SuggestSide


class ValuePair(ApiModel):
    a: str
    b: str
    reason: Literal["same_name", "same_category"]


class ValueSuggestion(ApiModel):
    pairs: list[ValuePair]
    unmapped_a: list[str] = Field(description="A values without a suggested partner, in A's order.")
    unmapped_b: list[str] = Field(description="B values no A value was paired with, in B's order.")
    value_map: dict[str, str] = Field(description="The pairs as FieldMapping.value_map (A value -> B value).")
    reverse_map: dict[str, str] = Field(description="For B values several A values map to: the A value a change "
                                                    "on B should become, as FieldMapping.reverse_map.")


class UserPair(ApiModel):
    a: RemoteUser
    b: RemoteUser
    reason: Literal["same_email", "same_login", "same_name"]


class UserSuggestion(ApiModel):
    pairs: list[UserPair]
    unmapped_a: list[RemoteUser]
    unmapped_b: list[RemoteUser]
    map: dict[str, str] = Field(description="The pairs as spec.users.map (A e-mail or login -> B e-mail or login).")


class Suggestions(ApiModel):
    statuses: ValueSuggestion
    priorities: ValueSuggestion
    users: UserSuggestion


# --- talking to the app --------------------------------------------------------------------------

def _remote_error(row: asyncpg.Record, exc: BaseException, container: str | None) -> ApiError:
    """The answer for what the app (or the way to it) did; messages carry no secret
    (appliance.outbound redacts them)."""
    details = {"connection_id": row["id"], "connection": row["name"], "kind": row["kind"]}
    where = f"connection {row['name']!r}"
    if isinstance(exc, RemoteNotFound) and container is not None:
        return ApiError(404, f"The app of {where} has no container {container!r}, or the credential may not see "
                             "it.", details)
    if isinstance(exc, RemoteNotFound):
        return ApiError(502, f"The app of {where} answered \"not found\" ({exc}); check the connection's base URL.",
                        details, code="remote_unexpected")
    if isinstance(exc, CredentialUnusable):
        return ApiError(502, f"The stored credential of {where} cannot be used: {exc}", details, code="remote_auth")
    if isinstance(exc, RemoteAuthError):
        return ApiError(502, f"The app refused the credential of {where}: {exc}; fix the connection and test it.",
                        details, code="remote_auth")
    if isinstance(exc, EgressDenied):
        return ApiError(502, f"Not allowed to reach the app of {where}: {exc}", details, code="egress_denied")
    if isinstance(exc, RetriableRemoteError):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else None
        return ApiError(502, f"Could not reach the app of {where} (try again later): {exc}", details,
                        headers=headers, code="remote_unavailable")
    if isinstance(exc, TimeoutError):
        return ApiError(504, f"The app of {where} did not answer within {DISCOVERY_SECONDS} seconds.", details,
                        code="remote_timeout")
    if isinstance(exc, ConnectorError):
        return ApiError(502, f"The app of {where} refused the request: {exc}", details, code="remote_error")
    return ApiError(502, f"The answers of {where} are not what a {row['kind']} server sends; check its base URL.",
                    details, code="remote_unexpected")


async def _ask(request: web.Request, ctx: Context, call: Callable[[Connector], Awaitable[T]],
               container: str | None = None) -> T:
    """`call(connector)` for the connection in the path, errors answered as the module says."""
    async with ctx.transaction() as conn:
        row = await load_connection(conn, ctx.path["id"])
    if row is None:
        raise ApiError(404, f"There is no connection {ctx.path['id']}.")
    try:
        async with remote(request, ctx, row) as connector, asyncio.timeout(DISCOVERY_SECONDS):
            return await call(connector)
    except (ConnectorError, TimeoutError) as exc:
        raise _remote_error(row, exc, container) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # JSON, but not the JSON this kind of app sends: most likely the base URL points elsewhere.
        log.info("connection %s: discovery got an answer of unexpected shape (%s)", row["id"], type(exc).__name__,
                 extra={"tenant": ctx.realm.slug})
        raise _remote_error(row, exc, container) from None


# --- discovery -----------------------------------------------------------------------------------

@API.operation("GET", CONNECTIONS + "/{id}/containers", summary="Containers a connection sees", tags=[TAG],
               realm="tenant", role="editor", response=ContainerList, errors=REMOTE_ERRORS,
               description="Projects (Jira) or projects/repositories (GitLab), asked of the app now.")
async def list_containers(request: web.Request, ctx: Context) -> ContainerList:
    refs = await _ask(request, ctx, lambda c: c.list_containers())
    return ContainerList(containers=[Container(**r.to_dict()) for r in refs])


@API.operation("GET", ONE, summary="Describe a container", tags=[TAG], realm="tenant", role="editor",
               response=ContainerDescription, errors=REMOTE_ERRORS,
               description="Item types, fields (custom ones included) with types and options, statuses with "
                           "their categories, priorities and labels, asked of the app now.")
async def describe_container(request: web.Request, ctx: Context) -> ContainerDescription:
    container = ctx.path["container"]
    info = await _ask(request, ctx, lambda c: c.describe(container), container)
    return ContainerDescription(**info.to_dict())


@API.operation("GET", ONE + "/users", summary="Search a container's users", tags=[TAG], realm="tenant",
               role="editor", query=UserQuery, response=UserList, errors=REMOTE_ERRORS,
               description="People who can be assigned in the container, for the user map.")
async def search_users(request: web.Request, ctx: Context) -> UserList:
    container, query = ctx.path["container"], ctx.query
    users = await _ask(request, ctx, lambda c: c.list_users(container, query.q or ""), container)
    return UserList(users=[RemoteUser(**u.to_dict()) for u in users[:query.limit]],
                    truncated=len(users) > query.limit)


# --- suggestions ---------------------------------------------------------------------------------

def _person(user: RemoteUser) -> suggest.Person:
    return suggest.Person(user.id, user.name, user.email, user.login)


def _user(person: suggest.Person) -> dict[str, Any]:
    return {"id": person.id, "name": person.name, "email": person.email, "login": person.login}


def _values(found: suggest.Suggestion) -> ValueSuggestion:
    return ValueSuggestion(pairs=[ValuePair(a=p.a, b=p.b, reason=p.reason) for p in found.pairs],
                           unmapped_a=found.unmapped_a, unmapped_b=found.unmapped_b, value_map=found.value_map,
                           reverse_map=found.reverse_map)


@API.operation("POST", "/api/v1/integrations/suggest", summary="Suggest value maps", tags=[TAG], realm="tenant",
               role="viewer", body=SuggestRequest, response=Suggestions,
               description="Give what both sides' describe (and users search) reported; get suggested status, "
                           "priority and user pairs (same name, then same status category; users by e-mail, "
                           "login, then name) and the values left unmapped. Reads nothing, stores nothing.")
async def suggest_value_maps(request: web.Request, ctx: Context) -> Suggestions:
    a, b = ctx.body.a, ctx.body.b
    statuses = suggest.suggest_statuses([suggest.Status(s.name, s.category) for s in a.statuses],
                                        [suggest.Status(s.name, s.category) for s in b.statuses])
    priorities = suggest.suggest_names(a.priorities, b.priorities)
    users = suggest.suggest_users([_person(u) for u in a.users], [_person(u) for u in b.users])
    return Suggestions(
        statuses=_values(statuses), priorities=_values(priorities),
        users=UserSuggestion(pairs=[UserPair(a=_user(x), b=_user(y), reason=r) for x, y, r in users.pairs],
                             unmapped_a=[_user(p) for p in users.unmapped_a],
                             unmapped_b=[_user(p) for p in users.unmapped_b], map=users.map))
