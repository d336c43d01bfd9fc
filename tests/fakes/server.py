"""Run an emulator (an aiohttp app) on 127.0.0.1 and misbehave on demand.

Two ways to run an app, both on a free loopback port:

- `async with serve(app) as base_url:` in the test's own event loop (async tests);
- `with serve_in_thread(app) as base_url:` in a background thread with its own loop, for sync
  code such as the official client libraries (`jira`, `python-gitlab`), which block.

`Knobs` is the one object every emulator uses to misbehave realistically; `install_knobs(app)`
adds its middleware (call before the app starts) and stores it under `KNOBS`. Per request, in
this order: count it (method + route template, and per credential), apply latency, ask the fault
hook, fail with a 429, a 5xx or a dropped connection at the configured rates, run the handler,
and maybe lose its response (drop the connection after the work is done). `reset()` restores
the defaults and clears the counters. Knobs are plain attributes; a test may change them while
the server runs (the thread server reads them under the GIL, nothing needs a lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import random
import ssl
import threading
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

from aiohttp import web

ANONYMOUS = "anonymous"

# Headers that carry a credential, in the order they are looked at. GitLab takes its token in
# PRIVATE-TOKEN as well as in Authorization: Bearer.
CREDENTIAL_HEADERS = ("Authorization", "PRIVATE-TOKEN")

FaultHook = Callable[[web.Request], "web.StreamResponse | None | Awaitable[web.StreamResponse | None]"]
ResponseFactory = Callable[[web.Request, int], web.StreamResponse]


def fingerprint(credential: str | None) -> str:
    """A stable, non-reversible name for a credential (the raw header value), e.g. for
    `knobs.by_credential[fingerprint("Bearer abc")]`. None or "" -> "anonymous"."""
    if not credential:
        return ANONYMOUS
    return hashlib.sha256(credential.encode()).hexdigest()[:16]


def request_credential(request: web.Request) -> str:
    """The fingerprint of the credential a request carries (see CREDENTIAL_HEADERS)."""
    for name in CREDENTIAL_HEADERS:
        value = request.headers.get(name)
        if value:
            return fingerprint(value)
    return ANONYMOUS


def route_template(request: web.Request) -> str:
    """The route a request matched, as registered ("/rest/api/2/issue/{issueIdOrKey}"), so that
    counters group by endpoint rather than by id; unmatched requests count as "<unmatched>"."""
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    if resource is None:
        return "<unmatched>"
    return resource.canonical


def drop_connection(request: web.Request) -> web.StreamResponse:
    """Abort the request's TCP connection (the client sees "server disconnected"). Usable as a
    fault hook's result: `knobs.fault = lambda r: drop_connection(r) if ... else None`."""
    if request.transport is not None:
        request.transport.abort()
    # Never sent (the connection is gone); aiohttp needs a response object to finish the handler.
    return web.Response(status=599)


def _dropped(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def default_error_response(request: web.Request, status: int) -> web.StreamResponse:
    """What a reverse proxy in front of an app sends when the app is down: nginx's HTML page."""
    reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
              504: "Gateway Time-out"}.get(status, "Server Error")
    body = (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            f"</body>\r\n</html>\r\n")
    return web.Response(status=status, text=body, content_type="text/html")


def default_rate_limit_response(request: web.Request, status: int) -> web.StreamResponse:
    """Rack::Attack's (GitLab's) throttle response; emulators may set their app's own."""
    return web.Response(status=status, text="Retry later\n", content_type="text/plain")


@dataclass
class _Queued:
    status: int
    retry_after: float | None


class Knobs:
    """Shared misbehaviour and counters for one emulator.

    Attributes (all resettable by `reset()`):
      latency               seconds added to every request (0 = none)
      spike_rate            probability [0..1] of an extra `spike_seconds` on a request
      spike_seconds         length of a latency spike
      error_rate            probability of answering `error_status` instead of running the handler
      error_status          5xx status used by error_rate (default 503)
      rate_limit_rate       probability of answering 429
      drop_rate             probability of dropping the connection before the handler runs
                            (the request had no effect)
      lose_response_rate    probability of running the handler and then dropping the connection
                            (the request took effect but the client never hears: the case that
                            makes blind retries of creates duplicate items)
      retry_after           Retry-After value sent with 429s (seconds; None = no header)
      retry_after_as_date   send Retry-After as an HTTP-date instead of seconds
      fault                 hook(request) -> response | None (may be async): a response fails
                            that request with it, None lets it through
      error_response        factory(request, status) for 5xx bodies (emulators set their app's)
      rate_limit_response   factory(request, 429) for 429 bodies
    Counters (read by tests):
      requests              Counter[(method, route template)]
      by_credential         Counter[credential fingerprint]
      by_credential_endpoint Counter[(fingerprint, method, route template)]
      failures              Counter of the failures the knobs injected: by status, and
                            "dropped" / "lost_response" for dropped connections
    """

    def __init__(self, seed: int | None = 0):
        self._seed = seed
        self.error_response: ResponseFactory = default_error_response
        self.rate_limit_response: ResponseFactory = default_rate_limit_response
        self.reset()

    def reset(self) -> None:
        self.latency = 0.0
        self.spike_rate = 0.0
        self.spike_seconds = 0.0
        self.error_rate = 0.0
        self.error_status = 503
        self.rate_limit_rate = 0.0
        self.drop_rate = 0.0
        self.lose_response_rate = 0.0
        self.retry_after: float | None = 1
        self.retry_after_as_date = False
        self.fault: FaultHook | None = None
        self.random = random.Random(self._seed)
        self.requests: Counter[tuple[str, str]] = Counter()
        self.by_credential: Counter[str] = Counter()
        self.by_credential_endpoint: Counter[tuple[str, str, str]] = Counter()
        self.failures: Counter[int | str] = Counter()
        self._queue: deque[_Queued] = deque()

    # -- conveniences -------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 503, retry_after: float | None = None) -> None:
        """Fail the next `count` requests with `status` (429 uses rate_limit_response and sends
        `retry_after`, or the knob's value when None), before the random rates are consulted."""
        for _ in range(count):
            self._queue.append(_Queued(status, retry_after))

    @property
    def total(self) -> int:
        """All requests seen, failed ones included."""
        return sum(self.requests.values())

    def count(self, method: str, route: str) -> int:
        return self.requests[(method.upper(), route)]

    # -- the middleware -----------------------------------------------------------------------

    def _retry_after_header(self, seconds: float | None) -> dict[str, str]:
        if seconds is None:
            return {}
        if self.retry_after_as_date:
            when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
            return {"Retry-After": format_datetime(when, usegmt=True)}
        return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else str(seconds)}

    def _fail(self, request: web.Request, status: int, retry_after: float | None) -> web.StreamResponse:
        self.failures[status] += 1
        if status == 429:
            response = self.rate_limit_response(request, status)
            response.headers.update(self._retry_after_header(
                self.retry_after if retry_after is None else retry_after))
        else:
            response = self.error_response(request, status)
        return response

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        route = route_template(request)
        credential = request_credential(request)
        self.requests[(request.method, route)] += 1
        self.by_credential[credential] += 1
        self.by_credential_endpoint[(credential, request.method, route)] += 1

        delay = self.latency
        if self.spike_rate and self.random.random() < self.spike_rate:
            delay += self.spike_seconds
        if delay > 0:
            await asyncio.sleep(delay)

        if self.fault is not None:
            outcome = self.fault(request)
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if outcome is not None:
                self.failures["dropped" if _dropped(request) else outcome.status] += 1
                return outcome

        if self._queue:
            queued = self._queue.popleft()
            return self._fail(request, queued.status, queued.retry_after)
        if self.rate_limit_rate and self.random.random() < self.rate_limit_rate:
            return self._fail(request, 429, None)
        if self.error_rate and self.random.random() < self.error_rate:
            return self._fail(request, self.error_status, None)
        if self.drop_rate and self.random.random() < self.drop_rate:
            self.failures["dropped"] += 1
            return drop_connection(request)
        response = await handler(request)
        if self.lose_response_rate and self.random.random() < self.lose_response_rate:
            self.failures["lost_response"] += 1
            return drop_connection(request)
        return response


KNOBS = web.AppKey("knobs", Knobs)


def install_knobs(app: web.Application, knobs: Knobs | None = None) -> Knobs:
    """Add the knobs' middleware to `app` (before it starts) and store them as `app[KNOBS]`."""
    knobs = knobs or Knobs()
    app.middlewares.append(knobs.middleware)
    app[KNOBS] = knobs
    return knobs


# -- running ----------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def serve(app: web.Application, *, ssl_context: ssl.SSLContext | None = None,
                host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve `app` in the running loop on a free port; yields the base URL without a trailing
    slash ("http://127.0.0.1:PORT", https with `ssl_context`). Cleans up on exit."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
        await site.start()
        port = runner.addresses[0][1]
        scheme = "https" if ssl_context else "http"
        yield f"{scheme}://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serve_in_thread(app: web.Application | Callable[[], web.Application], *,
                    ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve `app` (or the app a factory builds, inside the server's loop) from a background
    thread with its own event loop; yields the base URL. For sync callers: official client
    libraries, the CLI. Raises whatever start-up raised; stops the server on exit."""
    started = threading.Event()
    stop: dict = {}
    result: dict = {}

    async def main() -> None:
        target = app() if callable(app) and not isinstance(app, web.Application) else app
        done = asyncio.Event()
        stop["loop"] = asyncio.get_running_loop()
        stop["done"] = done
        async with serve(target, ssl_context=ssl_context) as base_url:
            result["url"] = base_url
            started.set()
            await done.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the caller below
            result["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="fake-server", daemon=True)
    thread.start()
    started.wait(timeout=30)
    if "error" in result:
        thread.join()
        raise result["error"]
    if "url" not in result:
        raise RuntimeError("fake server did not start within 30 s")
    try:
        yield result["url"]
    finally:
        stop["loop"].call_soon_threadsafe(stop["done"].set)
        thread.join(timeout=30)
        if "error" in result:
            raise result["error"]
