"""The REST API framework: declared operations, checked and documented in one place.

Endpoint modules (appliance/web/endpoints/*.py) declare each operation on the
registry `API` and register on import; `API.install(app)` adds every route plus
`GET /api/openapi.json`:

    @API.operation("POST", "/api/v1/users", summary="Create a user", tags=["users"],
                   realm="tenant", role="admin", body=UserCreate, response=UserOut, status=201,
                   errors={409: "A user with this e-mail address exists."})
    async def create_user(request: web.Request, ctx: Context) -> UserOut:
        async with ctx.transaction() as conn:
            ...

For every request the framework, in this order:
1. realm: the operation's realm ("console", "tenant" or "any") against
   `request[REALM].kind` (set by the host router); a wrong realm answers 404, exactly
   like a path that does not exist, so one realm never reveals the other's API;
2. role: `request[PRINCIPAL]` (set by the auth middleware) None -> 401; a role below
   the operation's (viewer < editor < admin) -> 403; `role=None` needs no sign-in;
3. path parameters: validated by the operation's `params` model, or inferred from the
   template: `{id}` and `{..._id}` are integers 1..2**63-1, anything else a string;
   a value that does not validate answers 404 (there is nothing at that address);
4. query: validated by the `query` model (unknown parameters rejected) -> 422;
5. body: must be JSON (`Content-Type: application/json` or `*/*+json`, else 415),
   validated by the `body` model (unknown fields rejected) -> 422 with
   `details.fields = [{"field": "a.b", "message": "..."}]`;
6. the handler `async def h(request, ctx) -> model | None` runs; it may raise
   `ApiError` (any status), `ValidationFailed` (422 on one field), or the domain errors
   NotFound (404), AlreadyExists (409), DatabaseUnavailable (503);
7. the response: the returned model is serialised with `model_dump_json()` and the
   result validated against the declared `response` model before anything is sent;
   a mismatch is a bug of ours: logged, and the client gets a plain 500, never a
   half-valid document. An operation without a response model answers 204.

Request and response models should derive from `ApiModel` (unknown fields
forbidden, so the schema says `additionalProperties: false`). Lists answer
`Page[Item]` and take a query model derived from `PageQuery`; cursors are opaque
(`encode_cursor`/`decode_cursor`, base64url of the JSON of the last row's sort key).

The OpenAPI 3.1 document is generated from the same models (`Api.openapi()`), with
every status the framework itself can answer besides the declared ones.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncContextManager, Awaitable, Callable, Generic, Literal, Sequence, TypeVar

import asyncpg
import pydantic_core
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model, field_validator
from pydantic_core import PydanticCustomError

from appliance.errors import AlreadyExists, DatabaseUnavailable, NotFound
from appliance.web.keys import PRINCIPAL, REALM
from appliance.web.realm import Realm, realm_transaction

if TYPE_CHECKING:
    from appliance.auth import Principal

log = logging.getLogger(__name__)

RealmKind = Literal["console", "tenant", "any"]
Role = Literal["viewer", "editor", "admin"]
ROLE_RANK = {"viewer": 0, "editor": 1, "admin": 2}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

OPENAPI_PATH = "/api/openapi.json"
SESSION_COOKIE = "__Host-tandem_session"
MAX_ID = 2**63 - 1                  # PostgreSQL bigint
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
REF_TEMPLATE = "#/components/schemas/{model}"

# The database went away under the handler: 503, try again. Narrow on purpose: an
# OSError or a timeout may be the handler's own outbound call, not the database.
DATABASE_AWAY = (DatabaseUnavailable, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                 asyncpg.ConnectionDoesNotExistError)

_PARAM = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


# --- models every operation shares ---------------------------------------------------------------

class ApiModel(BaseModel):
    """Base of request and response models: unknown fields are an error, in the
    response schema every field is required (we always send all of them), and no
    string may hold a NUL character (PostgreSQL text cannot store one)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _holds_nul(value):
            raise PydanticCustomError("nul_character", "must not contain the NUL character (\\u0000)")
        return value


def omittable(**kwargs: Any) -> Any:
    """A field of a PATCH body that may be left out but not set to null: declare it with its
    plain type (`name: str = omittable(max_length=100)`). Left out, it reads as None (defaults
    are not validated); null is refused like any other wrong type. The schema shows no default,
    None not being of the field's type."""
    return Field(default=None, json_schema_extra=_drop_default, **kwargs)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return False


class FieldError(ApiModel):
    field: str = Field(description='Dotted path of the offending input, e.g. "email" or "items.0.name".')
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(description='Stable machine-readable code, e.g. "validation_error", "not_found".')
    message: str = Field(description="What went wrong, for a person.")
    details: dict[str, Any] = Field(
        description='Extra facts; for validation errors `{"fields": [FieldError, ...]}`.')

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Error(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


T = TypeVar("T")


class Page(ApiModel, Generic[T]):
    """One page of a list. Pass `next_cursor` as `cursor` for the next page; null: the last page."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Cursor of the next page; null on the last page.")

    @classmethod
    def of(cls, rows: Sequence[Any], limit: int, key: Callable[[Any], Sequence[Any]]) -> "Page[T]":
        """A page from `rows` fetched with LIMIT `limit + 1`: the extra row, if present,
        only says there is more; `key(row)` is the sort key the next page starts after."""
        more = len(rows) > limit
        rows = list(rows[:limit])
        return cls(items=rows, next_cursor=encode_cursor(*key(rows[-1])) if more and rows else None)


class PageQuery(ApiModel):
    """Query of a paginated list; list endpoints derive their query model from it."""

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page.")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page.")


# --- errors handlers raise -----------------------------------------------------------------------

class ApiError(Exception):
    """Answer `status` with the JSON error shape; `message` is shown to the client;
    `code` overrides the status's usual code (appliance.web.app.ERRORS)."""

    def __init__(self, status: int, message: str | None = None, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None, code: str | None = None):
        super().__init__(message or str(status))
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers
        self.code = code


class ValidationFailed(ApiError):
    """422 naming the fields at fault: `ValidationFailed("slug", "must start with a letter")`
    or `ValidationFailed.many([("a", "..."), ("b", "...")])`."""

    def __init__(self, field_name: str, message: str):
        self._init([(field_name, message)])

    @classmethod
    def many(cls, problems: Sequence[tuple[str, str]]) -> "ValidationFailed":
        exc = cls.__new__(cls)
        exc._init(problems)
        return exc

    def _init(self, problems: Sequence[tuple[str, str]]) -> None:
        fields = [{"field": f, "message": m} for f, m in problems]
        ApiError.__init__(self, 422, _summary(fields), {"fields": fields}, code="validation_error")


def _summary(fields: list[dict[str, str]]) -> str:
    first = fields[0]
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    return f"{first['field']}: {first['message']}{more}"


def _fields(exc: ValidationError, whole: str) -> list[dict[str, str]]:
    """pydantic's errors as [{"field", "message"}]; `whole` names the input itself."""
    out = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or whole
        out.append({"field": where, "message": error["msg"]})
    return out


# --- cursors -------------------------------------------------------------------------------------

def encode_cursor(*key: Any) -> str:
    """An opaque cursor for the sort key `key` (JSON-serialisable values; datetimes as ISO)."""
    return base64.urlsafe_b64encode(pydantic_core.to_json(list(key))).rstrip(b"=").decode("ascii")


@functools.lru_cache(maxsize=64)
def _key_adapter(types: tuple[type, ...]) -> TypeAdapter:
    return TypeAdapter(tuple[types])


def decode_cursor(cursor: str, *types: type) -> tuple:
    """The sort key `encode_cursor` made, each value converted to `types` (e.g. `str`,
    `int`, `datetime`); raises ValidationFailed on field "cursor" for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        return _key_adapter(tuple(types)).validate_json(raw)
    except (ValueError, binascii.Error, ValidationError):  # ValidationError is a ValueError too
        raise ValidationFailed("cursor", "not a cursor of this list; start again without one") from None


# --- operations ----------------------------------------------------------------------------------

@dataclass
class Context:
    """What a handler gets besides the request: validated inputs and who is asking."""

    request: web.Request
    realm: Realm | None             # None only for realm "any" on an app without the host router
    principal: Principal | None     # None: not signed in (only where role is None)
    path: dict[str, Any]            # typed path parameters
    query: Any = None               # instance of the operation's query model
    body: Any = None                # instance of the operation's body model

    def transaction(self) -> AsyncContextManager[asyncpg.Connection]:
        """`async with ctx.transaction() as conn`: a transaction confined to the request's
        realm (tenant role + schema, or the control schema); unqualified table names.
        See appliance.web.realm.realm_transaction."""
        return realm_transaction(self.request)

    @property
    def actor(self) -> str:
        """Who to name in the audit log."""
        return self.principal.email if self.principal is not None else "anonymous"

    @property
    def client_addr(self) -> str | None:
        """The client's IP address (after trusted X-Forwarded-For), None when not an IP."""
        try:
            return str(ipaddress.ip_address(self.request.remote or ""))
        except ValueError:
            return None


Handler = Callable[[web.Request, Context], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    description: str | None
    tags: tuple[str, ...]
    realm: RealmKind
    role: Role | None
    params: type[BaseModel]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: dict[int, str] = field(default_factory=dict)
    body_required: bool = True


class Api:
    """A registry of operations. The app's is `API`; tests may build their own."""

    def __init__(self) -> None:
        self._operations: dict[tuple[str, str], Operation] = {}
        self._document: bytes | None = None

    @property
    def operations(self) -> list[Operation]:
        return sorted(self._operations.values(), key=lambda op: (op.path, METHODS.index(op.method)))

    def operation(self, method: str, path: str, *, summary: str, tags: Sequence[str], realm: RealmKind,
                  role: Role | None, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
                  response: type[BaseModel] | None = None, status: int | None = None,
                  errors: dict[int, str] | None = None, description: str | None = None,
                  params: type[BaseModel] | None = None, operation_id: str | None = None,
                  body_required: bool = True):
        """Declare an operation (see the module docstring). `status` defaults to 200, or
        204 without a response model; `errors` documents further statuses the handler
        answers ({409: "why"}); `body_required=False`: a request without a body gets the body
        model's defaults; `params` types the path parameters (default: inferred);
        `operation_id` defaults to the handler's name. Raises ValueError at import for a
        declaration that cannot work (duplicate, unknown realm or role, bad template)."""
        method = method.upper()
        if method not in METHODS:
            raise ValueError(f"{method}: not one of {', '.join(METHODS)}")
        if realm not in ("console", "tenant", "any"):
            raise ValueError(f"{method} {path}: realm {realm!r} is not console, tenant or any")
        if role is not None and role not in ROLE_RANK:
            raise ValueError(f"{method} {path}: role {role!r} is not viewer, editor, admin or None")
        if (method, path) in self._operations:
            raise ValueError(f"{method} {path} is declared twice")
        status = status or (200 if response is not None else 204)
        if (response is None) != (status == 204):
            raise ValueError(f"{method} {path}: 204 exactly when there is no response model")
        names = _path_names(method, path)

        def register(handler: Handler) -> Handler:
            op_id = operation_id or handler.__name__
            if any(op.operation_id == op_id for op in self._operations.values()):
                raise ValueError(f"{method} {path}: operation id {op_id!r} is taken")
            path_model = params or _infer_params(op_id, names)
            if set(path_model.model_fields) != set(names):
                raise ValueError(f"{method} {path}: params model fields {sorted(path_model.model_fields)} "
                                 f"differ from the template's {names}")
            self._operations[(method, path)] = Operation(
                method, path, handler, op_id, summary, description, tuple(tags), realm, role, path_model,
                body, query, response, status, dict(errors or {}), body_required)
            self._document = None
            return handler

        return register

    def install(self, app: web.Application) -> None:
        """Add a route for every operation, and GET /api/openapi.json, to `app`."""
        for op in self.operations:
            app.router.add_route(op.method, op.path, self._route(op))
        app.router.add_get(OPENAPI_PATH, self._serve_openapi, allow_head=False)

    def _route(self, op: Operation):
        async def route(request: web.Request) -> web.StreamResponse:
            return await self.serve(op, request)
        route.__name__ = route.__qualname__ = op.operation_id
        return route

    async def serve(self, op: Operation, request: web.Request) -> web.StreamResponse:
        """Run `op` for `request` with every check; always answers, never raises ApiError."""
        try:
            ctx = await _prepare(op, request)
            try:
                result = await op.handler(request, ctx)
            except NotFound as exc:
                raise ApiError(404, str(exc)) from exc
            except AlreadyExists as exc:
                raise ApiError(409, str(exc)) from exc
            except DATABASE_AWAY as exc:
                log.warning("%s %s: database unavailable: %s", op.method, op.path, exc)
                raise ApiError(503, "The database is unavailable right now; try again later.",
                               headers={"Retry-After": "5"}) from exc
        except ApiError as exc:
            return error_response(exc.status, exc.message, exc.details, headers=exc.headers, code=exc.code)
        return _respond(op, result)

    # --- the OpenAPI document ---

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every declared operation (a fresh copy)."""
        return json.loads(self.openapi_bytes())

    def openapi_bytes(self) -> bytes:
        if self._document is None:
            from appliance.web.openapi import build_document  # here: that module imports this one
            self._document = json.dumps(build_document(self.operations), separators=(",", ":")).encode()
        return self._document

    async def _serve_openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self.openapi_bytes(), content_type="application/json",
                            headers={"Cache-Control": "no-cache"})


API = Api()


def _path_names(method: str, path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"{method} {path}: a path starts with /")
    names = _PARAM.findall(path)
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"{method} {path}: path parameter {{{name}}} must be a plain lower-case name "
                             "(type it with params=Model, not with a pattern)")
    if len(set(names)) != len(names):
        raise ValueError(f"{method} {path}: a path parameter appears twice")
    return names


def _infer_params(operation_id: str, names: list[str]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name in names:
        if name == "id" or name.endswith("_id"):
            fields[name] = (int, Field(ge=1, le=MAX_ID))
        else:
            fields[name] = (str, Field(min_length=1))
    return create_model(f"{operation_id}_path", __base__=ApiModel, **fields)


async def _prepare(op: Operation, request: web.Request) -> Context:
    """Steps 1-5 of the module docstring; raises ApiError."""
    realm = request.get(REALM)
    if op.realm != "any" and (realm is None or realm.kind != op.realm):
        raise ApiError(404)
    principal = request.get(PRINCIPAL)
    if op.role is not None:
        # A principal of the other realm cannot reach here (the auth middleware looks
        # sessions up in the request's realm); checked again because it would be a leak.
        if principal is None or (realm is not None and principal.realm_kind != realm.kind):
            raise ApiError(401)
        if ROLE_RANK.get(principal.role, -1) < ROLE_RANK[op.role]:
            raise ApiError(403, f"This needs the {op.role} role; you have {principal.role}.")
    try:
        path = op.params.model_validate(dict(request.match_info)).model_dump()
    except ValidationError:
        raise ApiError(404) from None
    ctx = Context(request, realm, principal, path)
    if op.query is not None:
        ctx.query = _validate(op.query, _query_dict(request), "query")
    if op.body is not None and not op.body_required and not request.body_exists:
        ctx.body = op.body()
    elif op.body is not None:
        if not _is_json(request.content_type):
            raise ApiError(415, "Send the request body as JSON (Content-Type: application/json).")
        raw = await request.read()
        try:
            ctx.body = op.body.model_validate_json(raw)
        except ValidationError as exc:
            raise ValidationFailed.many([(f["field"], f["message"]) for f in _fields(exc, "body")]) from None
    return ctx


def _query_dict(request: web.Request) -> dict[str, Any]:
    # A repeated parameter arrives as a list, which a scalar field refuses (422).
    query = request.query
    return {name: values if len(values := query.getall(name)) > 1 else values[0] for name in query.keys()}


def _validate(model: type[BaseModel], data: dict[str, Any], whole: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.many([(f["field"], f["message"]) for f in _fields(exc, whole)]) from None


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (content_type.startswith("application/")
                                                   and content_type.endswith("+json"))


def _respond(op: Operation, result: Any) -> web.StreamResponse:
    """Serialise `result` as `op.response`, checked before anything is sent."""
    if op.response is None:
        if result is not None:
            log.error("%s %s (%s) returned %s but declares no response", op.method, op.path, op.operation_id,
                      type(result).__name__)
            return error_response(500)
        return web.Response(status=op.status)
    try:
        if not isinstance(result, op.response):
            result = op.response.model_validate(result, from_attributes=True)
        body = result.model_dump_json(warnings="error")
        # What we send must be what the document promises: re-read it as the declared model.
        op.response.model_validate_json(body)
    except (ValidationError, pydantic_core.PydanticSerializationError) as exc:
        log.error("%s %s (%s): the response does not match %s: %s", op.method, op.path, op.operation_id,
                  op.response.__name__, exc)
        return error_response(500)
    return web.Response(body=body.encode(), status=op.status, content_type="application/json")


def error_response(status: int, message: str | None = None, details: Any = None, *,
                   headers: dict[str, str] | None = None, code: str | None = None) -> web.Response:
    """appliance.web.app.error_response, with `code` replacing the status's usual code."""
    from appliance.web import app  # imported when first needed: app.py imports this module
    response = app.error_response(status, message, details, headers=headers)
    if code is None:
        return response
    body = json.loads(response.body)
    body["error"]["code"] = code
    return web.json_response(body, status=status, headers=headers)
