"""The outbound HTTP client over real HTTP on 127.0.0.1: the classification table, retries and
waits, the shared budget, the egress allow-list, TLS with a custom CA, stats, and logs that
never carry a credential or a body."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from types import SimpleNamespace

import pytest
import trustme
from aiohttp import web
from yarl import URL

from appliance.config import OutboundConfig
from appliance.connectors.base import (EgressDenied, RemoteAuthError, RemoteItemError, RemoteNotFound,
                                       RetriableRemoteError)
from appliance.outbound import Budget, OutboundClient, RetryPolicy, endpoint_of, error_message, retry_after
from tests.fakes.server import Knobs, drop_connection, fingerprint, install_knobs, serve
from tests.harness import free_port

# A 429 naming no wait is retried for up to max_wait seconds of pauses (1 + 2, then 4 would pass
# 5): three attempts, like the others' max_attempts.
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_wait=5, unannounced_wait=1.0,
                   unannounced_max=4.0)
TOKEN = "tok-SECRET-4711"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config(ca_file: str = "", proxy: str = "") -> SimpleNamespace:
    return SimpleNamespace(outbound=OutboundConfig(ca_file=ca_file, proxy=proxy))


def make_app(knobs: Knobs | None = None) -> web.Application:
    app = web.Application()
    install_knobs(app, knobs)

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        # Jira's error body shape, echoing a secret as careless apps do.
        body = {"errorMessages": [f"failed with {code} for Bearer {TOKEN}"], "errors": {"summary": "required"}}
        return web.json_response(body, status=code)

    async def item(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"], "secret_body": "BODY-SECRET-99"})

    async def create(request: web.Request) -> web.Response:
        return web.json_response(await request.json(), status=201)

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"authorization": request.headers.get("Authorization")})

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def download(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for _ in range(4):
            await response.write(b"x" * 100_000)
        await response.write_eof()
        return response

    async def raw(request: web.Request) -> web.Response:
        return web.json_response({"raw": request.raw_path})

    async def exhausted(request: web.Request) -> web.Response:
        return web.json_response({}, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "1"})

    app.router.add_get("/status/{code}", status)
    app.router.add_post("/status/{code}", status)
    app.router.add_get("/items/{id}", item)
    app.router.add_post("/items", create)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/exhausted", exhausted)
    app.router.add_get("/download", download)
    app.router.add_get("/raw/{rest:.*}", raw)
    return app


@pytest.fixture
async def fake():
    knobs = Knobs()
    async with serve(make_app(knobs)) as base_url:
        yield SimpleNamespace(url=base_url, knobs=knobs)


@pytest.fixture
async def client():
    async with OutboundClient(config(), ["127.0.0.1"], retry=FAST, rate=1000, burst=1000, tenant="acme") as c:
        yield c


@pytest.mark.parametrize("status, error, attempts", [
    (400, RemoteItemError, 1),
    (401, RemoteAuthError, 1),
    (403, RemoteAuthError, 1),
    (404, RemoteNotFound, 1),
    (409, RemoteItemError, 1),
    (410, RemoteNotFound, 1),
    (422, RemoteItemError, 1),
    (408, RetriableRemoteError, 3),
    (429, RetriableRemoteError, 3),
    (500, RetriableRemoteError, 3),
    (501, RemoteItemError, 1),
    (502, RetriableRemoteError, 3),
    (503, RetriableRemoteError, 3),
    (504, RetriableRemoteError, 3),
])
async def test_classification_table(fake, client, status, error, attempts):
    http = client.for_connection("c1", fake.url, AUTH)
    with pytest.raises(error) as raised:
        await http.request("GET", f"/status/{status}")
    assert type(raised.value) is error
    assert raised.value.status == status
    assert fake.knobs.count("GET", "/status/{code}") == attempts
    if error is not RetriableRemoteError:
        # The app's own explanation reaches the admin, the credential does not.
        assert f"failed with {status}" in str(raised.value)
        assert TOKEN not in str(raised.value)
        if isinstance(raised.value, RemoteItemError):
            assert raised.value.details == {"summary": "required"}


async def test_expected_statuses_return_the_response(fake, client):
    http = client.for_connection("c1", fake.url, AUTH)
    response = await http.request("GET", "/status/404", expect=(200, 404))
    assert response.status == 404
    assert response.json()["errors"] == {"summary": "required"}
    created = await http.request("POST", "/items", json={"title": "x"}, expect=(201,))
    assert created.json() == {"title": "x"} and created.status == 201
    with pytest.raises(RemoteItemError, match="201"):
        await http.request("POST", "/items", json={"title": "x"})


@pytest.mark.parametrize("path, raw", [
    ("raw/group%2Fproject/issues", "/raw/group%2Fproject/issues"),
    ("/raw/a file ü.txt", "/raw/a%20file%20%C3%BC.txt"),
    ("/raw/x?per_page=2&page=3", "/raw/x?per_page=2&page=3"),
])
async def test_paths_keep_their_encoding(fake, client, path, raw):
    http = client.for_connection("c1", fake.url + "/", AUTH)
    assert (await http.request("GET", path)).json() == {"raw": raw}


async def test_429_retry_after_seconds_is_honoured(fake, client):
    http = client.for_connection("c1", fake.url, AUTH)
    fake.knobs.fail_next(1, 429, retry_after=1)
    started = time.monotonic()
    response = await http.request("GET", "/items/1")
    waited = time.monotonic() - started
    assert response.json()["id"] == "1"
    assert 1.0 <= waited < 2.0
    stats = client.stats("c1")
    assert stats.rate_limited == 1 and stats.retries == 1 and stats.api_calls == 2
    assert stats.rate_limit_wait_seconds >= 0.9


SILENT = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.02, max_wait=5, unannounced_wait=0.2,
                     unannounced_max=0.8)


async def test_a_429_that_names_no_wait_pauses_everyone_longer_while_they_keep_coming(fake):
    """GitLab's limits on creating notes answer 429 with no Retry-After nor RateLimit header. The
    budget then pauses every caller, 0.2 s, then 0.4, 0.8 (the policy's cap) while such 429s
    come after each pause; a success starts again from 0.2 s."""
    fake.knobs.retry_after = None
    async with OutboundClient(config(), ["127.0.0.1"], retry=SILENT, rate=1000, burst=1000) as client:
        http = client.for_connection("c1", fake.url, AUTH)
        other = client.for_connection("c2", fake.url, AUTH)     # same host and credential: same budget
        fake.knobs.fail_next(4, 429)
        started = time.monotonic()
        await http.request("GET", "/items/1")
        assert 0.2 + 0.4 + 0.8 + 0.8 <= time.monotonic() - started < 3.0
        assert fake.knobs.count("GET", "/items/{id}") == 5
        assert client.stats("c1").rate_limit_wait_seconds >= 2.0

        fake.knobs.fail_next(1, 429)        # after a success: the first pause again, for everyone
        started = time.monotonic()
        await asyncio.gather(http.request("GET", "/items/2"), other.request("GET", "/items/3"))
        assert 0.2 <= time.monotonic() - started < 0.6


async def test_a_429_that_names_no_wait_is_retried_for_a_time_not_a_number_of_attempts(fake):
    """Such limits let so many callers through per window: one that keeps missing its turn
    tries on past max_attempts, for as long as the pauses add up to max_wait."""
    fake.knobs.retry_after = None
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, max_wait=1.0, unannounced_wait=0.05,
                         unannounced_max=0.1)
    async with OutboundClient(config(), ["127.0.0.1"], retry=policy, rate=1000, burst=1000) as client:
        http = client.for_connection("c1", fake.url, AUTH)
        fake.knobs.fail_next(6, 429)
        await http.request("GET", "/items/1")
        assert fake.knobs.count("GET", "/items/{id}") == 7
        fake.knobs.fail_next(100, 429)
        started = time.monotonic()
        with pytest.raises(RetriableRemoteError):
            await http.request("GET", "/items/2")
        assert 0.8 <= time.monotonic() - started < 2.0     # the pauses waited, the last one not


async def test_429s_of_requests_in_flight_together_make_one_pause(fake):
    """Eight requests sent at once all meet the limit: that is one pause, not eight doublings."""
    fake.knobs.retry_after = None
    async with OutboundClient(config(), ["127.0.0.1"], retry=SILENT, rate=1000, burst=1000) as client:
        http = client.for_connection("c1", fake.url, AUTH)
        fake.knobs.fail_next(8, 429)
        started = time.monotonic()
        await asyncio.gather(*(http.request("GET", f"/items/{n}") for n in range(8)))
        assert 0.2 <= time.monotonic() - started < 0.6
        assert fake.knobs.count("GET", "/items/{id}") == 16


async def test_429_retry_after_http_date_is_honoured(fake, client):
    http = client.for_connection("c1", fake.url, AUTH)
    fake.knobs.retry_after_as_date = True
    fake.knobs.fail_next(1, 429, retry_after=2)
    started = time.monotonic()
    await http.request("GET", "/items/1")
    # An HTTP-date has whole seconds: "now + 2 s" truncated is between 1 and 2 s away.
    assert 0.9 <= time.monotonic() - started < 3.0
    assert fake.knobs.count("GET", "/items/{id}") == 2


async def test_a_wait_longer_than_we_hold_goes_back_to_the_engine(fake, client):
    http = client.for_connection("c1", fake.url, AUTH)
    fake.knobs.fail_next(1, 429, retry_after=3600)
    started = time.monotonic()
    with pytest.raises(RetriableRemoteError) as raised:
        await http.request("GET", "/items/1")
    assert time.monotonic() - started < 1
    assert 3500 <= raised.value.retry_after <= 3600
    assert fake.knobs.count("GET", "/items/{id}") == 1


def test_retry_after_parsing():
    now = 1_700_000_000.0
    assert retry_after({"Retry-After": "7"}, now) == 7
    assert retry_after({"Retry-After": "Tue, 14 Nov 2023 22:13:30 GMT"}, now) == 10
    assert retry_after({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now) + 30)}, now) == 30
    assert retry_after({"X-RateLimit-Reset": "2023-11-14T22:14Z"}, now) == 40
    assert retry_after({"RateLimit-Reset": "12"}, now) == 12
    assert retry_after({"Retry-After": "garbage"}, now) is None
    assert retry_after({}, now) is None


async def test_connection_refused_is_retried_then_retriable(client):
    http = client.for_connection("c1", f"http://127.0.0.1:{free_port()}", AUTH)
    with pytest.raises(RetriableRemoteError, match="cannot connect"):
        await http.request("POST", "/items", json={})
    stats = client.stats("c1")
    # Even a POST is retried: a refused connection never carried the request.
    assert stats.api_calls == 3 and stats.retries == 2


async def test_non_idempotent_post_is_not_retried_after_a_5xx_but_is_after_a_429(fake, client):
    http = client.for_connection("c1", fake.url, AUTH)
    fake.knobs.fail_next(1, 503)
    with pytest.raises(RetriableRemoteError):
        await http.request("POST", "/items", json={"a": 1}, expect=(201,))
    assert fake.knobs.count("POST", "/items") == 1
    fake.knobs.fail_next(1, 429, retry_after=0)
    assert (await http.request("POST", "/items", json={"a": 2}, expect=(201,))).json() == {"a": 2}
    assert fake.knobs.count("POST", "/items") == 3
    fake.knobs.fail_next(1, 503)
    assert (await http.request("POST", "/items", json={"a": 3}, expect=(201,), idempotent=True)).status == 201


async def test_success_with_exhausted_rate_limit_holds_the_next_request(fake, client):
    http = client.for_connection("c1", fake.url, AUTH)
    await http.request("GET", "/exhausted")
    started = time.monotonic()
    await http.request("GET", "/items/1")
    assert time.monotonic() - started >= 0.9
    assert client.stats("c1").rate_limit_wait_seconds >= 0.9


async def test_budget_is_shared_per_host_and_credential(fake):
    import asyncio
    async with OutboundClient(config(), ["127.0.0.1"], retry=FAST, rate=5, burst=1) as client:
        a = client.for_connection("a", fake.url, AUTH)
        b = client.for_connection("b", fake.url, AUTH)
        other = client.for_connection("c", fake.url, {"Authorization": "Bearer someone-else"})

        async def three(http):
            for n in range(3):
                await http.request("GET", f"/items/{n}")

        started = time.monotonic()
        await asyncio.gather(three(a), three(b))
        shared = time.monotonic() - started
        await asyncio.sleep(0.3)  # let both buckets refill
        started = time.monotonic()
        await asyncio.gather(three(a), three(other))
        separate = time.monotonic() - started
    # 6 requests on one bucket of 5/s with burst 1: 5 waits of 0.2 s; two buckets: 2 waits each.
    assert shared >= 0.9, shared
    assert separate < 0.75, separate
    assert client.stats("a").budget_wait_seconds + client.stats("b").budget_wait_seconds >= 0.9
    assert fake.knobs.by_credential[fingerprint(AUTH["Authorization"])] == 9
    assert fake.knobs.by_credential[fingerprint("Bearer someone-else")] == 3


async def test_egress_to_a_host_not_allowed_is_refused_and_logged(fake, client, caplog):
    caplog.set_level(logging.INFO, logger="appliance.outbound")
    http = client.for_connection("c1", fake.url, AUTH)
    with pytest.raises(EgressDenied, match="evil.example"):
        await http.request("GET", "https://evil.example/steal")
    with pytest.raises(EgressDenied):
        client.for_connection("c2", "https://other.example", AUTH)
    # A redirect is followed only within the allow-list ("localhost" is not "127.0.0.1").
    port = fake.url.rsplit(":", 1)[1]
    with pytest.raises(EgressDenied):
        await http.request("GET", "/redirect", params={"to": f"http://localhost:{port}/items/1"})
    assert fake.knobs.count("GET", "/items/{id}") == 0
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert [r.getMessage().split()[2] for r in refused] == ["evil.example", "other.example", "localhost"]
    assert all(r.levelno == logging.WARNING and r.tenant == "acme" for r in refused)


async def test_redirects_within_the_allow_list_never_carry_the_credential_elsewhere(fake):
    async with OutboundClient(config(), ["127.0.0.1", "localhost"], retry=FAST) as client:
        http = client.for_connection("c1", fake.url, AUTH)
        same = await http.request("GET", "/redirect", params={"to": "/whoami"})
        assert same.json() == {"authorization": AUTH["Authorization"]}
        port = fake.url.rsplit(":", 1)[1]
        other = await http.request("GET", "/redirect", params={"to": f"http://localhost:{port}/whoami"})
        assert other.json() == {"authorization": None}


async def test_custom_ca_bundle_is_trusted(tmp_path):
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "corporate-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with serve(make_app(), ssl_context=server_context) as base_url:
        assert base_url.startswith("https://")
        async with OutboundClient(config(ca_file=str(ca_file)), ["127.0.0.1"], retry=FAST) as client:
            response = await client.for_connection("c1", base_url, AUTH).request("GET", "/items/5")
            assert response.json()["id"] == "5"
        async with OutboundClient(config(), ["127.0.0.1"], retry=FAST) as client:
            with pytest.raises(RetriableRemoteError, match="not trusted"):
                await client.for_connection("c1", base_url, AUTH).request("GET", "/items/5")


async def test_unreadable_ca_file_is_a_configuration_error(tmp_path):
    from appliance.errors import ConfigurationError
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="ca_file"):
        await OutboundClient(config(ca_file=str(bad)), ["127.0.0.1"]).start()


async def test_stats_count_calls_by_endpoint_and_status(fake, client):
    http = client.for_connection("c1", fake.url, AUTH)
    before = client.stats("c1").snapshot()
    for n in (1, 22, 333):
        await http.request("GET", f"/items/{n}")
    fake.knobs.fail_next(1, 502)
    await http.request("GET", "/items/4")
    await http.request("POST", "/items", json={}, expect=(201,))
    run = client.stats("c1") - before
    assert run.api_calls == 6 and run.retries == 1 and run.errors == 1
    assert run.by_endpoint == {"GET /items/{}": 5, "POST /items": 1}
    assert run.by_status == {200: 4, 502: 1, 201: 1}
    assert json.loads(json.dumps(run.to_dict()))["by_endpoint"]["GET /items/{}"] == 5
    # Another connection's stats are its own.
    assert client.stats("c2").api_calls == 0


async def test_logs_never_carry_credentials_or_bodies(fake, client, caplog):
    caplog.set_level(logging.DEBUG)
    http = client.for_connection("c1", fake.url, AUTH)
    fake.knobs.fail_next(2, 503)
    await http.request("GET", "/items/1", params={"jql": "project = X"})
    with pytest.raises(RemoteItemError) as raised:
        await http.request("GET", "/status/422")
    with pytest.raises(RetriableRemoteError):
        await http.request("GET", "/status/500")
    retries = [r for r in caplog.records if r.name == "appliance.outbound" and "retry" in r.getMessage()]
    assert len(retries) == 4
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    for secret in (TOKEN, "BODY-SECRET-99", "failed with", "nginx", "project = X"):
        assert secret not in text
    assert TOKEN not in str(raised.value) and "***" in str(raised.value)


async def test_a_dropped_connection_is_retried_only_when_idempotent(fake, client):
    http = client.for_connection("c1", fake.url, AUTH)
    fake.knobs.fault = lambda request: drop_connection(request) if fake.knobs.total == 1 else None
    assert (await http.request("GET", "/items/1")).json()["id"] == "1"
    fake.knobs.reset()
    # The create happened but its answer was lost: retrying blindly would create it twice.
    fake.knobs.lose_response_rate = 1.0
    with pytest.raises(RetriableRemoteError, match="connection failed"):
        await http.request("POST", "/items", json={}, expect=(201,))
    assert fake.knobs.count("POST", "/items") == 1


async def test_one_shot_bodies_are_sent_once_and_callables_are_replayed(fake, client):
    import aiohttp
    http = client.for_connection("c1", fake.url, AUTH)
    fake.knobs.fail_next(1, 429, retry_after=0)

    async def chunks():
        yield b"abc"

    with pytest.raises(RetriableRemoteError):
        await http.request("POST", "/status/201", data=chunks(), expect=(201,))
    assert fake.knobs.count("POST", "/status/{code}") == 1

    def fresh_form():
        form = aiohttp.FormData()
        form.add_field("file", b"abc", filename="a.txt")
        return form

    fake.knobs.fail_next(1, 429, retry_after=0)
    assert (await http.request("POST", "/status/201", data=fresh_form, expect=(201,))).status == 201
    assert fake.knobs.count("POST", "/status/{code}") == 3


async def test_stream_reads_a_download_in_chunks_after_retries(fake, client):
    http = client.for_connection("c1", fake.url, AUTH)
    fake.knobs.fail_next(1, 503)
    received = 0
    async with http.stream("GET", "/download") as response:
        assert response.status == 200
        async for chunk in response.iter_chunked(65536):
            assert len(chunk) <= 65536
            received += len(chunk)
    assert received == 400_000
    assert client.stats("c1").retries == 1


async def test_proxy_from_the_config_carries_the_requests(fake):
    # The fake answers absolute-form proxy requests itself, so a host that does not exist is
    # reached only if the request really went through the proxy.
    async with OutboundClient(config(proxy=fake.url), ["jira.corp.invalid"], retry=FAST) as client:
        http = client.for_connection("c1", "http://jira.corp.invalid:8080", AUTH)
        assert (await http.request("GET", "/items/9")).json()["id"] == "9"
    assert fake.knobs.count("GET", "/items/{id}") == 1


@pytest.mark.parametrize("path, endpoint", [
    ("/rest/api/2/issue/PROJ-12/transitions", "GET /rest/api/2/issue/{}/transitions"),
    ("/rest/api/3/search?jql=project%20%3D%20X", "GET /rest/api/3/search"),
    ("/api/v4/projects/group%2Fproj/issues/12/notes", "GET /api/v4/projects/{}/issues/{}/notes"),
    ("/rest/api/2/issue/10001/properties/tandem.sync", "GET /rest/api/2/issue/{}/properties/tandem.sync"),
    ("/uploads/0123456789abcdef0123456789abcdef", "GET /uploads/{}"),
    ("/rest/api/2/myself", "GET /rest/api/2/myself"),
])
def test_endpoint_templates_group_ids(path, endpoint):
    assert endpoint_of("get", path) == endpoint


@pytest.mark.parametrize("body, message, details", [
    (b'{"errorMessages": ["Issue does not exist"], "errors": {}}', "Issue does not exist", {}),
    (b'{"errorMessages": [], "errors": {"priority": "Priority name \'X\' is not valid"}}',
     "priority: Priority name 'X' is not valid", {"priority": "Priority name 'X' is not valid"}),
    (b'{"message": {"title": ["can\'t be blank"]}}', "title: can't be blank", {"title": "can't be blank"}),
    (b'{"message": "404 Project Not Found"}', "404 Project Not Found", {}),
    (b'{"error": "invalid_token", "error_description": "Token was revoked"}', "invalid_token; Token was revoked", {}),
    (b"<html><body>Oops SECRET stack trace</body></html>", "", {}),
    (b"", "", {}),
])
def test_error_messages_come_from_the_apps_error_bodies_only(body, message, details):
    assert error_message(body) == (message, details)


async def test_a_pause_waited_out_by_many_callers_counts_once():
    # Items of a run wait on one budget together; the run's rate-limit wait is the time the
    # app held them back, not that time once per waiting item.
    budget = Budget(rate=1000, burst=1000)
    budget.pause(0.2)
    waits = await asyncio.gather(*(budget.acquire() for _ in range(8)))
    paused = sum(pause for _budget, pause in waits)
    assert 0.15 < paused < 0.4, waits


async def test_urgent_callers_get_the_next_tokens_ahead_of_those_queued_before_them():
    budget = Budget(rate=10, burst=1)
    order: list[str] = []

    async def take(name: str, urgent: bool = False) -> None:
        await budget.acquire(urgent)
        order.append(name)

    bulk = [asyncio.create_task(take(f"bulk{n}")) for n in range(6)]
    await asyncio.sleep(0.01)           # bulk0 took the burst; the other five queue, 0.1 s apart
    live = asyncio.create_task(take("live", urgent=True))
    await asyncio.gather(live, *bulk)
    # bulk1 already holds the turn (it waits for the next token); live comes right after it.
    assert order == ["bulk0", "bulk1", "live", "bulk2", "bulk3", "bulk4", "bulk5"]


async def test_a_caller_cancelled_in_the_queue_or_holding_the_turn_does_not_stop_the_others():
    budget = Budget(rate=10, burst=1)
    done: list[int] = []

    async def take(n: int) -> None:
        await budget.acquire()
        done.append(n)

    tasks = [asyncio.create_task(take(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    tasks[1].cancel()       # holds the turn, waiting for a token
    tasks[3].cancel()       # queued
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert done == [0, 2, 4]
    assert [type(r) for r in results] == [type(None), asyncio.CancelledError, type(None),
                                          asyncio.CancelledError, type(None)]


async def test_requests_ask_the_budget_as_urgent_and_for_the_flow_their_task_set(fake, client):
    from appliance.outbound import FLOW, URGENT
    http = client.for_connection("c", fake.url, AUTH)
    asked: list[tuple[bool, object]] = []
    real = http.budget.acquire

    async def acquire(urgent: bool = False, flow=None):
        asked.append((urgent, flow))
        return await real(urgent, flow)

    http.budget.acquire = acquire
    await http.request("GET", "/items/1")

    async def live() -> None:
        URGENT.set(True)
        FLOW.set("integration 7")
        await http.request("GET", "/items/2")
        await asyncio.create_task(http.request("GET", "/items/3"))     # tasks started inside inherit them

    await asyncio.create_task(live())
    await http.request("GET", "/items/4")       # the task's settings stayed in the task
    assert asked == [(False, None), (True, "integration 7"), (True, "integration 7"), (False, None)]


async def test_queued_callers_are_served_one_flow_after_another():
    """A backfill's eight queued requests and another integration's two: the other's go every
    other turn, not after all eight (and not ahead of urgent ones)."""
    budget = Budget(rate=50, burst=1)
    order: list[str] = []

    async def take(name: str, flow: str, urgent: bool = False) -> None:
        await budget.acquire(urgent, flow)
        order.append(name)

    bulk = [asyncio.create_task(take(f"bulk{n}", "backfill")) for n in range(8)]
    await asyncio.sleep(0.005)          # bulk0 took the burst; bulk1 holds the turn; six queue
    live = [asyncio.create_task(take(f"live{n}", "live")) for n in range(2)]
    await asyncio.sleep(0)
    hook = asyncio.create_task(take("hook", "live", urgent=True))
    await asyncio.gather(*bulk, *live, hook)
    # bulk1 holds the turn (it waits for the next token), then urgent first, then the flows by turns.
    assert order == ["bulk0", "bulk1", "hook", "live0", "bulk2", "live1", "bulk3", "bulk4", "bulk5", "bulk6",
                     "bulk7"]


async def test_a_flow_whose_callers_were_all_cancelled_loses_no_other_turn():
    budget = Budget(rate=50, burst=1)
    order: list[str] = []

    async def take(name: str, flow: str) -> None:
        await budget.acquire(False, flow)
        order.append(name)

    first = [asyncio.create_task(take(f"a{n}", "a")) for n in range(3)]
    await asyncio.sleep(0.005)
    gone = [asyncio.create_task(take(f"b{n}", "b")) for n in range(2)]
    last = asyncio.create_task(take("c0", "c"))
    await asyncio.sleep(0)
    for task in gone:
        task.cancel()
    results = await asyncio.gather(*first, *gone, last, return_exceptions=True)
    assert order == ["a0", "a1", "c0", "a2"]
    assert [type(r) for r in results].count(asyncio.CancelledError) == 2


@pytest.mark.parametrize("base", ["https://jira.example.com", "https://jira.example.com/", "https://h.example/jira/",
                                  "http://127.0.0.1:8080/gitlab"])
@pytest.mark.parametrize("path", ["rest/api/2/issue/PROJ-12", "/rest/api/2/search?jql=a%20b&startAt=50",
                                  "api/v4/projects/group%2Fproj/issues/7/notes", "browse/PROJ-1",
                                  "api/v4/projects/3/uploads/abc/na me.png", "api/v4/projects/3/uploads/x/füße.txt",
                                  "rest/api/2/attachment/../content/1", "./x", "rest/api/2/issue/A-1#frag",
                                  "https://media.example.com/file?sig=a+b"])
async def test_urls_are_what_urljoin_and_quote_make(base, path):
    from urllib.parse import quote, urljoin
    from appliance.outbound import URL_SAFE
    client = OutboundClient(SimpleNamespace(outbound=OutboundConfig()), ["jira.example.com", "h.example", "127.0.0.1"])
    http = client.for_connection("c", base, {})
    expected = path if "://" in path else urljoin(base.rstrip("/") + "/", path.lstrip("/"))
    assert str(http.url(path)) == str(URL(quote(expected, safe=URL_SAFE), encoded=True))
