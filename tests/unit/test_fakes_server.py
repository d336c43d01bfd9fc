"""The shared emulator plumbing: serving an app (in the test's loop and from a thread) and the
knobs every emulator relies on, checked over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.server import (ANONYMOUS, KNOBS, Knobs, drop_connection, fingerprint, install_knobs, serve,
                                serve_in_thread)


def make_app(knobs: Knobs | None = None) -> web.Application:
    app = web.Application()
    install_knobs(app, knobs)

    async def item(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"]})

    async def create(request: web.Request) -> web.Response:
        return web.json_response({"created": True}, status=201)

    app.router.add_get("/items/{id}", item)
    app.router.add_post("/items", create)
    return app


async def test_serve_counts_requests_by_route_template_and_credential():
    app = make_app()
    knobs = app[KNOBS]
    async with serve(app) as base_url, aiohttp.ClientSession() as session:
        assert base_url.startswith("http://127.0.0.1:")
        for n in (1, 2, 3):
            async with session.get(f"{base_url}/items/{n}", headers={"Authorization": "Bearer alice"}) as r:
                assert (await r.json()) == {"id": str(n)}
        async with session.post(f"{base_url}/items", headers={"PRIVATE-TOKEN": "bob"}) as r:
            assert r.status == 201
        async with session.get(f"{base_url}/nowhere") as r:
            assert r.status == 404
    assert knobs.count("GET", "/items/{id}") == 3
    assert knobs.requests[("POST", "/items")] == 1
    assert knobs.requests[("GET", "<unmatched>")] == 1
    assert knobs.total == 5
    assert knobs.by_credential[fingerprint("Bearer alice")] == 3
    assert knobs.by_credential[fingerprint("bob")] == 1
    assert knobs.by_credential[ANONYMOUS] == 1
    assert knobs.by_credential_endpoint[(fingerprint("Bearer alice"), "GET", "/items/{id}")] == 3
    # The fingerprint names a credential without revealing it.
    assert "alice" not in fingerprint("Bearer alice") and fingerprint("Bearer alice") != fingerprint("Bearer bob")


def test_serve_in_thread_serves_sync_clients_and_stops():
    app = make_app()
    with serve_in_thread(app) as base_url:
        with urllib.request.urlopen(f"{base_url}/items/7", timeout=5) as response:
            assert response.read() == b'{"id": "7"}'
    assert app[KNOBS].count("GET", "/items/{id}") == 1
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base_url}/items/7", timeout=5)


def test_serve_in_thread_accepts_a_factory():
    with serve_in_thread(make_app) as base_url:
        with urllib.request.urlopen(f"{base_url}/items/x", timeout=5) as response:
            assert response.status == 200


async def test_error_rate_answers_a_realistic_5xx_without_running_the_handler():
    knobs = Knobs()
    knobs.error_rate = 1.0
    knobs.error_status = 502
    ran = []
    app = make_app(knobs)

    async def side_effect(request):
        ran.append(1)
        return web.Response()

    app.router.add_put("/x", side_effect)
    async with serve(app) as base_url, aiohttp.ClientSession() as session:
        async with session.put(f"{base_url}/x") as r:
            assert r.status == 502
            assert r.content_type == "text/html"
            assert "502 Bad Gateway" in await r.text()
    assert ran == []
    assert knobs.failures[502] == 1


async def test_error_rate_is_a_proportion():
    knobs = Knobs(seed=1)
    knobs.error_rate = 0.3
    async with serve(make_app(knobs)) as base_url, aiohttp.ClientSession() as session:
        statuses = []
        for n in range(200):
            async with session.get(f"{base_url}/items/{n}") as r:
                statuses.append(r.status)
    failed = statuses.count(503)
    assert 30 <= failed <= 90, failed
    assert statuses.count(200) == 200 - failed


@pytest.mark.parametrize("as_date", [False, True])
async def test_rate_limit_answers_429_with_retry_after(as_date):
    knobs = Knobs()
    knobs.rate_limit_rate = 1.0
    knobs.retry_after = 30
    knobs.retry_after_as_date = as_date
    async with serve(make_app(knobs)) as base_url, aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/items/1") as r:
            assert r.status == 429
            value = r.headers["Retry-After"]
    if as_date:
        wait = parsedate_to_datetime(value).timestamp() - time.time()
        assert 28 <= wait <= 31
    else:
        assert value == "30"


async def test_latency_and_spikes_delay_responses():
    knobs = Knobs()
    knobs.latency = 0.2
    async with serve(make_app(knobs)) as base_url, aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with session.get(f"{base_url}/items/1") as r:
            assert r.status == 200
        assert time.monotonic() - started >= 0.2
        knobs.latency = 0
        knobs.spike_rate = 1.0
        knobs.spike_seconds = 0.3
        started = time.monotonic()
        async with session.get(f"{base_url}/items/1") as r:
            assert r.status == 200
        assert time.monotonic() - started >= 0.3


async def test_fault_hook_decides_per_request_sync_or_async():
    knobs = Knobs()

    def only_item_13(request):
        if request.match_info.get("id") == "13":
            return web.json_response({"message": "boom"}, status=500)
        return None

    async def refuse_posts(request):
        return web.Response(status=403) if request.method == "POST" else None

    async with serve(make_app(knobs)) as base_url, aiohttp.ClientSession() as session:
        knobs.fault = only_item_13
        async with session.get(f"{base_url}/items/13") as r:
            assert r.status == 500 and (await r.json()) == {"message": "boom"}
        async with session.get(f"{base_url}/items/12") as r:
            assert r.status == 200
        knobs.fault = refuse_posts
        async with session.post(f"{base_url}/items") as r:
            assert r.status == 403
    assert knobs.failures == {500: 1, 403: 1}


async def test_fail_next_then_reset_restores_defaults_and_counters():
    knobs = Knobs()
    async with serve(make_app(knobs)) as base_url, aiohttp.ClientSession() as session:
        knobs.fail_next(2, 429, retry_after=5)
        got = []
        for _ in range(3):
            async with session.get(f"{base_url}/items/1") as r:
                got.append((r.status, r.headers.get("Retry-After")))
        assert got == [(429, "5"), (429, "5"), (200, None)]
        knobs.fail_next(1, 503)
        knobs.error_rate = 1.0
        knobs.latency = 5
        knobs.reset()
        assert knobs.total == 0 and not knobs.by_credential and not knobs.failures
        started = time.monotonic()
        async with session.get(f"{base_url}/items/1") as r:
            assert r.status == 200
        assert time.monotonic() - started < 1
    assert knobs.total == 1


async def test_dropped_connections_before_and_after_the_handler():
    knobs = Knobs()
    created = []
    app = make_app(knobs)

    async def create(request):
        created.append(1)
        return web.json_response({}, status=201)

    app.router.add_post("/things", create)
    async with serve(app) as base_url, aiohttp.ClientSession() as session:
        knobs.drop_rate = 1.0
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.post(f"{base_url}/things"):
                pass
        assert created == []
        knobs.drop_rate = 0
        knobs.lose_response_rate = 1.0
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.post(f"{base_url}/things"):
                pass
        assert created == [1]
        knobs.lose_response_rate = 0
        knobs.fault = lambda request: drop_connection(request)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.post(f"{base_url}/items"):
                pass
    # POSTs: aiohttp re-sends an idempotent request once when a kept-alive connection drops.
    assert knobs.failures == {"dropped": 2, "lost_response": 1}
