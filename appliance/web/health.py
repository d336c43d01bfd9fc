"""The probes a load balancer and a monitoring system call.

- `GET /-/health`: 200 `{"status": "ok"}` while the process serves requests. It never
  touches the database, so a database outage does not get healthy workers restarted.
- `GET /-/ready`: 200 `{"status": "ready"}` when the database answers and no migration
  is pending; otherwise 503 `{"status": "unavailable", "reason": "..."}` so the balancer
  sends traffic elsewhere. The verdict is cached for CACHE_SECONDS (shared by
  concurrent probes), so frequent probes from several balancers cost one check a second.

Reasons are meant for an operator and carry no credentials or server addresses;
the details go to the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from appliance import db, migrator
from appliance.errors import TandemError
from appliance.web.keys import READINESS

if TYPE_CHECKING:
    from appliance.web.app import ControlPool

log = logging.getLogger(__name__)

CACHE_SECONDS = 1.0
# A probe that waits longer than this is worse than a quick "unavailable".
CHECK_TIMEOUT_SECONDS = 3.0

UNREACHABLE = "database unreachable"


class Readiness:
    """Whether this worker can serve: database reachable and migrations current."""

    def __init__(self, database: ControlPool, cache_seconds: float = CACHE_SECONDS,
                 timeout: float = CHECK_TIMEOUT_SECONDS):
        self._database = database
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._checked_at = -1e9
        self._verdict: tuple[bool, str] = (False, "not checked yet")

    async def check(self) -> tuple[bool, str]:
        """(ready, reason); reason is "" when ready."""
        if time.monotonic() - self._checked_at < self._cache_seconds:
            return self._verdict
        async with self._lock:
            # Probes that queued behind the one that checked take its answer.
            if time.monotonic() - self._checked_at >= self._cache_seconds:
                self._verdict = await self._probe()
                self._checked_at = time.monotonic()
            return self._verdict

    async def _probe(self) -> tuple[bool, str]:
        if self._database.pool is None:
            return False, UNREACHABLE
        try:
            async with asyncio.timeout(self._timeout):
                async with self._database.acquire() as conn:
                    status = await migrator.status(conn)
        except TandemError as exc:  # edited history, database newer than this binary
            return False, str(exc)
        except (*db.UNREACHABLE, asyncpg.InterfaceError) as exc:
            log.warning("readiness check: database unreachable: %s", exc)
            return False, UNREACHABLE
        except asyncpg.PostgresError as exc:
            log.error("readiness check: database error: %s", exc)
            return False, "database error (see the log)"
        if status.current:
            return True, ""
        return False, status.describe()


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    ok, reason = await request.app[READINESS].check()
    if ok:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "unavailable", "reason": reason}, status=503,
                             headers={"Retry-After": "5"})


def add_routes(app: web.Application) -> None:
    # GET also answers HEAD, which some balancers use.
    app.router.add_get("/-/health", health)
    app.router.add_get("/-/ready", ready)
