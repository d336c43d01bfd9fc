"""The API framework (appliance/web/api.py) on a test-only app: its operations are
declared here, on their own registry, and the realm/principal that the host router
and the auth middleware would set come from test headers."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from aiohttp import web
from pydantic import Field

from appliance.errors import AlreadyExists, DatabaseUnavailable, NotFound
from appliance.web.api import (Api, ApiError, ApiModel, Page, PageQuery, ValidationFailed, decode_cursor,
                               encode_cursor)
from appliance.web.app import json_errors
from appliance.web.keys import PRINCIPAL, REALM

api = Api()
THINGS = [{"id": i, "name": f"thing-{i:02d}"} for i in range(1, 8)]


class Address(ApiModel):
    city: str = Field(min_length=1)
    zip: str = Field(pattern=r"^[0-9]{5}$")


class ThingIn(ApiModel):
    name: str = Field(min_length=1, max_length=20)
    count: int = Field(ge=0)
    address: Address | None = None


class Thing(ApiModel):
    id: int
    name: str


class ThingQuery(PageQuery):
    prefix: str = ""


class Shout(Thing):
    volume: int = 11


@api.operation("GET", "/api/v1/things", summary="List things", tags=["things"], realm="tenant", role="viewer",
               query=ThingQuery, response=Page[Thing])
async def list_things(request, ctx):
    after = decode_cursor(ctx.query.cursor, str)[0] if ctx.query.cursor else ""
    rows = [t for t in THINGS if t["name"] > after and t["name"].startswith(ctx.query.prefix)]
    return Page[Thing].of(rows[:ctx.query.limit + 1], ctx.query.limit, key=lambda t: (t["name"],))


@api.operation("POST", "/api/v1/things", summary="Create a thing", tags=["things"], realm="tenant", role="editor",
               body=ThingIn, response=Thing, status=201, errors={409: "The name is taken."})
async def create_thing(request, ctx):
    if ctx.body.name == "taken":
        raise AlreadyExists("a thing named 'taken' exists")
    if ctx.body.name == "reserved":
        raise ValidationFailed("name", "this name is reserved")
    return Thing(id=99, name=ctx.body.name)


@api.operation("GET", "/api/v1/things/{id}", summary="One thing", tags=["things"], realm="tenant", role="viewer",
               response=Thing)
async def get_thing(request, ctx):
    for thing in THINGS:
        if thing["id"] == ctx.path["id"]:
            return thing            # a dict is validated as the declared model
    raise NotFound(f"no thing {ctx.path['id']}")


@api.operation("DELETE", "/api/v1/things/{id}", summary="Delete a thing", tags=["things"], realm="tenant",
               role="admin")
async def delete_thing(request, ctx):
    return None


@api.operation("GET", "/api/v1/broken/{kind}", summary="Answers what it must not", tags=["things"],
               realm="any", role=None, response=Thing)
async def broken(request, ctx):
    if ctx.path["kind"] == "wrong-type":
        return Thing.model_construct(id="not a number", name="x")
    if ctx.path["kind"] == "extra-field":
        return Shout(id=1, name="x")
    if ctx.path["kind"] == "database-away":
        raise DatabaseUnavailable("database unreachable (postgresql://db.internal:5432/tandem): refused")
    if ctx.path["kind"] == "teapot":
        raise ApiError(418, "I am a teapot.", {"why": "test"}, headers={"X-Test": "yes"})
    return Thing(id=1, name=ctx.path["kind"])


@api.operation("GET", "/api/v1/console-only", summary="Console", tags=["console"], realm="console", role="admin",
               response=Thing)
async def console_only(request, ctx):
    return Thing(id=1, name=ctx.principal.email)


@web.middleware
async def fake_router_and_auth(request: web.Request, handler):
    """Stand-ins for the host router and the auth middleware: headers say who asks where."""
    kind = request.headers.get("X-Test-Realm", "tenant")
    request[REALM] = SimpleNamespace(kind=kind, host="test")
    role = request.headers.get("X-Test-Role")
    principal_realm = request.headers.get("X-Test-Principal-Realm", kind)
    request[PRINCIPAL] = (SimpleNamespace(role=role, realm_kind=principal_realm, email=f"{role}@example.com")
                          if role else None)
    return await handler(request)


@pytest.fixture
async def client(aiohttp_client):
    app = web.Application(middlewares=[json_errors, fake_router_and_auth])
    api.install(app)
    return await aiohttp_client(app)


def as_(role: str | None, realm: str = "tenant") -> dict[str, str]:
    headers = {"X-Test-Realm": realm}
    if role:
        headers["X-Test-Role"] = role
    return headers


async def error_of(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return (await response.json())["error"]


async def test_database_away_is_503_with_retry_after_and_no_internals(client):
    response = await client.get("/api/v1/broken/database-away")
    error = await error_of(response, 503)
    assert response.headers["Retry-After"] == "5"
    assert "db.internal" not in error["message"]


# --- validation ---

@pytest.mark.parametrize("body, fields", [
    ({"name": "", "count": -1},
     [("name", "String should have at least 1 character"), ("count", "Input should be greater than or equal to 0")]),
    ({"count": "many"},
     [("name", "Field required"), ("count", "Input should be a valid integer, unable to parse string as an integer")]),
    ({"name": "a", "count": 1, "address": {"city": "", "zip": "1234x"}},
     [("address.city", "String should have at least 1 character"),
      ("address.zip", "String should match pattern '^[0-9]{5}$'")]),
    ({"name": "a", "count": 1, "colour": "red"}, [("colour", "Extra inputs are not permitted")]),
    ({"name": "a", "count": 1, "address": {"city": "x", "zip": "12345", "street": "y"}},
     [("address.street", "Extra inputs are not permitted")]),
    (["not", "an", "object"], [("body", "Input should be an object")]),
    # PostgreSQL text cannot hold NUL: refused at the door, not as a database error.
    ({"name": "a\u0000b", "count": 1}, [("name", "must not contain the NUL character (\\u0000)")]),
])
async def test_invalid_body_is_422_naming_each_field(client, body, fields):
    error = await error_of(await client.post("/api/v1/things", json=body, headers=as_("editor")), 422)
    assert error["code"] == "validation_error"
    assert [(f["field"], f["message"]) for f in error["details"]["fields"]] == fields
    assert error["message"].startswith(f"{fields[0][0]}: ")


async def test_body_that_is_not_json_is_422_on_body(client):
    response = await client.post("/api/v1/things", data=b"{name: 1", headers={
        **as_("editor"), "Content-Type": "application/json"})
    error = await error_of(response, 422)
    assert error["details"]["fields"][0]["field"] == "body"
    assert "JSON" in error["details"]["fields"][0]["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_body_of_another_type_is_415(client, content_type):
    headers = as_("editor") | ({"Content-Type": content_type} if content_type else {})
    error = await error_of(await client.post("/api/v1/things", data=b'{"name": "a", "count": 1}',
                                             headers=headers), 415)
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]


async def test_valid_body_reaches_the_handler_and_status_is_the_declared_one(client):
    response = await client.post("/api/v1/things", json={"name": "new", "count": 3}, headers=as_("editor"))
    assert response.status == 201
    assert await response.json() == {"id": 99, "name": "new"}
    # A structured JSON media type is JSON too.
    response = await client.post("/api/v1/things", data=b'{"name": "x", "count": 0}',
                                 headers=as_("editor") | {"Content-Type": "application/merge-patch+json"})
    assert response.status == 201


async def test_handler_errors_keep_the_error_shape(client):
    error = await error_of(await client.post("/api/v1/things", json={"name": "reserved", "count": 1},
                                             headers=as_("editor")), 422)
    assert error["details"] == {"fields": [{"field": "name", "message": "this name is reserved"}]}
    error = await error_of(await client.post("/api/v1/things", json={"name": "taken", "count": 1},
                                             headers=as_("editor")), 409)
    assert error == {"code": "conflict", "message": "a thing named 'taken' exists", "details": {}}
    error = await error_of(await client.get("/api/v1/things/7000", headers=as_("viewer")), 404)
    assert error["message"] == "no thing 7000"
    response = await client.get("/api/v1/broken/teapot")
    assert (await error_of(response, 418))["details"] == {"why": "test"}
    assert response.headers["X-Test"] == "yes"


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"), ("limit=1&limit=2", "limit"),
    ("colour=red", "colour"),
])
async def test_invalid_query_is_422_naming_the_parameter(client, query, field):
    error = await error_of(await client.get(f"/api/v1/things?{query}", headers=as_("viewer")), 422)
    assert [f["field"] for f in error["details"]["fields"]] == [field]


@pytest.mark.parametrize("value", ["abc", "0", "-1", "99999999999999999999", "1.5"])
async def test_path_parameter_that_does_not_validate_is_404(client, value):
    error = await error_of(await client.get(f"/api/v1/things/{value}", headers=as_("viewer")), 404)
    assert error["code"] == "not_found"


async def test_path_parameter_is_typed(client):
    response = await client.get("/api/v1/things/3", headers=as_("viewer"))
    assert await response.json() == {"id": 3, "name": "thing-03"}


# --- realm and role ---

@pytest.mark.parametrize("role, method, path, status", [
    (None, "GET", "/api/v1/things", 401),
    (None, "POST", "/api/v1/things", 401),
    ("viewer", "POST", "/api/v1/things", 403),
    ("editor", "DELETE", "/api/v1/things/1", 403),
    ("viewer", "GET", "/api/v1/things", 200),
    ("editor", "GET", "/api/v1/things", 200),
    ("admin", "DELETE", "/api/v1/things/1", 204),
])
async def test_roles(client, role, method, path, status):
    response = await client.request(method, path, json={"name": "a", "count": 1}, headers=as_(role))
    assert response.status == status, await response.text()
    if status == 401:
        assert (await response.json())["error"]["code"] == "unauthorized"
    if status == 403:
        error = (await response.json())["error"]
        assert error["code"] == "forbidden"
        assert role in error["message"]
    if status == 204:
        assert await response.read() == b""


async def test_role_is_checked_before_the_body(client):
    # An anonymous caller learns nothing about what the body should look like.
    response = await client.post("/api/v1/things", data=b"nonsense", headers=as_(None))
    assert response.status == 401


async def test_principal_of_the_other_realm_is_refused(client):
    headers = as_("admin") | {"X-Test-Principal-Realm": "console"}
    assert (await client.get("/api/v1/things", headers=headers)).status == 401


async def test_wrong_realm_is_the_same_404_as_a_missing_path(client):
    missing = await client.get("/api/v1/no-such-thing", headers=as_("admin", "console"))
    wrong_realm = await client.get("/api/v1/things", headers=as_("admin", "console"))
    assert wrong_realm.status == missing.status == 404
    assert await wrong_realm.json() == await missing.json()
    assert (await client.get("/api/v1/console-only", headers=as_("admin", "tenant"))).status == 404
    response = await client.get("/api/v1/console-only", headers=as_("admin", "console"))
    assert await response.json() == {"id": 1, "name": "admin@example.com"}


async def test_realm_any_and_no_role_needs_nothing(client):
    for realm in ("tenant", "console"):
        response = await client.get("/api/v1/broken/fine", headers={"X-Test-Realm": realm})
        assert await response.json() == {"id": 1, "name": "fine"}


# --- pagination ---

async def test_pages_follow_the_cursor_to_the_end(client):
    seen, cursor, pages = [], None, 0
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(f"/api/v1/things?{query}", headers=as_("viewer"))
        page = await response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 3
        seen += [item["name"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [t["name"] for t in THINGS]
    assert pages == 3


async def test_default_limit_and_exact_fit(client):
    page = await (await client.get("/api/v1/things", headers=as_("viewer"))).json()
    assert len(page["items"]) == len(THINGS) and page["next_cursor"] is None
    page = await (await client.get(f"/api/v1/things?limit={len(THINGS)}", headers=as_("viewer"))).json()
    assert len(page["items"]) == len(THINGS) and page["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["!!!", "bm90IGpzb24", encode_cursor(5), encode_cursor("a", "b"), "é"])
async def test_bad_cursor_is_422_on_cursor(client, cursor):
    error = await error_of(await client.get("/api/v1/things", params={"cursor": cursor}, headers=as_("viewer")),
                           422)
    assert error["details"]["fields"] == [{"field": "cursor",
                                           "message": "not a cursor of this list; start again without one"}]


def test_cursor_round_trip_keeps_types():
    at = datetime(2026, 5, 1, 12, 30, tzinfo=timezone.utc)
    cursor = encode_cursor(at, 42, "acme")
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_cursor(cursor, datetime, int, str) == (at, 42, "acme")


# --- responses ---

@pytest.mark.parametrize("kind", ["wrong-type", "extra-field"])
async def test_response_not_matching_its_model_is_a_logged_500(client, caplog, kind):
    with caplog.at_level(logging.ERROR, logger="appliance.web.api"):
        response = await client.get(f"/api/v1/broken/{kind}")
    error = await error_of(response, 500)
    assert error["code"] == "internal_error"
    assert "not a number" not in await response.text()
    assert any("does not match Thing" in r.getMessage() for r in caplog.records)


# --- declarations ---

def test_declaration_mistakes_fail_at_import():
    registry = Api()

    async def handler(request, ctx):
        return None

    registry.operation("DELETE", "/x/{id}", summary="", tags=[], realm="tenant", role="admin")(handler)
    mistakes = [
        dict(method="DELETE", path="/x/{id}"),                                 # declared twice
        dict(method="GET", path="/y", realm="elsewhere"),
        dict(method="GET", path="/y", role="owner"),
        dict(method="GET", path="/y/{id:\\d+}"),                               # patterns are not for templates
        dict(method="GET", path="/y", response=Thing, status=204),
        dict(method="TRACE", path="/y"),
        dict(method="GET", path="/y/{slug}", params=Thing),                     # fields differ from the template
    ]
    for mistake in mistakes:
        kwargs = dict(summary="", tags=[], realm="tenant", role="admin") | mistake
        with pytest.raises(ValueError):
            registry.operation(kwargs.pop("method"), kwargs.pop("path"), **kwargs)(handler)
    with pytest.raises(ValueError, match="operation id"):
        registry.operation("GET", "/z", summary="", tags=[], realm="tenant", role="admin")(handler)


async def test_document_is_served_without_auth_and_lists_every_operation(client):
    response = await client.get("/api/openapi.json", headers={"X-Test-Realm": "console"})
    assert response.status == 200
    document = await response.json()
    assert document["openapi"] == "3.1.0"
    declared = {(op.method.lower(), op.path) for op in api.operations}
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == declared | {("get", "/api/openapi.json")}
    create = document["paths"]["/api/v1/things"]["post"]
    assert set(create["responses"]) == {"201", "401", "403", "404", "409", "413", "415", "422", "503"}
    assert create["x-tandem-realm"] == "tenant"
    assert create["security"] == [{"sessionCookie": []}, {"bearerToken": []}]
    assert "security" not in document["paths"]["/api/v1/broken/{kind}"]["get"]
    params = document["paths"]["/api/v1/things/{id}"]["get"]["parameters"]
    assert params == [{"name": "id", "in": "path", "required": True,
                       "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}}]
