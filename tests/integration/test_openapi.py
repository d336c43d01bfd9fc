"""The OpenAPI document at /api/openapi.json: valid OpenAPI 3.1, complete, and true.

"True" is checked by schemathesis against the real app served on a real socket (in a
thread of this process), on a tenant host and on the console host, each with an API
token of an admin of that realm: every generated request, valid and invalid, must
get an answer that is not a 5xx and that the document allows (status, content type,
body schema).

Nothing is excluded from the fuzzing. So that destructive operations cannot hit the
tokens' own accounts, the tokens and their users get ids far above the small ones
the generator favours (the sequences are moved on first); the tenant it runs
against could only be deleted by a body repeating its slug, which the generator
does not guess.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from datetime import timedelta

import hypothesis
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

import appliance
import appliance.web.endpoints  # noqa: F401  (registers the operations the app installs)
from appliance import accounts, db, migrator, scope, tenants, tokens
from appliance.web.api import API
from appliance.web.app import create_app
from tests.harness import free_port, run_sync
from tests.integration.test_console_api import started

CONSOLE = "tandem.test"
TENANT = "acme.tandem.test"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation and generation mode (positive, negative): bounded so the run stays short.
MAX_EXAMPLES = 8
FAR_ID = 7_000_000_000     # ids of the tokens' users and tokens: nowhere near what the generator favours


def documented(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


async def test_document_is_valid_openapi_3_1(aiohttp_client, config, key):
    await migrator.migrate(config, key)
    client = await aiohttp_client(create_app(config, key))
    await started(client.app)
    response = await client.get("/api/openapi.json", headers={"Host": CONSOLE})
    assert response.status == 200
    assert response.content_type == "application/json"
    document = await response.json()
    OpenAPIV31SpecValidator(document).validate()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == appliance.__version__
    assert document["info"]["title"] == "Tandem"
    schemes = document["components"]["securitySchemes"]
    assert schemes["sessionCookie"] == {**schemes["sessionCookie"], "type": "apiKey", "in": "cookie",
                                        "name": "__Host-tandem_session"}
    assert schemes["bearerToken"]["scheme"] == "bearer"


def test_every_route_is_documented_and_every_operation_is_routed(config, key):
    app = create_app(config, key)
    routed = {(route.method, route.resource.canonical) for route in app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith("/api/")
              and route.method != "HEAD"}
    document = API.openapi()
    assert routed == documented(document)
    # The console and the tenants' API are both in it (the realms are chosen by host).
    realms = collections.Counter(op["x-tandem-realm"] for item in document["paths"].values()
                                 for op in item.values())
    assert realms["console"] >= 10 and realms["any"] >= 4
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_operation_lists_what_the_framework_can_answer():
    for path, item in API.openapi()["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            assert "404" in responses, where
            if op["x-tandem-role"] is not None:
                assert {"401", "403"} <= set(responses), where
                assert op["security"] == [{"sessionCookie": []}, {"bearerToken": []}], where
            if "requestBody" in op:
                assert {"415", "422"} <= set(responses), where
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}, where


# --- schemathesis against a running app ---

@contextlib.contextmanager
def serving(config, key):
    """The app on 127.0.0.1:<port> in a thread with its own event loop; yields the base URL."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(config, key), access_log=None)

    async def start():
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, name="app under test", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _prepare(config, key) -> dict[str, str]:
    """A migrated cluster with tenant acme; returns an admin API token per host."""
    await migrator.migrate(config, key)
    lifetime = timedelta(days=1)
    async with db.control(config, key) as conn:
        await tenants.create_tenant(config, key, conn, "acme", "Acme")
        async with scope.console_transaction(conn):
            console_token = await _far_admin_token(conn, "root@example.com", lifetime)
        tenant = await tenants.get_tenant(conn, "acme")
        async with scope.tenant_transaction(conn, tenant.schema_name, tenant.role_name):
            tenant_token = await _far_admin_token(conn, "boss@acme.example", lifetime)
    return {CONSOLE: console_token, TENANT: tenant_token}


async def _far_admin_token(conn, email: str, lifetime: timedelta) -> str:
    await conn.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), $1)", FAR_ID)
    await conn.execute("SELECT setval(pg_get_serial_sequence('api_tokens', 'id'), $1)", FAR_ID)
    user = await accounts.create_user(conn, email, "fuzzing-admin-password", "admin", actor="test")
    token, _ = await tokens.create(conn, user.id, "schemathesis", lifetime)
    return token


def _wait_until_serving(base_url: str, host: str, path: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base_url}{path}", headers={"Host": host}, timeout=5).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{host} never answered")


def fuzz(schema, base_url: str, host: str, token: str, realm: str, statuses: collections.Counter) -> list[str]:
    """Run every operation of `realm` (and of every realm) with both generation modes;
    returns the operations run."""
    session = requests.Session()
    headers = {"Host": host, "Authorization": f"Bearer {token}"}
    covered = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("x-tandem-realm") not in (realm, "any"):
            continue
        covered.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
                      print_blob=False)
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
                statuses[(host, operation.label, response.status_code)] += 1
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                # Nothing in the operation can be made invalid (no parameters, no body).
                assert mode is GenerationMode.NEGATIVE, operation.label
    return covered


def test_schemathesis_finds_no_5xx_and_no_answer_the_document_does_not_allow(config, key):
    tokens_by_host = run_sync(_prepare(config, key))
    schema = schemathesis.openapi.from_dict(API.openapi())
    statuses: collections.Counter = collections.Counter()
    started = time.monotonic()
    with serving(config, key) as base_url:
        _wait_until_serving(base_url, CONSOLE, "/-/ready")
        _wait_until_serving(base_url, TENANT, "/api/openapi.json")
        tenant_ops = fuzz(schema, base_url, TENANT, tokens_by_host[TENANT], "tenant", statuses)
        console_ops = fuzz(schema, base_url, CONSOLE, tokens_by_host[CONSOLE], "console", statuses)
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {sum(statuses.values())} requests, {len(tenant_ops)} operations on {TENANT}, "
          f"{len(console_ops)} on {CONSOLE}, {elapsed:.1f} s")
    # Every operation ran, and the tokens were good to the end (successes on both hosts).
    assert set(tenant_ops) | set(console_ops) == {f"{m} {p}" for m, p in documented(API.openapi())}
    succeeded = {(host, label) for (host, label, status) in statuses if status < 300}
    assert {(CONSOLE, "GET /api/v1/cluster/health"), (CONSOLE, "GET /api/v1/auth/me"),
            (TENANT, "GET /api/v1/auth/me")} <= succeeded
    assert elapsed < 90
