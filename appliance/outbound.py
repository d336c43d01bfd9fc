"""The one HTTP client every connector uses to reach the outside world.

A tenant worker makes one `OutboundClient(config, allowed_hosts)` (one aiohttp ClientSession,
opened with `await client.start()` or `async with client:`), and one `ConnectionHttp` per
connection with `client.for_connection(connection_id, base_url, auth_headers)`. Through it:

- egress allow-list: only hosts of the tenant's configured connections (and redirects to them);
  anything else raises EgressDenied before a byte leaves, and is logged;
- TLS with the system trust store plus `config.outbound.ca_file`; `config.outbound.proxy`;
  connect/read timeouts;
- one classification table (CLASSIFICATION) from HTTP status to connector error;
- retries with full-jitter exponential backoff, honouring Retry-After (seconds or HTTP-date) and
  the apps' rate-limit headers (X-RateLimit-*/RateLimit-*: Remaining + Reset); a 429 that names
  no wait pauses the whole budget, doubling while they keep coming (Budget.refused);
- a request budget (token bucket) per (host, credential fingerprint), shared by every
  ConnectionHttp of the tenant, which also holds everyone back while a server-asked wait runs;
  its tokens go to urgent work first (URGENT), then round robin between flows (FLOW: the sync
  engine's integrations), so one integration's backfill does not starve the others;
- per-connection stats (api_calls, retries, waits, by endpoint) for run stats and metrics.

Never logs a response body, a query string, a header value or a credential.

Retry safety: a request the server may have executed is retried only if it is idempotent
(GET, HEAD, OPTIONS, PUT, DELETE by default; pass idempotent=True for a read-only POST such as
a search). Non-idempotent requests are retried only when the server cannot have acted: 429,
and connection failures before the request was sent. Other failures raise RetriableRemoteError
at once, and the engine recovers a create through find_by_marker.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import dataclasses
import hashlib
import json as jsonlib
import logging
import random
import re
import ssl
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Hashable, Iterable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from appliance.connectors.base import (ConnectorError, EgressDenied, RemoteAuthError, RemoteItemError,
                                       RemoteNotFound, RetriableRemoteError)
from appliance.errors import ConfigurationError

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
ERROR_MESSAGE_LIMIT = 500
ERROR_BODY_LIMIT = 64 * 1024
URL_SAFE = "/%:@&=+$,;?#[]!'()*~"


# -- classification: the one table ------------------------------------------------------------

# HTTP status (range) -> the error it means when the caller did not `expect` it; first match wins.
CLASSIFICATION: tuple[tuple[range, type[ConnectorError]], ...] = (
    (range(401, 402), RemoteAuthError),
    (range(403, 404), RemoteAuthError),
    (range(404, 405), RemoteNotFound),
    (range(410, 411), RemoteNotFound),
    (range(408, 409), RetriableRemoteError),  # request timeout: the server gave up reading
    (range(425, 426), RetriableRemoteError),  # too early (TLS early data)
    (range(429, 430), RetriableRemoteError),
    (range(501, 502), RemoteItemError),       # not implemented: no amount of retrying helps
    (range(505, 506), RemoteItemError),       # HTTP version not supported
    (range(500, 600), RetriableRemoteError),
    (range(400, 500), RemoteItemError),
    (range(100, 400), RemoteItemError),       # an unexpected success or an unfollowed redirect
)


def classify(status: int) -> type[ConnectorError]:
    """The error class for an HTTP status that was not expected."""
    return next((error for statuses, error in CLASSIFICATION if status in statuses), RemoteItemError)


# -- header parsing ---------------------------------------------------------------------------

def _parse_when(value: str, now: float) -> float | None:
    """Seconds from `now` (a time.time()) until `value`: delta seconds, a Unix timestamp, an
    HTTP-date or an ISO 8601 time. None if unparseable. Never negative."""
    value = value.strip()
    with contextlib.suppress(ValueError):
        number = float(value)
        # Large numbers are Unix timestamps (GitLab's RateLimit-Reset, GitHub's X-RateLimit-Reset);
        # small ones are delta seconds (Retry-After, IETF RateLimit-Reset).
        return max(0.0, number - now) if number > 1e9 else max(0.0, number)
    for parse in (parsedate_to_datetime, lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))):
        with contextlib.suppress(TypeError, ValueError, IndexError):
            when = parse(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0.0, when.timestamp() - now)
    return None


def retry_after(headers: Mapping[str, str], now: float | None = None, *, status: int = 429) -> float | None:
    """The wait the server asked for: Retry-After (seconds or HTTP-date), else the reset time of
    the rate limit (X-RateLimit-Reset, RateLimit-Reset, Jira's ISO-8601 reset) when it is
    exhausted or the status is 429, else None (a 5xx next to a healthy limit is no reason to wait)."""
    now = time.time() if now is None else now
    value = headers.get("Retry-After")
    if value:
        parsed = _parse_when(value, now)
        if parsed is not None:
            return parsed
    return rate_limit_reset(headers, now, exhausted_only=status != 429)


def rate_limit_reset(headers: Mapping[str, str], now: float | None = None, *,
                     exhausted_only: bool = True) -> float | None:
    """Seconds until the rate-limit window resets, from X-RateLimit-*/RateLimit-* headers; with
    `exhausted_only`, only when Remaining says 0 requests are left."""
    now = time.time() if now is None else now
    for prefix in ("X-RateLimit-", "RateLimit-"):
        remaining = headers.get(prefix + "Remaining", "")
        reset = headers.get(prefix + "Reset") or headers.get(prefix + "ResetTime")
        if reset is None or (exhausted_only and remaining.strip() not in ("0", "0.0")):
            continue
        parsed = _parse_when(reset, now)
        if parsed is not None:
            return parsed
    return None


def credential_fingerprint(auth_headers: Mapping[str, str]) -> str:
    """A stable, non-reversible name for a credential (its auth headers), used as budget key."""
    if not auth_headers:
        return "anonymous"
    material = "\n".join(f"{k.lower()}:{v}" for k, v in sorted(auth_headers.items(), key=lambda kv: kv[0].lower()))
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _secrets_in(auth_headers: Mapping[str, str]) -> list[str]:
    """Strings that must never appear in a message: header values, bearer tokens, and the parts
    of a Basic credential."""
    found: list[str] = []
    for value in auth_headers.values():
        found.append(value)
        scheme, _, rest = value.partition(" ")
        if rest:
            found.append(rest)
            if scheme.lower() == "basic":
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    user_pass = base64.b64decode(rest, validate=True).decode()
                    found.append(user_pass)
                    found.append(user_pass.partition(":")[2])
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def error_message(body: bytes) -> tuple[str, dict[str, str]]:
    """The app's own explanation from an error body: Jira {"errorMessages": [...], "errors":
    {...}}, GitLab {"message": str | {field: [..]}} / {"error": ..., "error_description": ...},
    else nothing (HTML error pages and other bodies are not shown). Returns (message, details)."""
    try:
        data = jsonlib.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        return "", {}
    if not isinstance(data, dict):
        return "", {}

    def flat(value: Any) -> str:
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    parts: list[str] = []
    details: dict[str, str] = {}
    if data.get("errorMessages") and isinstance(data["errorMessages"], list):
        parts.append(flat(data["errorMessages"]))
    for key in ("errors", "message"):  # Jira's per-field errors; GitLab's validation messages
        if isinstance(data.get(key), dict):
            details.update({str(k): flat(v) for k, v in data[key].items()})
    for key in ("message", "error", "error_description"):
        if data.get(key) and isinstance(data[key], (str, list)):
            parts.append(flat(data[key]))
    parts.extend(f"{k}: {v}" for k, v in details.items())
    return "; ".join(parts)[:ERROR_MESSAGE_LIMIT], details


_ID_SEGMENT = re.compile(r"^(\d+|[A-Za-z][A-Za-z0-9_]*-\d+|.*%.*|(?=.*\d)[0-9A-Za-z_-]{16,})$")


def endpoint_of(method: str, path: str) -> str:
    """"METHOD /path/template" for stats, so endpoints group: query dropped; ids (numbers,
    keys like PROJ-12, percent-encoded project paths, long tokens) become "{}", except an API
    version number right after "api" (/rest/api/2 stays)."""
    segments = path.split("?", 1)[0].split("/")
    out = [s if (i and segments[i - 1] == "api" and s.isdigit()) or not _ID_SEGMENT.match(s) else "{}"
           for i, s in enumerate(segments)]
    return f"{method.upper()} {'/'.join(out) or '/'}"


# -- policy, budget, stats --------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. `max_attempts` counts the first try. Backoff before retry n (1-based) is
    uniform(0, min(max_delay, base_delay * 2**(n-1))) ("full jitter", so tenants never retry in
    lockstep); a server-asked wait is honoured instead when longer. A server-asked wait above
    `max_wait` is not slept in-line: RetriableRemoteError(retry_after) goes to the engine."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 120.0
    #: A 429 that names no wait (GitLab's limits on creating issues and notes send no header):
    #: the budget pauses this long, doubling while such 429s keep coming, up to the minute such
    #: limits count in (Budget.refused).
    unannounced_wait: float = 2.0
    unannounced_max: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    total_timeout: float = 300.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (retry - 1)))


#: Set (to True) around work a person is waiting for, such as the sync engine's webhook deliveries:
#: its requests take the next tokens of their budget ahead of the queued requests of bulk
#: work (a backfill's, which may keep a budget's queue full for hours). Tasks started inside
#: inherit it.
URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("outbound_urgent", default=False)

#: Whose work a request is for (the sync engine sets its integration's id around its runs).
#: Callers queued for a budget are served one flow after another, round robin: one
#: integration's backfill, which keeps a budget's queue full for hours, then takes only its
#: share of a credential that other integrations share, not nearly all of it. Tasks started
#: inside inherit it.
FLOW: contextvars.ContextVar[Hashable] = contextvars.ContextVar("outbound_flow", default=None)


_NOBODY = object()


class _Turns:
    """A lock handed over to urgent callers first, in order of arrival; then to the others,
    one flow after another (round robin), each flow's callers in order of arrival."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future] = deque()
        self._flows: dict[Hashable, deque[asyncio.Future]] = {}    # in the order of their next turn
        self._last: object = _NOBODY       # the flow the lock last went to (not urgent)

    async def acquire(self, urgent: bool, flow: Hashable = None) -> None:
        if not self._held:
            self._held = True
            if not urgent:
                self._last = flow
            return
        turn = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._flows.setdefault(flow, deque())
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()      # handed the turn while being cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):       # release() may have dropped it
                    queue.remove(turn)
            raise

    def release(self) -> None:
        turn = self._next()
        if turn is None:
            self._held = False
        else:
            turn.set_result(None)       # the lock passes on, still held

    def _next(self) -> asyncio.Future | None:
        while self._urgent:
            turn = self._urgent.popleft()
            if not turn.done():
                return turn
        while self._flows:
            flow = next(iter(self._flows))
            queue = self._flows.pop(flow)
            if flow == self._last and self._flows:
                self._flows[flow] = queue       # it just had a turn: the others' come first
                continue
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    if queue:
                        self._flows[flow] = queue      # its next turn comes after the others'
                    self._last = flow
                    return turn
        return None


class Budget:
    """A token bucket: `rate` requests per second with bursts of `burst`, plus a pause that holds
    every caller until a server-announced reset (429 Retry-After, Remaining: 0). Shared by all
    connections with the same (host, credential). Urgent callers (URGENT) get tokens first, in
    order of arrival; the others one flow (FLOW) after another, in order of arrival within each."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self._unannounced = 0.0     # the last pause a 429 without a wait made (0: none since a success)
        self._turns = _Turns()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def refused(self, policy: RetryPolicy) -> float:
        """A 429 that said nothing of when to come back: every caller pauses, first
        `policy.unannounced_wait` seconds, then twice the last pause for each such 429 after it
        ended, up to `policy.unannounced_max`; a success starts again from the first. The 429s
        of requests sent before the pause (several are in flight at once) fall inside it and do
        not lengthen it. Returns the seconds left to wait."""
        now = time.monotonic()
        if self._paused_until <= now:
            self._unannounced = min(policy.unannounced_max, self._unannounced * 2 or policy.unannounced_wait)
            self.pause(self._unannounced)
        return self._paused_until - now

    def succeeded(self) -> None:
        self._unannounced = 0.0

    async def acquire(self, urgent: bool = False, flow: Hashable = None) -> tuple[float, float]:
        """Take one token; returns (seconds waited for the budget, seconds waited for a pause)."""
        budget_wait = pause_wait = 0.0
        await self._turns.acquire(urgent, flow)
        try:
            while True:
                now = time.monotonic()
                if self._paused_until > now:
                    await asyncio.sleep(self._paused_until - now)
                    pause_wait += time.monotonic() - now
                    continue
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return budget_wait, pause_wait
                wait = (1 - self._tokens) / self.rate
                await asyncio.sleep(wait)
                budget_wait += time.monotonic() - now
        finally:
            self._turns.release()


@dataclasses.dataclass
class Stats:
    """Counters of one connection. `api_calls` counts every HTTP request sent (retries
    included); `rate_limit_wait_seconds` is time spent waiting because a server asked (429,
    Retry-After, exhausted rate-limit headers); `budget_wait_seconds` time spent waiting for our
    own budget. Take `snapshot()` before a run and subtract it after for per-run figures."""

    api_calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    errors: int = 0
    rate_limit_wait_seconds: float = 0.0
    budget_wait_seconds: float = 0.0
    by_endpoint: Counter = dataclasses.field(default_factory=Counter)
    by_status: Counter = dataclasses.field(default_factory=Counter)

    def snapshot(self) -> Stats:
        return dataclasses.replace(self, by_endpoint=Counter(self.by_endpoint), by_status=Counter(self.by_status))

    def __sub__(self, other: Stats) -> Stats:
        return Stats(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in dataclasses.fields(self)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (status keys as strings, waits rounded to ms)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**data, "rate_limit_wait_seconds": round(self.rate_limit_wait_seconds, 3),
                "budget_wait_seconds": round(self.budget_wait_seconds, 3), "by_endpoint": dict(self.by_endpoint),
                "by_status": {str(k): v for k, v in self.by_status.items()}}


# -- responses --------------------------------------------------------------------------------

class Response:
    """A complete response: `status`, `headers`, `bytes`, `text`, `json()`, and `url` (final)."""

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes, url: str, charset: str | None):
        self.status = status
        self.headers = headers
        self.bytes = body
        self.url = url
        self._charset = charset or "utf-8"

    @property
    def text(self) -> str:
        return self.bytes.decode(self._charset, "replace")

    def json(self) -> Any:
        """The body parsed as JSON; RemoteItemError if it is not JSON (never quoting the body)."""
        try:
            return jsonlib.loads(self.bytes) if self.bytes else None
        except ValueError:
            raise RemoteItemError(f"the app answered {self.status} with a body that is not JSON",
                                  status=self.status) from None

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.bytes)} bytes>"


class StreamResponse:
    """A response whose body is read in chunks: `status`, `headers`, `iter_chunked(n)`."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.status = response.status
        self.headers = response.headers
        self._response = response

    async def iter_chunked(self, size: int = 64 * 1024) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(size):
                yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RetriableRemoteError(f"download interrupted: {type(exc).__name__}",
                                       status=self.status) from None


# -- the client -------------------------------------------------------------------------------

class OutboundClient:
    """One per tenant worker. `allowed_hosts` are host names ("jira.example.com", any port) or
    "host:port" (that port only), normally the hosts of the tenant's configured connections.
    `rate`/`burst` size the budget of each (host, credential); when not given, the config's
    [outbound] requests_per_second / burst (10 and 20 by default). `tenant` goes into log records."""

    def __init__(self, config, allowed_hosts: Iterable[str], *, retry: RetryPolicy | None = None,
                 rate: float | None = None, burst: int | None = None, tenant: str | None = None,
                 rng: random.Random | None = None):
        self.config = config
        self.retry = retry or RetryPolicy()
        outbound = getattr(config, "outbound", None)
        self.rate = rate if rate is not None else getattr(outbound, "requests_per_second", 10.0)
        self.burst = burst if burst is not None else getattr(outbound, "burst", 20)
        self.tenant = tenant
        self.rng = rng or random.Random()
        self._allowed: set[str] = set()
        for host in allowed_hosts:
            self.allow(host)
        self._budgets: dict[tuple[str, str], Budget] = {}
        self._stats: dict[str, Stats] = {}
        self._session: aiohttp.ClientSession | None = None
        self.proxy: str | None = getattr(outbound, "proxy", "") or None
        self.ca_file: str | None = getattr(outbound, "ca_file", "") or None

    # lifecycle

    async def start(self) -> None:
        """Open the session. Raises ConfigurationError if the CA file is unusable."""
        if self._session is not None:
            return
        context = ssl.create_default_context()
        if self.ca_file:
            try:
                context.load_verify_locations(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                source = getattr(self.config, "source", "") or "config"
                raise ConfigurationError(f"{source}: [outbound] ca_file = {self.ca_file!r}: cannot load it as "
                                         f"a PEM CA bundle ({exc}); give a readable PEM file or \"\"") from None
        timeout = aiohttp.ClientTimeout(total=None, connect=self.retry.connect_timeout,
                                        sock_read=self.retry.read_timeout)
        # trust_env=False: the proxy comes from the config only, never from a stray environment.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=100),
                                              timeout=timeout, trust_env=False, auto_decompress=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> OutboundClient:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("OutboundClient.start() was not called")
        return self._session

    # egress

    def allow(self, host: str) -> None:
        """Add a host (or host:port) to the allow-list, e.g. when a connection is configured."""
        self._allowed.add(host.strip().lower().rstrip("."))

    def set_allowed(self, hosts: Iterable[str]) -> None:
        """Make the allow-list exactly `hosts` (the hosts of the tenant's connections now): a
        deleted connection's host, or the old host of an edited one, is refused from the next
        request on, even by a ConnectionHttp made before (each request checks the list)."""
        self._allowed = {host.strip().lower().rstrip(".") for host in hosts}

    def allowed(self, url: URL) -> bool:
        host = (url.host or "").lower().rstrip(".")
        return host in self._allowed or f"{host}:{url.port}" in self._allowed

    def check_egress(self, url: URL, connection_id: str | None = None) -> None:
        """Raise EgressDenied (and log it) unless `url` is http(s) to an allowed host."""
        if url.scheme in ("http", "https") and self.allowed(url):
            return
        log.warning("egress to %s refused: not a host of a configured connection (connection %s)",
                    url.host or "<no host>", connection_id,
                    extra={"tenant": self.tenant, "connection": connection_id})
        raise EgressDenied(f"requests to {url.host or url} are not allowed: it is not the host of a "
                           f"configured connection")

    # connections

    def for_connection(self, connection_id: str, base_url: str, auth_headers: Mapping[str, str]) -> ConnectionHttp:
        """The HTTP client of one connection. Raises EgressDenied if `base_url`'s host is not
        allowed. Connections with the same host and credential share one budget; stats are
        per connection_id (kept across calls)."""
        url = URL(base_url)
        self.check_egress(url, connection_id)
        fingerprint = credential_fingerprint(auth_headers)
        key = (f"{(url.host or '').lower()}:{url.port}", fingerprint)
        budget = self._budgets.get(key) or self._budgets.setdefault(key, Budget(self.rate, self.burst))
        stats = self._stats.setdefault(connection_id, Stats())
        return ConnectionHttp(self, connection_id, base_url, dict(auth_headers), budget, stats)

    def stats(self, connection_id: str) -> Stats:
        return self._stats.setdefault(connection_id, Stats())


class ConnectionHttp:
    """Requests of one connection: base URL, credential headers, budget, stats. Built by
    OutboundClient.for_connection; cheap; safe to share between tasks."""

    def __init__(self, client: OutboundClient, connection_id: str, base_url: str,
                 auth_headers: dict[str, str], budget: Budget, stats: Stats):
        self.client = client
        self.connection_id = connection_id
        self.base_url = base_url.rstrip("/") + "/"
        self.auth_headers = auth_headers
        self.budget = budget
        self.stats = stats
        self._secrets = _secrets_in(auth_headers)
        self._origin = URL(self.base_url).origin()

    def url(self, path_or_url: str) -> URL:
        """Absolute URL: `path_or_url` if absolute, else joined to the base URL (a leading "/"
        is taken relative to the base URL's path, so "/rest/api/2/issue" works under a context
        path like https://host/jira/)."""
        # Sent as given where already percent-encoded (GitLab's "group%2Fproject" must stay
        # encoded); spaces and non-ASCII characters are encoded.
        target = path_or_url if "://" in path_or_url else urljoin(self.base_url, path_or_url.lstrip("/"))
        return URL(quote(target, safe=URL_SAFE), encoded=True)

    async def request(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, data: Any = None, headers: Mapping[str, str] | None = None,
                      expect: Iterable[int] = (200,), idempotent: bool | None = None,
                      endpoint: str | None = None) -> Response:
        """Send a request and read the whole body. Statuses in `expect` return a Response;
        others raise by CLASSIFICATION: RetriableRemoteError (after retries), RemoteAuthError,
        RemoteNotFound, RemoteItemError; EgressDenied for a disallowed host. `data` may be a
        zero-argument callable returning fresh data per attempt (needed to retry a FormData or a
        stream, which are single-use). `endpoint` labels stats ("GET /rest/api/2/issue/{id}")."""
        async with self._send(method, path_or_url, params=params, json=json, data=data, headers=headers,
                              expect=expect, idempotent=idempotent, endpoint=endpoint) as response:
            try:
                body = await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise RetriableRemoteError(f"reading the response failed: {type(exc).__name__}",
                                           status=response.status) from None
            return Response(response.status, response.headers, body, str(response.url), response.charset)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                     headers: Mapping[str, str] | None = None, expect: Iterable[int] = (200,),
                     endpoint: str | None = None) -> AsyncIterator[StreamResponse]:
        """Like request() but yields a StreamResponse to read in chunks (downloads). Retries
        happen before the body is read; an interruption while reading raises RetriableRemoteError."""
        async with self._send(method, path_or_url, params=params, json=None, data=None,
                              headers={"Accept": "*/*", **(headers or {})}, expect=expect, idempotent=None,
                              endpoint=endpoint, streaming=True) as response:
            yield StreamResponse(response)

    # internals

    def _extra(self) -> dict[str, Any]:
        return {"tenant": self.client.tenant, "connection": self.connection_id}

    @contextlib.asynccontextmanager
    async def _send(self, method: str, path_or_url: str, *, params, json, data, headers, expect,
                    idempotent, endpoint, streaming=False) -> AsyncIterator[aiohttp.ClientResponse]:
        method = method.upper()
        expect = frozenset(expect)
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        # A FormData or a stream can be sent once only; pass a callable to make it replayable.
        replayable = data is None or callable(data) or isinstance(data, (bytes, bytearray, str, dict, list))
        url = self.url(path_or_url)
        endpoint = endpoint or endpoint_of(method, url.path)
        policy = self.client.retry
        attempt = 0
        limited = 0.0   # seconds paused for 429s that named no wait (Budget.refused)
        while True:
            attempt += 1
            outcome = await self._attempt(method, url, params, json, data, headers, endpoint, streaming)
            if isinstance(outcome, aiohttp.ClientResponse):
                response = outcome
                status = response.status
                if status in expect:
                    self.budget.succeeded()
                    # Remaining: 0 on a success means the next request would be refused: hold
                    # everyone sharing this credential until the window resets.
                    reset = rate_limit_reset(response.headers)
                    if reset:
                        self.budget.pause(min(reset, policy.max_wait))
                    try:
                        yield response
                    finally:
                        response.release()
                    return
                failure = await self._failure(response, endpoint)
                response.release()
                # 429 means the server did not act on the request; anything else might have.
                may_retry = isinstance(failure, RetriableRemoteError) and (idempotent or status == 429)
            else:
                failure, sent = outcome
                may_retry = isinstance(failure, RetriableRemoteError) and (idempotent or not sent)
            self.stats.errors += 1
            asked = getattr(failure, "retry_after", None)
            if asked is None and failure.status == 429:
                # A limit that says no more than "too many" (Budget.refused). It lets through
                # only so many callers per window, and those waiting take their turns after each
                # pause: attempts are not what to count then, but the time waited (up to the
                # longest wait held in-line), or a caller that keeps missing its turn gives up
                # while the others get through.
                asked = self.budget.refused(policy)
                limited += asked
                out_of_tries = limited > policy.max_wait
            else:
                out_of_tries = attempt >= policy.max_attempts
            wait = self._wait_for(asked, attempt, policy)
            if not (may_retry and replayable) or out_of_tries or wait is None:
                raise failure
            self.stats.retries += 1
            log.info("%s %s: %s %s; retry %d of %d in %.2fs", method, endpoint, type(failure).__name__,
                     failure.status or "", attempt, policy.max_attempts - 1, wait, extra=self._extra())
            await asyncio.sleep(wait)

    def _wait_for(self, asked: float | None, attempt: int, policy: RetryPolicy) -> float | None:
        """The pause before the next attempt, or None when the server asked (`asked` seconds)
        for more than we wait in-line. Server-asked waits also pause the shared budget for
        everyone."""
        backoff = policy.backoff(attempt, self.client.rng)
        if asked is None:
            return backoff
        if asked > policy.max_wait:
            self.budget.pause(asked)
            return None
        self.budget.pause(asked)
        # The budget will hold the next attempt until the server's time; the rest is jitter so
        # callers released together do not stampede.
        return backoff * 0.1

    async def _attempt(self, method, url, params, json, data, headers, endpoint, streaming):
        """One request, following redirects within the allow-list. Returns the ClientResponse,
        or (RetriableRemoteError, sent) for a transport failure."""
        budget_wait, pause_wait = await self.budget.acquire(URGENT.get(), FLOW.get())
        self.stats.budget_wait_seconds += budget_wait
        self.stats.rate_limit_wait_seconds += pause_wait
        send_headers = CIMultiDict(headers or {})
        send_headers.setdefault("Accept", "application/json")
        send_headers.update(self.auth_headers)
        body = data() if callable(data) else data
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            self.client.check_egress(current, self.connection_id)
            if current.origin() != self._origin:
                # Never hand the credential to another origin (a redirect to a media host or S3).
                for name in self.auth_headers:
                    send_headers.popall(name, None)
            self.stats.api_calls += 1
            self.stats.by_endpoint[endpoint] += 1
            sent = False
            try:
                response = await self.client.session.request(
                    method, current, params=params if current == url else None, json=json, data=body,
                    headers=send_headers, allow_redirects=False, proxy=self.client.proxy,
                    # A download may take long; its reads still time out one by one.
                    timeout=aiohttp.ClientTimeout(total=None if streaming else self.client.retry.total_timeout,
                                                  connect=self.client.retry.connect_timeout,
                                                  sock_read=self.client.retry.read_timeout))
            except aiohttp.ClientConnectorError as exc:
                # Refused, unreachable, DNS, TLS handshake: nothing was sent.
                return self._transport_error(exc, endpoint), sent
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                sent = True
                return self._transport_error(exc, endpoint), sent
            self.stats.by_status[response.status] += 1
            if response.status in REDIRECTS and method in ("GET", "HEAD") and "Location" in response.headers:
                current = current.join(URL(response.headers["Location"], encoded=True))
                response.release()
                continue
            return response
        raise RemoteItemError(f"too many redirects for {endpoint}", endpoint=endpoint)

    def _transport_error(self, exc: BaseException, endpoint: str) -> RetriableRemoteError:
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            # A certificate problem does not heal by retrying soon, but it is not the item's
            # fault either: the admin must fix the CA bundle. Reported retriable so nothing is lost.
            detail = "the server's TLS certificate is not trusted (set [outbound] ca_file?)"
        elif isinstance(exc, aiohttp.ClientConnectorError):
            detail = f"cannot connect to {exc.host}:{exc.port}"
        elif isinstance(exc, asyncio.TimeoutError):
            detail = "the request timed out"
        else:
            detail = f"connection failed ({type(exc).__name__})"
        return RetriableRemoteError(f"{endpoint}: {detail}", endpoint=endpoint)

    async def _failure(self, response: aiohttp.ClientResponse, endpoint: str) -> ConnectorError:
        status = response.status
        error = classify(status)
        message, details = "", {}
        if error is not RetriableRemoteError:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                # Capped: an error page is small, a misbehaving server's need not be.
                message, details = error_message(await response.content.read(ERROR_BODY_LIMIT))
        message = redact(message, self._secrets)
        details = {k: redact(v, self._secrets) for k, v in details.items()}
        suffix = f": {message}" if message else ""
        if error is RetriableRemoteError:
            if status == 429:
                self.stats.rate_limited += 1
            return RetriableRemoteError(f"{endpoint} answered {status}", status=status, endpoint=endpoint,
                                        retry_after=retry_after(response.headers, status=status))
        if error is RemoteAuthError:
            what = "rejected the credential" if status == 401 else "refused: the credential lacks permission"
            return RemoteAuthError(f"{endpoint} {what} ({status}){suffix}", status=status, endpoint=endpoint)
        what = "not found" if error is RemoteNotFound else "refused the request"
        return error(f"{endpoint}: {what} ({status}){suffix}", status=status, endpoint=endpoint, details=details)
