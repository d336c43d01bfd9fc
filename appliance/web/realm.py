"""Which realm a request belongs to (the cluster console or one tenant), and the
database transaction every request runs its queries in.

DESIGN.md, "Clusters, tenants, hostnames": `<slug>.<cluster.domain>` is tenant
`slug`, the bare cluster domain is the console, anything else is nobody's.
`resolve_host()` is the pure part (no I/O); `TenantDirectory` is each web worker's
cache of the active tenants (and, as `principals`, of the sign-ins it checked:
`PrincipalCache`); `realm_transaction()` confines a request's queries to
its realm, enforced by PostgreSQL (appliance.scope). The middleware that puts the
three together is appliance.web.router.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable, Literal, TypeVar

import asyncpg
from aiohttp import web

from appliance import db, scope, tenants
from appliance.config import Config
from appliance.errors import DatabaseUnavailable, InvalidIdentifier
from appliance.identifiers import CONTROL_SCHEMA, validate_slug
from appliance.keys import MasterKey
from appliance.tenants import Tenant
from appliance.web.keys import DB_POOL, REALM

if TYPE_CHECKING:
    from appliance.auth import Principal
    from appliance.web.app import ControlPool

log = logging.getLogger(__name__)

T = TypeVar("T")

# The channel the trigger on tandem.tenants notifies (payload: the slug) on every change.
CHANNEL = "tandem_tenants"
# The channel the account triggers notify (payload: the schema) when a sign-in of that
# realm may have ended or changed (sql/tenant/0004_auth_notify.sql).
AUTH_CHANNEL = "tandem_auth"
# Full reload of the active tenants this often, whatever the notifications say: the
# safety net for a notification lost while the LISTEN connection was down.
REFRESH_SECONDS = 2.0
# A directory not reloaded successfully for this long (the database is away) answers
# "unavailable" rather than from memory: a tenant disabled meanwhile must not be served,
# and an unknown one must not be called non-existent when we could not look.
MAX_AGE_SECONDS = 5.0
# After a failed reload, the next comes this soon (doubling up to REFRESH_SECONDS).
RELOAD_RETRY_FIRST = 0.1
# Reconnect delays of the LISTEN connection, and how often an idle one is checked.
LISTEN_RETRY_FIRST = 0.5
LISTEN_RETRY_MAX = 10.0
LISTEN_CHECK_SECONDS = 30.0
LISTEN_CHECK_TIMEOUT = 5.0
# How long a worker trusts a sign-in it checked in the database (PrincipalCache): the
# longest an ended session or token can still be accepted if its notification is lost.
CACHE_SECONDS = 1.0
# Sign-ins a worker keeps at most (all realms together); beyond, it starts afresh.
CACHE_ENTRIES = 10_000
# At shutdown, a connection being made gets this long to finish (and then to close).
FINISH_SECONDS = 5.0

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")
HOST_MAX = 253


@dataclass(frozen=True)
class Realm:
    """Where a request belongs. `tenant` is set exactly when `kind` is "tenant" (and is
    an active tenant at the moment the request arrived)."""

    kind: Literal["console", "tenant"]
    host: str                      # normalised: lower case, no port, no trailing dot
    tenant: Tenant | None = None

    @property
    def is_tenant(self) -> bool:
        return self.kind == "tenant"

    @property
    def slug(self) -> str | None:
        return self.tenant.slug if self.tenant else None

    @property
    def schema(self) -> str:
        """The schema this realm's unqualified table names resolve in."""
        return self.tenant.schema_name if self.tenant else CONTROL_SCHEMA

    @property
    def role(self) -> str | None:
        """The PostgreSQL role the realm's queries run as: the tenant's, or None (the control login)."""
        return self.tenant.role_name if self.tenant else None


class UnknownHost(Exception):
    """The Host names no realm of this cluster (the message says why, for debug logs only:
    the client always gets the same 404)."""


@functools.lru_cache(maxsize=1024)
def resolve_host(header: str | None, domain: str) -> tuple[str, str | None]:
    """Map a Host header to (normalised host, tenant slug or None for the console).

    Lower-cases, strips a port and one trailing dot, checks every label against DNS
    rules, refuses IP literals, then requires `domain` itself (the console) or exactly
    one valid slug label in front of it. Raises UnknownHost otherwise. No I/O: whether
    the slug is a tenant is the TenantDirectory's business. Answers are memoised (a
    worker sees few distinct Host headers; refusals are not kept, so junk cannot
    crowd out the real ones).
    """
    if not header:
        raise UnknownHost("no Host header")
    host = header.strip().lower()
    if host.startswith("["):
        raise UnknownHost("IPv6 literal")
    name, colon, port = host.rpartition(":")
    if colon:
        if not _PORT.match(port):
            raise UnknownHost("malformed port")
        host = name
    if host.endswith("."):
        host = host[:-1]
    if not host or len(host) > HOST_MAX:
        raise UnknownHost("empty or too long")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise UnknownHost("IP literal")
    labels = host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise UnknownHost("malformed label")
    if host == domain:
        return host, None
    if not host.endswith("." + domain):
        raise UnknownHost("not in the cluster domain")
    slug = host[:-len(domain) - 1]
    if "." in slug:
        raise UnknownHost("deeper than one label below the cluster domain")
    try:
        validate_slug(slug)
    except InvalidIdentifier as exc:
        raise UnknownHost(str(exc)) from None
    return host, slug


class PrincipalCache:
    """One web worker's sign-ins checked recently: (realm schema, credential) -> Principal.

    `lookup()` answers from memory for at most `seconds` after the database check
    the answer came from began; past half of that, a request still gets the cached
    answer but starts a fresh check in the background, so a busy session never
    makes its requests wait for the database. Requests that do miss together share
    one check. Only sign-ins the database accepted are kept (unknown tokens cannot
    fill it), and a check that finds the sign-in ended drops it.

    `invalidate()` forgets a realm's entries (or all) and bumps `generation`: a
    check that began before cannot store its answer (it may have read the state
    before a revocation), nor can a request join it. So once this worker has heard
    of a revocation, none of its requests is answered from before it. Not
    thread-safe (one event loop per worker).
    """

    def __init__(self, seconds: float = CACHE_SECONDS, max_entries: int = CACHE_ENTRIES):
        self.seconds = seconds
        self.max_entries = max_entries
        self.generation = 0
        # schema -> credential -> (monotonic deadline, principal)
        self._realms: dict[str, dict[str, tuple[float, "Principal"]]] = {}
        self._size = 0
        # (schema, credential) -> (generation it began in, the check)
        self._checks: dict[tuple[str, str], tuple[int, asyncio.Future]] = {}

    def get(self, schema: str, credential: str) -> "Principal | None":
        """The cached sign-in when it needs no check at all (not yet half-way to its
        deadline); else None, and the caller goes through `lookup()`."""
        entries = self._realms.get(schema)
        entry = entries.get(credential) if entries else None
        if entry is not None and entry[0] - time.monotonic() >= self.seconds / 2:
            return entry[1]
        return None

    async def lookup(self, schema: str, credential: str,
                     fetch: Callable[[], Awaitable["Principal | None"]]) -> "Principal | None":
        """The sign-in `credential` of realm `schema`: cached, or `fetch()`'s answer
        (the database check; raises what it raises)."""
        entries = self._realms.get(schema)
        entry = entries.get(credential) if entries else None
        if entry is not None:
            left = entry[0] - time.monotonic()
            if left > 0:
                if left < self.seconds / 2:
                    self._check(schema, credential, fetch)   # refresh ahead; nobody waits for it
                return entry[1]
            del entries[credential]
            self._size -= 1
        # Shielded: one waiter going away must not cancel the check the others wait for.
        return await asyncio.shield(self._check(schema, credential, fetch))

    def invalidate(self, schema: str | None = None) -> None:
        """Forget the sign-ins of realm `schema` (None: of every realm)."""
        self.generation += 1
        self._checks.clear()
        if schema is None:
            self._realms.clear()
            self._size = 0
        else:
            self._size -= len(self._realms.pop(schema, {}))

    def _check(self, schema: str, credential: str,
               fetch: Callable[[], Awaitable["Principal | None"]]) -> asyncio.Future:
        key = (schema, credential)
        running = self._checks.get(key)
        if running is not None and running[0] == self.generation:
            return running[1]
        check = asyncio.ensure_future(self._run_check(key, self.generation, fetch))
        # Retrieved here, so that a failure nobody waits for (a refresh ahead) is not
        # logged as never retrieved; the requests that wait get it themselves.
        check.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._checks[key] = (self.generation, check)
        return check

    async def _run_check(self, key: tuple[str, str], generation: int,
                         fetch: Callable[[], Awaitable["Principal | None"]]) -> "Principal | None":
        began = time.monotonic()
        try:
            principal = await fetch()
        finally:
            if self._checks.get(key, (None, None))[1] is asyncio.current_task():
                del self._checks[key]
        if generation != self.generation:
            return principal        # invalidated meanwhile: answer this request, keep nothing
        schema, credential = key
        entries = self._realms.setdefault(schema, {})
        if principal is None:
            self._size -= entries.pop(credential, None) is not None
        elif self.seconds > 0:
            if self._size >= self.max_entries:
                self.invalidate()
                entries = self._realms.setdefault(schema, {})
            self._size += credential not in entries
            entries[credential] = (began + self.seconds, principal)
        return principal


class TenantsUnavailable(DatabaseUnavailable):
    """The directory cannot say which tenants exist right now (database away)."""


class TenantDirectory:
    """One web worker's map of active tenants, slug -> Tenant.

    Kept current two ways: a dedicated LISTEN connection on CHANNEL (a change shows
    within a round trip; reconnected with backoff after loss, then reloaded, since
    notifications sent meanwhile are gone), and a full reload every `refresh_seconds`
    through the control pool as the safety net. So a new tenant answers, and a
    disabled or deleted one stops, within a few seconds even if a notification is lost.

    `lookup()` never touches the database. It raises TenantsUnavailable until the
    first load and whenever the last successful load is older than `max_age`
    (defaults: REFRESH_SECONDS, MAX_AGE_SECONDS).
    Start the background work with `run()` (a task) and stop it by cancelling.

    It also holds the worker's `principals` (a PrincipalCache, used by appliance.auth) and
    keeps them honest over the same LISTEN connection: a notification on AUTH_CHANNEL
    forgets that realm's cached sign-ins; connecting (again) or losing the connection
    forgets them all, since notifications may have been missed meanwhile.
    """

    def __init__(self, config: Config, key: MasterKey, database: ControlPool, *,
                 refresh_seconds: float | None = None, max_age: float | None = None):
        self._config = config
        self._key = key
        self._database = database
        self._refresh_seconds = refresh_seconds or REFRESH_SECONDS
        self._max_age = max_age or MAX_AGE_SECONDS
        self._tenants: dict[str, Tenant] = {}
        self._loaded_at: float | None = None
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._problems: dict[str, str] = {}   # "reload" / "listen" -> what went wrong last
        self.reloads = 0            # successful loads so far (tests and debugging)
        self.principals = PrincipalCache()

    # -- answering -------------------------------------------------------------------

    @property
    def fresh(self) -> bool:
        return self._loaded_at is not None and time.monotonic() - self._loaded_at <= self._max_age

    def lookup(self, slug: str) -> Tenant | None:
        """The active tenant `slug`, or None when there is none (unknown, disabled, deleting).
        Raises TenantsUnavailable when the directory is not fresh."""
        if not self.fresh:
            raise TenantsUnavailable("tenant directory not loaded recently (database unreachable?)")
        return self._tenants.get(slug)

    # -- keeping current --------------------------------------------------------------

    async def run(self) -> None:
        """Reload now, on every notification and every refresh_seconds; keep the LISTEN
        connection up. Runs until cancelled; never raises otherwise."""
        listening = asyncio.create_task(self._listen_forever(), name="tenant directory listener")
        retry = RELOAD_RETRY_FIRST
        try:
            while True:
                # Cleared before the reload: a notification arriving during it wakes us again.
                self._wake.clear()
                if await self._reload():
                    delay, retry = self._refresh_seconds, RELOAD_RETRY_FIRST
                else:
                    # Sooner than the refresh period (the pool may appear any moment at start-up).
                    delay, retry = min(retry, self._refresh_seconds), retry * 2
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
            await self._close_listener()

    async def _reload(self) -> bool:
        try:
            async with asyncio.timeout(self._max_age):
                async with self._database.acquire() as conn:
                    active = await tenants.active_tenants(conn)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the next reload tries again
            self._note_problem("reload", f"cannot load the tenants: {exc or type(exc).__name__}")
            return False
        self._tenants = {tenant.slug: tenant for tenant in active}
        self._loaded_at = time.monotonic()
        self.reloads += 1
        if self._problems.pop("reload", None):
            log.info("tenant directory loaded again (%d active tenants)", len(active))
        return True

    async def _listen_forever(self) -> None:
        delay = LISTEN_RETRY_FIRST
        while True:
            lost = asyncio.Event()
            conn = None
            try:
                conn = await finish_on_cancel(db.connect(self._config, self._key,
                                                         application_name="tandem web tenants"))
                conn.add_termination_listener(lambda _conn: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                await conn.add_listener(AUTH_CHANNEL, self._auth_notified)
            except Exception as exc:  # noqa: BLE001 - the polling covers for us meanwhile; retried
                if conn is not None:
                    conn.terminate()
                self._note_problem("listen", f"cannot listen for tenant changes: {exc or type(exc).__name__}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, LISTEN_RETRY_MAX)
                continue
            self._listener = conn
            delay = LISTEN_RETRY_FIRST
            if self._problems.pop("listen", None):
                log.info("tenant directory: listening for tenant changes again")
            # Changes made while we were not listening were not notified to us.
            self._wake.set()
            self.principals.invalidate()
            await self._until_lost(conn, lost)
            self._listener = None
            self.principals.invalidate()
            log.warning("tenant directory: LISTEN connection lost; reconnecting")
            with contextlib.suppress(Exception):
                conn.terminate()

    async def _until_lost(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is gone: closed by the server (termination
        listener), or silently dead (a network path that dropped without a reset
        never closes it; an occasional query notices)."""
        while True:
            try:
                await asyncio.wait_for(lost.wait(), LISTEN_CHECK_SECONDS)
                return
            except asyncio.TimeoutError:
                pass
            try:
                await conn.fetchval("SELECT 1", timeout=LISTEN_CHECK_TIMEOUT)
            except Exception:  # noqa: BLE001 - any failure: reconnect
                return

    def _notified(self, _conn, _pid: int, _channel: str, payload: str) -> None:
        log.debug("tenant %s changed", payload, extra={"tenant": payload})
        self._wake.set()

    def _auth_notified(self, _conn, _pid: int, _channel: str, payload: str) -> None:
        self.principals.invalidate(payload)

    def _note_problem(self, kind: str, problem: str) -> None:
        if problem != self._problems.get(kind):
            # Said once per distinct problem, not on every retry.
            log.warning("tenant directory: %s", problem)
            self._problems[kind] = problem

    async def _close_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)


async def finish_on_cancel(connecting: Awaitable[T]) -> T:
    """Await a connection (or pool) being made; if we are cancelled meanwhile, let it
    finish (bounded), close it, then re-raise.

    Cancelling asyncpg in the middle of its handshake closes the socket only on a
    later turn of the event loop; when the loop stops right after (a worker or test
    shutting down), the server side waits out its authentication_timeout (60 s),
    holding up DROP DATABASE and the like."""
    task = asyncio.ensure_future(connecting)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            made = await asyncio.wait_for(task, FINISH_SECONDS)
            await asyncio.wait_for(made.close(), FINISH_SECONDS)
        raise


@contextlib.asynccontextmanager
async def realm_transaction(request: web.Request) -> AsyncIterator[asyncpg.Connection]:
    """`async with realm_transaction(request) as conn:` a transaction confined to the
    request's realm, on a pooled control-login connection.

    Tenant realm: SET LOCAL ROLE <tenant role> + search_path <tenant schema>, so
    PostgreSQL refuses anything outside that schema (another tenant's, the control
    schema). Console realm: search_path tandem, as the control login, never a tenant
    role. Both end with the transaction, so the connection goes back to the pool clean.
    SQL inside uses unqualified table names. Commits when the block ends normally,
    rolls back when it raises. Raises DatabaseUnavailable (-> 503) while there is no
    pool; needs request[REALM] (set by the host router).
    """
    realm = request[REALM]
    async with request.app[DB_POOL].acquire() as conn:
        if realm.tenant is not None:
            async with scope.tenant_transaction(conn, realm.tenant.schema_name, realm.tenant.role_name):
                yield conn
        else:
            async with scope.console_transaction(conn):
                yield conn
